"""shared/exports.py and shared.ui.with_downloads: each table, plot and stats panel becomes a file that
reads back to what was shown."""

from __future__ import annotations

import json
import os
import time

import gradio as gr
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from shared import exports
from shared.ui import downloads, with_downloads


def _figure() -> Figure:
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_each_kind_is_written_and_reads_back(tmp_path):
    table = pd.DataFrame({"layer": [0, 1], "entropy": [1.5, 0.25]})
    stats = {"grid": np.int64(8), "mean": np.float32(0.5), "per_head": np.arange(3), "bad": float("nan")}
    paths = exports.write_downloads([("plot", _figure()), ("table", table), ("stats", stats), ("img", "x")],
                                    root=tmp_path)
    assert [os.path.basename(p) for p in paths] == ["plot.png", "table.csv", "stats.json"]
    assert Image.open(paths[0]).format == "PNG"
    pd.testing.assert_frame_equal(pd.read_csv(paths[1]), table)
    assert json.loads(open(paths[2]).read()) == {"grid": 8, "mean": 0.5, "per_head": [0, 1, 2], "bad": None}


def test_two_calls_never_share_a_folder_and_duplicate_names_are_kept(tmp_path):
    a = exports.write_downloads([("t", {"a": 1}), ("t", {"a": 2})], root=tmp_path)
    b = exports.write_downloads([("t", {"a": 1})], root=tmp_path)
    assert [os.path.basename(p) for p in a] == ["t.json", "t-2.json"]
    assert os.path.dirname(a[0]) != os.path.dirname(b[0])


def test_old_folders_are_pruned(tmp_path):
    old = exports.write_downloads([("t", {"a": 1})], root=tmp_path)[0]
    past = time.time() - exports.KEEP_SECONDS - 10
    os.utime(os.path.dirname(old), (past, past))
    exports.write_downloads([("t", {"a": 1})], root=tmp_path)
    assert not os.path.exists(old)


def test_file_stem_is_safe():
    assert exports.file_stem("Attention entropy (bits) / head", "x") == "attention-entropy-bits-head"
    assert exports.file_stem(None, "output-2") == "output-2"


def test_with_downloads_adds_files_named_after_the_outputs():
    with gr.Blocks():
        plot, table, image, stats = gr.Plot(label="Curve"), gr.Dataframe(label="Per layer"), gr.Image(), gr.JSON(label="Stats")
        files = downloads()
    assert isinstance(files, gr.File)

    def handler(n):
        return _figure(), pd.DataFrame({"n": [n]}), None, {"n": n}

    result = with_downloads(handler, [plot, table, image, stats])(3)
    assert len(result) == 5 and result[3] == {"n": 3}
    assert [os.path.basename(p) for p in result[4]] == ["curve.png", "per-layer.csv", "stats.json"]


def test_with_downloads_on_a_generator_writes_once_after_the_last_yield():
    with gr.Blocks():
        stats = gr.JSON(label="Step")

    def steps():
        for i in range(3):
            yield {"step": i}

    yields = list(with_downloads(steps, [stats])())
    assert len(yields) == 4
    assert all(isinstance(y[1], type(gr.skip())) for y in yields[:3])
    assert json.loads(open(yields[3][1][0]).read()) == {"step": 2}

"""The README's tables state facts the code can read: check them against the shipped files and the apps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hub.app import build_space
from hub.registry import SPACES, get
from shared import models

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _rows(header: str) -> list[list[str]]:
    """The cells of the markdown table whose header line starts with ``header``."""
    lines = README[README.index(header):].splitlines()[2:]  # past the header and the |---| line
    table = lines[:next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))]
    return [[c.strip() for c in line.strip("|").split("|")] for line in table]


def _metrics(name: str) -> dict:
    return json.loads((ROOT / "shared" / "weights" / name / "metrics.json").read_text())


def test_models_table_matches_each_models_metrics():
    rows = {r[0].strip("`"): r for r in _rows("| model | parameters |")}
    assert set(rows) == {name for name, spec in models.REGISTRY.items() if spec.embedded}
    for name, (_, params, metric, wall) in rows.items():
        m = _metrics(name)
        if "parameters" in m:
            assert int(params.replace(",", "")) == m["parameters"], name
        else:
            assert f"vocab {m['vocab_size']}" in params, name
        value = float(re.search(r"(\d+(\.\d+)?)", metric.split()[-1] if name != "fast-bpe-actions" else metric).group(1))
        assert value in {v for v in m.values() if isinstance(v, (int, float))}, (name, metric)
        if "train_wall_seconds" in m:
            assert wall.startswith(f"{round(m['train_wall_seconds'] / 60)} min"), (name, wall)
            assert f"{m['torch_threads']} threads" in wall
        elif "phase2_wall_seconds" in m:  # phase 2 ran alone on earlier weights, whose time was not recorded
            assert f"phase 2 alone: {round(m['phase2_wall_seconds'] / 60)} min" in wall, (name, wall)
            assert f"{m['torch_threads']} threads" in wall
        else:
            assert wall.startswith("not recorded"), name


def test_every_space_has_a_row_in_the_tutorials_table():
    assert {r[0].strip("`") for r in _rows("| slug | tutorial | model(s) |")} == {t.slug for t in SPACES}


@pytest.mark.parametrize("row", _rows("| endpoint | arguments | returns |"), ids=lambda r: r[0])
def test_api_table_arguments_match_the_endpoint(row):
    endpoint, arguments = row[0].strip("`"), row[1].strip("`")
    slug = next(t.slug for t in SPACES if endpoint.strip("/").startswith(t.slug + "_"))
    info = build_space(get(slug)).get_api_info()["named_endpoints"][endpoint]
    names = [a.split(":")[0].strip() for a in arguments.split(",") if a.strip() and a.strip() != "(none)"]
    assert names == [p["parameter_name"] for p in info["parameters"]], endpoint
    returns = row[2]
    if returns.startswith("`("):  # a tuple: one value per output
        assert returns.split(")")[0].count(",") + 1 == len(info["returns"]), endpoint

"""The hub's registry, CLI, landing page and error tabs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest

from hub import app as hub_app
from hub.registry import PHASES, SPACES, TUTORIALS

ROOT = Path(__file__).resolve().parents[2]


def test_sixteen_tutorials_in_four_phases():
    assert len(TUTORIALS) == 16
    assert {t.phase for t in TUTORIALS} == set(PHASES)


def test_every_space_folder_is_registered_and_every_registered_space_exists():
    folders = {p.name for p in (ROOT / "spaces").iterdir() if p.is_dir() and (p / "app.py").is_file()}
    assert folders == {t.slug for t in SPACES}


def test_slugs_are_unique_snake_case():
    slugs = [t.slug for t in SPACES]
    assert len(slugs) == len(set(slugs))
    assert all(s.replace("_", "").isalnum() and s.islower() for s in slugs)


def test_api_names_are_prefixed_with_the_slug_and_unique():
    seen: set[str] = set()
    for t in SPACES:
        demo = hub_app.build_space(t)
        names = [fn.api_name for fn in demo.fns.values() if fn.api_name and fn.api_visibility == "public"]
        assert names, f"{t.slug} exposes no public endpoint"
        for name in names:
            assert name.startswith(f"{t.slug}_"), f"{t.slug}: api_name {name!r} lacks the slug prefix"
            assert name not in seen
            seen.add(name)


def test_space_modules_follow_the_contract():
    import importlib

    for t in SPACES:
        module = importlib.import_module(t.module)
        assert module.SLUG == t.slug
        assert isinstance(module.TITLE, str) and module.TITLE
        assert isinstance(getattr(module, "WEIGHTS", ()), tuple)
        readme = (ROOT / "spaces" / t.slug / "README.md").read_text()
        assert readme.startswith("---\n") and "sdk: gradio" in readme and "app_file: app.py" in readme


def test_compute_modules_never_import_gradio():
    for t in SPACES:
        source = (ROOT / "spaces" / t.slug / "compute.py").read_text()
        assert "import gradio" not in source and "from gradio" not in source


def test_cli_list_prints_slug_tab_title():
    out = subprocess.run([sys.executable, "-m", "hub", "list"], cwd=ROOT, capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines == [f"{t.slug}\t{t.title}" for t in SPACES]
    assert any(line.startswith("patch_explorer\t") for line in lines)


def test_landing_marks_available_and_planned():
    page = hub_app._landing(list(SPACES), failed={})
    assert page.count("vitlab-card") >= len(TUTORIALS)
    assert page.count(">available<") == len(SPACES)
    assert page.count(">planned<") == len(TUTORIALS) - len(SPACES)


def test_a_space_that_fails_to_build_becomes_an_error_tab(monkeypatch):
    import spaces.patch_explorer.app as patch_app

    def broken_build():
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(patch_app, "build", broken_build)
    demo = hub_app.build_hub()
    assert isinstance(demo, gr.Blocks)
    texts = [str(getattr(b, "value", "") or "") for b in demo.blocks.values()]
    assert any("failed to build" in v and "broken on purpose" in v for v in texts)
    assert any('data-slug="patch_explorer"><h4>' in v and ">error<" in v for v in texts)  # the landing card
    # the other spaces still render their own components
    assert any(getattr(fn, "api_name", None) == "vla_tokenizer_encode" for fn in demo.fns.values())


def test_only_filters_and_rejects_unknown_slugs():
    assert [t.slug for t in hub_app.select(["patch_explorer"])] == ["patch_explorer"]
    with pytest.raises(ValueError, match="unknown space"):
        hub_app.select(["nope"])

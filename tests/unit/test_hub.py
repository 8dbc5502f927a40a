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
    folders = {p.name for p in (ROOT / "spaces").iterdir()
               if p.is_dir() and (p / "app.py").is_file() and not p.name.startswith("_")}  # _template: a skeleton
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
        assert module.TITLE == t.title  # read from the registry, the one place titles are typed
        assert callable(module.render) and callable(module.build)
        assert isinstance(getattr(module, "WEIGHTS", ()), tuple)
        readme = (ROOT / "spaces" / t.slug / "README.md").read_text()
        assert readme.startswith("---\n") and "sdk: gradio" in readme and "app_file: app.py" in readme


def test_compute_modules_never_import_gradio():
    """The maths stays free of the UI, directly or through what it imports (checked in a fresh process)."""
    slugs = [t.slug for t in SPACES] + ["_template"]
    for slug in slugs:
        source = (ROOT / "spaces" / slug / "compute.py").read_text()
        assert "import gradio" not in source and "from gradio" not in source, slug
    script = "import importlib, sys\n" + "".join(f"importlib.import_module('spaces.{s}.compute')\n" for s in slugs) \
        + "print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert out.stdout.strip().splitlines()[-1] == "False"


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

    def broken_render(demo):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(patch_app, "render", broken_render)
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


def test_start_up_imports_no_torch_and_builds_each_space_once():
    """Issue 14: start-up within 1.3x a bare gradio app needs the hub's import path free of the heavy
    libraries (torch alone costs about a second) and one build per space (the hub tab)."""
    script = """
import sys
import importlib
from hub.registry import SPACES
from hub import app as hub_app
builds = {}
for t in SPACES:
    module = importlib.import_module(t.module)
    for name in ("build", "render"):
        original = getattr(module, name)
        def counting(*args, original=original, key=(t.slug, name)):
            builds[key] = builds.get(key, 0) + 1
            return original(*args)
        setattr(module, name, counting)
hub_app.create_app()
heavy = [m for m in ('torch', 'transformers', 'diffusers', 'accelerate', 'matplotlib', 'scipy') if m in sys.modules]
print(heavy, sorted(builds.items()))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    heavy, builds = out.stdout.strip().splitlines()[-1].split("] ", 1)
    assert heavy == "[", f"imported at start-up: {heavy}]"
    # each space rendered once into its hub tab; none built as a Blocks of its own (its URL waits for a visit)
    assert builds == str(sorted(((t.slug, "render"), 1) for t in SPACES))


def test_a_space_url_is_built_on_first_visit_and_a_failed_build_answers_500(monkeypatch):
    import urllib.error
    import urllib.request

    import spaces.vla_tokenizer.app as vla_app
    from tests.serving import BackgroundServer

    real_build = vla_app.build
    app = hub_app.create_app(["vla_tokenizer"])

    def broken_build():
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(vla_app, "build", broken_build)
    with BackgroundServer(app) as server:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "vla_tokenizer/", timeout=60)
        assert err.value.code == 500 and "broken on purpose" in err.value.read().decode()
        assert urllib.request.urlopen(server.url, timeout=60).status == 200  # the hub still serves
        monkeypatch.setattr(vla_app, "build", real_build)
        page = urllib.request.urlopen(server.url + "vla_tokenizer", timeout=60)  # no slash: redirected
        assert page.status == 200 and page.url.endswith("/vla_tokenizer/")

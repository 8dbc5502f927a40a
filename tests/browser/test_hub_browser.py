"""Targeted browser checks: the landing page, a patch explorer run, a space alone, DiT sampling, CLIP's OOD note.
(Every tab and every primary button of every page: tests/browser/test_every_page.py.)"""

from __future__ import annotations

import json
import re

import pytest

from hub.registry import TUTORIALS
from shared.images import sample_paths
from shared.training import WEIGHTS_DIR as WEIGHTS
from tests.browser.conftest import shot
from tests.browser.page_walker import settle

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SAMPLES = sample_paths()


def test_landing_lists_the_learning_path(page, browser_hub_url):
    page.goto(browser_hub_url, wait_until="domcontentloaded")
    page.get_by_text("Vision Transformer Lab", exact=False).first.wait_for(timeout=120_000)
    for t in TUTORIALS:
        assert page.get_by_text(t.title, exact=False).count() >= 1, t.title
    assert page.locator(".vitlab-card").count() == len(TUTORIALS)
    shot(page, "landing")


def test_patch_explorer_runs_and_shows_the_numbers(page, browser_hub_url):
    page.goto(browser_hub_url, wait_until="domcontentloaded")
    page.locator(".vitlab-card").first.wait_for()
    page.get_by_role("tab", name=re.compile("Patch embeddings")).click()
    page.get_by_role("button", name="Patchify").first.click()
    # the stats JSON shows the patch count once the event has run
    page.get_by_text("num_patches", exact=False).first.wait_for(timeout=120_000)
    shot(page, "patch_explorer")


def test_a_space_is_served_alone_on_its_own_url(page, browser_hub_url):
    page.goto(browser_hub_url + "patch_explorer/", wait_until="domcontentloaded")
    page.get_by_role("button", name="Patchify").first.wait_for(timeout=120_000)
    assert page.get_by_role("tab", name=re.compile("Learning path")).count() == 0
    shot(page, "patch_explorer_alone")


def test_dit_page_shows_its_controls_and_samples_without_console_errors(page, browser_hub_url):
    """Issue 14: subclassed components did not render (no controls, a Loading overlay over every button)."""
    errors, failed = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(browser_hub_url + "dit_stepper/", wait_until="domcontentloaded")
    page.get_by_role("button", name=re.compile("^Sample")).first.wait_for()
    for label in ("class", "scheduler", "seed", "guidance scale s"):
        assert page.get_by_label(label).count() >= 1, label
    # The quality note as rendered, figures from the shipped metrics: the samples' score, the judge's own score on
    # real shapes, and, when only phase 2's time is recorded, that time given as the last steps', not the run's.
    m = json.loads((WEIGHTS / "dit-tiny-shapes" / "metrics.json").read_text())
    body = page.inner_text("body")
    assert f"{100 * m['class_accuracy']:.1f}%" in body
    if "judge_accuracy_on_real" in m:
        assert f"the judge is right {100 * m['judge_accuracy_on_real']:.1f}% of the time" in body
    if "phase2_wall_seconds" in m:
        assert f"(the last {m['phase2_steps']:,} in " in body
    images = page.locator("img[src*='/file=']:visible")
    before = images.count()
    page.get_by_role("button", name=re.compile("^Sample")).first.click()
    page.wait_for_function(f"document.querySelectorAll(\"img[src*='/file=']\").length > {before}", timeout=120_000)
    assert not errors, errors
    assert not failed, failed
    shot(page, "dit_stepper_sampled")


def test_clip_page_classifies_a_sample_and_says_whether_it_looks_like_the_training_data(page, browser_hub_url):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(browser_hub_url + "clip_zero_shot/", wait_until="domcontentloaded")
    page.get_by_role("button", name=re.compile("Classify")).first.wait_for()
    page.locator("input[type=file]").first.set_input_files(str(SAMPLES[0]))
    page.get_by_role("button", name=re.compile("Classify")).first.click()
    note = page.get_by_text("Like the training data?").first
    note.wait_for(timeout=120_000)
    assert re.search(r"(Not flagged|Unusual input)", note.locator("xpath=..").inner_text())
    assert not errors, errors
    shot(page, "clip_zero_shot_classified")


def test_clip_page_flags_a_photo_of_a_cat_in_plain_words(page, browser_hub_url, tmp_path):
    """Issue 13: Chelsea is not a shape; the note says so, whole (a '<shape>' in it was once eaten as HTML)."""
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    from shared.ood import CLIP_SCORE_NAME

    cat = tmp_path / "chelsea.png"
    Image.fromarray(skimage_data.chelsea()).save(cat)
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(browser_hub_url + "clip_zero_shot/", wait_until="domcontentloaded")
    page.get_by_role("button", name=re.compile("Classify")).first.wait_for()
    page.locator("input[type=file]").first.set_input_files(str(cat))
    page.get_by_role("button", name=re.compile("Classify")).first.click()
    note = page.get_by_text("Like the training data?").first
    note.wait_for(timeout=120_000)
    text = note.locator("xpath=..").inner_text()
    assert "Unusual input" in text and f"the {CLIP_SCORE_NAME} is low" in text, text
    assert not errors, errors
    shot(page, "clip_zero_shot_cat")


def test_attention_page_click_a_patch_moves_the_query(page, browser_hub_url):
    """Issue 15: clicking a patch of the query map makes it the query (the walker clicks buttons, not images)."""
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(browser_hub_url + "attention_maps/", wait_until="domcontentloaded")
    page.wait_for_function("() => window.gradio_config && document.querySelector('.gradio-container')")
    assert settle(page)
    page.get_by_role("button", name="Compute attention").first.click()  # the maps fill after a first run
    assert settle(page)
    query = page.locator("div.block").filter(has_text="Query patch -> patches (click a patch)").last.locator("img").first
    query.wait_for(timeout=120_000)
    row = page.locator("div.block").filter(has_text="Query patch row").last.locator("input[type=number]").first
    col = page.locator("div.block").filter(has_text="Query patch column").last.locator("input[type=number]").first

    def click_patch(r: int, c: int, grid: int) -> None:
        # where the picture lies inside its <img> box (per its object-fit), then the centre of patch (r, c)
        query.scroll_into_view_if_needed()
        box = query.evaluate("""e => { const b = e.getBoundingClientRect(), fit = getComputedStyle(e).objectFit;
            const contain = Math.min(b.width / e.naturalWidth, b.height / e.naturalHeight);
            const s = fit === 'none' ? 1 : fit === 'scale-down' ? Math.min(1, contain) : contain;
            return {x: b.x + (b.width - e.naturalWidth * s) / 2, y: b.y + (b.height - e.naturalHeight * s) / 2,
                    w: e.naturalWidth * s, h: e.naturalHeight * s}; }""")
        page.mouse.click(box["x"] + (c + 0.5) * box["w"] / grid, box["y"] + (r + 0.5) * box["h"] / grid)

    grid = int(row.get_attribute("max")) + 1
    for r, c in ((0, 0), (grid - 1, 1)):
        click_patch(r, c, grid)
        assert settle(page)
        assert (int(row.input_value()), int(col.input_value())) == (r, c)
    assert not errors, errors
    shot(page, "attention_maps_clicked_patch")

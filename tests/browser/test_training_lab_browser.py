"""The training lab in a browser: Train streams the curves (a screenshot mid-run, looked at), and Stop
stops the run (its stats say so, before the last step, and the session's slot is freed)."""

from __future__ import annotations

import re
import time

import pytest

from shared.models import available_offline
from spaces.training_lab import options, runs
from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not available_offline(options.BASE_MODEL), reason="vit-tiny-shapes not trained")]


def _stats(page) -> str:
    return page.locator("#training-lab-stats").inner_text()


def _steps_done(text: str) -> int | None:
    m = re.search(r"steps_done\W+(\d+)", text)
    return int(m.group(1)) if m else None


def test_curves_stream_mid_run_and_stop_stops_the_run(page, browser_hub_url):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(browser_hub_url + "training_lab/", wait_until="domcontentloaded")
    steps = page.get_by_label("number input for steps (1–400)")
    steps.fill(str(options.MAX_STEPS))
    steps.press("Enter")
    page.locator("#training-lab-train").click()

    seen: list[int] = []  # distinct step counts shown while running: the curves update during the run
    deadline = time.monotonic() + 240
    while len(seen) < 3:
        assert time.monotonic() < deadline, f"fewer than 3 updates seen: {seen}"
        text = _stats(page)
        done = _steps_done(text)
        if "running" in text and done is not None and (not seen or done > seen[-1]):
            seen.append(done)
        page.wait_for_timeout(300)
    page.locator("#training-lab-loss img, #training-lab-loss canvas, #training-lab-loss svg").first.wait_for()
    shot(page, "training_lab-midrun")

    page.locator("#training-lab-stop").click()
    page.wait_for_function("() => document.querySelector('#training-lab-stats').innerText.includes('stopped')",
                           timeout=90_000)
    final = _steps_done(_stats(page))
    assert final is not None and seen[-1] <= final < options.MAX_STEPS
    deadline = time.monotonic() + 30
    while runs.REGISTRY.active():
        assert time.monotonic() < deadline, "the stopped run still holds its slot"
        time.sleep(0.2)
    shot(page, "training_lab-stopped")
    assert not errors, errors

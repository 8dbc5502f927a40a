"""The MAE page at mask ratios 0.25, 0.75 and 0.9 (issue 21's "Must show"): set the ratio, press
"Mask and reconstruct", wait for the stats and the heatmap, check the masked count and take a screenshot."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("ratio", [0.25, 0.75, 0.9])
def test_mask_and_reconstruct_at_ratio(page, browser_hub_url, ratio):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(browser_hub_url + "mae_masking/", wait_until="domcontentloaded")
    button = page.get_by_role("button", name="Mask and reconstruct")
    button.wait_for(timeout=120_000)
    box = page.get_by_role("spinbutton", name=re.compile("mask ratio")).first
    box.fill(str(ratio))
    box.press("Enter")
    button.click()
    expected = 64 - int(64 * (1 - ratio))
    page.get_by_text(re.compile(r"num_masked")).first.wait_for(timeout=120_000)
    page.get_by_text(re.compile(r"MAE per-patch MSE|loss against the mean-colour baseline")).first.wait_for()
    page.locator(".js-plotly-plot, img[src*='png'], .matplotlib").first.wait_for(timeout=120_000)
    page.wait_for_timeout(1500)
    text = page.locator("body").inner_text()
    assert re.search(rf"num_masked\W+{expected}\b", text), text[:2000]
    shot(page, f"mae_masking-ratio-{ratio}")
    assert not errors, errors

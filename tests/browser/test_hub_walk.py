"""The hub used as a person would (issue 14): every tab of every space opened inside the hub with every input
rendered and one primary button per space clicked (every button is clicked on each space's own URL in
test_every_page.py); the landing and the DiT page at a phone's width; and checks that the walker itself catches
what it is for (a page whose component never renders, an empty output, an error toast).
"""

from __future__ import annotations

import gradio as gr
import pytest

from hub.registry import SPACES, TUTORIALS
from tests.browser.conftest import CHROMIUM, FLAGS, assert_clean, record_report, shot
from tests.browser.page_walker import walk
from tests.serving import BackgroundServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}


def test_the_hub_opens_every_tab_and_runs_a_primary_button_in_each_space(page, browser_hub_url):
    """Every tab and accordion of every space opened inside the hub, every input rendered, and one primary
    button per space clicked (every button of every space is clicked on its own URL, above)."""
    report = walk(page, browser_hub_url, click=True, every_tab=True, one_click_per_tab=True)
    record_report(report, "hub, every tab")
    shot(page, "hub-after-every-button")
    assert len(report.clicked) == len(SPACES), report.clicked
    assert_clean(report)


@pytest.mark.parametrize("path", ["", "dit_stepper/"], ids=["landing", "dit_stepper"])
def test_phone_viewport_nothing_cut_off(page, browser_hub_url, path):
    page.set_viewport_size(PHONE)
    report = walk(page, browser_hub_url + path, click=bool(path), every_tab=bool(path))
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    shot(page, f"phone-{path.strip('/') or 'landing'}")
    record_report(report, f"phone 390x844: /{path}")
    assert overflow <= 1, f"{path or 'landing'} scrolls sideways by {overflow} px at 390 px wide"
    if path:
        assert_clean(report)
    else:  # the landing holds the learning path's cards, no inputs
        assert page.locator(".vitlab-card:visible").count() == len(TUTORIALS)
        assert not report.errors, report.errors


# ---- the walker must catch what it is for: a check that cannot fail checks nothing ----

class NotRendered(gr.Number):
    """What broke the DiT page: a component class the front end does not know (it looks components up by
    class name, and finds no "notrendered"), so the element never renders and its asset request fails."""


def _unknown_component_page() -> gr.Blocks:
    with gr.Blocks() as demo:
        NotRendered(1, label="lost input")
        ok = gr.Number(2, label="fine input", elem_id="fine")
        out = gr.Textbox(label="out", elem_id="out")
        gr.Button("Run", variant="primary", elem_id="b0").click(lambda x: str(x), ok, out)
    return demo


def _careless_page() -> gr.Blocks:
    with gr.Blocks() as demo:
        ok = gr.Number(2, label="fine input", elem_id="fine")
        empty_out = gr.Textbox(label="left empty", elem_id="out")
        gr.Button("Runs but fills nothing", variant="primary", elem_id="b1").click(lambda x: "", ok, empty_out)
        err_out = gr.Textbox(label="never filled", elem_id="out2")

        def fail(x):
            raise gr.Error("broken on purpose")
        gr.Button("Fails", variant="primary", elem_id="b2").click(fail, ok, err_out)
    return demo


def _walk_alone(demo: gr.Blocks):
    from fastapi import FastAPI
    from playwright.sync_api import sync_playwright

    app = gr.mount_gradio_app(FastAPI(), demo, path="/")
    with BackgroundServer(app) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            return walk(browser.new_page(), server.url)
        finally:
            browser.close()


def test_the_walker_reports_a_page_whose_component_never_renders():
    report = _walk_alone(_unknown_component_page())
    assert any("still loading" in e for e in report.errors), report
    assert any("could not click 'Run'" in e for e in report.errors), report
    assert any(e.startswith("HTTP 404") for e in report.errors), report  # the front end asks for its code


def test_the_walker_reports_an_empty_output_and_an_error_toast():
    report = _walk_alone(_careless_page())
    assert any("fine input" in r for r in report.rendered), report
    assert any("left empty" in r for r in report.empty_outputs), report
    assert any("broken on purpose" in e for e in report.errors), report

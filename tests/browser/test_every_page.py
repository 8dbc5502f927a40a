"""Every page used as a person would (issue 14): each space on its own URL and the hub with every tab open,
every reachable input rendered, each primary button clicked with the defaults, every output it feeds
holding a value, no console error, failed request or error toast; a phone viewport; screenshots.

The pages and buttons exercised are written to screenshots/pages.json for review.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import gradio as gr
import pytest

from hub.registry import SPACES, TUTORIALS
from tests.browser.conftest import CHROMIUM, FLAGS, SCREENSHOTS, shot
from tests.browser.page_walker import walk
from tests.serving import BackgroundServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}


def _record(report, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / "pages.json"
    pages = json.loads(path.read_text()) if path.is_file() else {}
    pages[name] = asdict(report)
    path.write_text(json.dumps(pages, indent=1) + "\n")


def _assert_clean(report) -> None:
    assert report.rendered, f"nothing rendered on {report.url}"
    assert not report.not_rendered, f"{report.url}: inputs that did not render: {report.not_rendered}"
    assert not report.empty_outputs, f"{report.url}: outputs left empty after a click: {report.empty_outputs}"
    assert not report.errors, f"{report.url}: {report.errors}"


@pytest.mark.parametrize("slug", [t.slug for t in SPACES])
def test_each_space_page_works_with_its_defaults(page, browser_hub_url, slug):
    report = walk(page, f"{browser_hub_url}{slug}/", click=True, every_tab=True)
    _record(report, f"/{slug}/")
    shot(page, f"page-{slug}")
    assert report.clicked, f"{slug} has no primary button"
    _assert_clean(report)


def test_the_hub_opens_every_tab_and_runs_every_primary_button(page, browser_hub_url):
    report = walk(page, browser_hub_url, click=True, every_tab=True)
    _record(report, "hub, every tab")
    shot(page, "hub-after-every-button")
    assert len(report.clicked) >= len(SPACES)
    _assert_clean(report)


@pytest.mark.parametrize("path", ["", "dit_stepper/"], ids=["landing", "dit_stepper"])
def test_phone_viewport_nothing_cut_off(page, browser_hub_url, path):
    page.set_viewport_size(PHONE)
    report = walk(page, browser_hub_url + path, click=bool(path), every_tab=bool(path))
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    shot(page, f"phone-{path.strip('/') or 'landing'}")
    _record(report, f"phone 390x844: /{path}")
    assert overflow <= 1, f"{path or 'landing'} scrolls sideways by {overflow} px at 390 px wide"
    if path:
        _assert_clean(report)
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

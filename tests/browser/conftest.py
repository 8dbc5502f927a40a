"""Playwright on Debian's chromium (Playwright cannot download its own browser here)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.serving import BackgroundServer

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def pytest_collection_modifyitems(config, items):
    if not Path(CHROMIUM).exists():
        reason = (f"*** browser tests SKIPPED: {CHROMIUM} is missing (make test installs Debian chromium "
                  "with apt; apt was unavailable here) ***")
        print("\n" + reason)
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser_hub_url():
    from hub.app import create_app

    with BackgroundServer(create_app()) as server:
        yield server.url


@pytest.fixture()
def page(request, tmp_path):
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(120_000)  # a loaded 2-core CI machine renders slowly
        pg.set_default_navigation_timeout(120_000)
        yield pg
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            pg.screenshot(path=str(SCREENSHOTS / f"FAILED-{request.node.name}.png"), full_page=True)
        context.close()
        browser.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def shot(page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def record_report(report, name: str) -> None:
    """Add a walk's report to screenshots/pages.json, for review."""
    SCREENSHOTS.mkdir(exist_ok=True)
    # one file per pytest-xdist worker ("gw0", ...): two processes must not rewrite one file
    path = SCREENSHOTS / f"pages{'-' + os.environ['PYTEST_XDIST_WORKER'] if 'PYTEST_XDIST_WORKER' in os.environ else ''}.json"
    pages = json.loads(path.read_text()) if path.is_file() else {}
    pages[name] = asdict(report)
    path.write_text(json.dumps(pages, indent=1) + "\n")


def assert_clean(report) -> None:
    """A walk found every input rendered, every fed output filled, and no error."""
    assert report.rendered, f"nothing rendered on {report.url}"
    assert not report.not_rendered, f"{report.url}: inputs that did not render: {report.not_rendered}"
    assert not report.empty_outputs, f"{report.url}: outputs left empty after a click: {report.empty_outputs}"
    assert not report.errors, f"{report.url}: {report.errors}"


__all__ = ["assert_clean", "record_report", "shot", "shutil"]

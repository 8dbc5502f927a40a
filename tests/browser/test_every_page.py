"""Every space used as a person would (issue 14), each on its own URL: every reachable input rendered (in every
tab and accordion), each primary button clicked with the defaults, every output it feeds holding a value, no
console error, failed request or error toast; a screenshot of each. (The hub with every tab open, a phone
viewport and the walker's own checks: test_hub_walk.py, a separate file so pytest-xdist runs the two in parallel.)

The pages and buttons exercised are written to screenshots/pages.json (pages-gw0.json... under pytest-xdist) for review.
"""

from __future__ import annotations

import pytest

from hub.registry import SPACES
from tests.browser.conftest import assert_clean, record_report, shot
from tests.browser.page_walker import walk

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("slug", [t.slug for t in SPACES])
def test_each_space_page_works_with_its_defaults(page, browser_hub_url, slug):
    report = walk(page, f"{browser_hub_url}{slug}/", click=True, every_tab=True)
    record_report(report, f"/{slug}/")
    shot(page, f"page-{slug}")
    assert report.clicked, f"{slug} has no primary button"
    assert_clean(report)

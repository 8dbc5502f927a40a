"""Use a gradio page as a person would, driven by the page's own config (``window.gradio_config``).

Every component of a space carries a DOM id (``hub.app.build_space``), so the config's component ids
map to elements. From the layout tree we know which blocks a person can see without clicking
(not in a closed accordion, not in an unselected tab, not hidden) and how to reach any other one
(click its tab, open its accordion). ``walk`` then:

- checks that every reachable component rendered (an element with a size: the DiT page once showed
  no controls at all, while the suite was green);
- clicks each primary button with the page's default inputs, waits for the page to settle, and
  checks that every output the click feeds (directly or through ``.then``/``.success``) holds a value;
- collects console errors, page errors, failed requests and error toasts along the way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# A component of these types is an input a person sees and uses.
INPUT_TYPES = {"textbox", "number", "slider", "dropdown", "radio", "checkbox", "checkboxgroup", "image",
               "file", "button", "uploadbutton", "dataframe", "colorpicker", "imageeditor", "code"}
SKIP_OUTPUT_TYPES = {"state", "timer", "browserstate"}

_CONFIG = "() => window.gradio_config ? {components: window.gradio_config.components, " \
          "dependencies: window.gradio_config.dependencies, layout: window.gradio_config.layout} : null"

# Does the element of a component hold a value? Placeholders (gradio's ".empty") and labels do not count.
_HOLDS_VALUE = """([id, type]) => {
  const el = document.getElementById(id);
  if (!el) return 'missing';
  if (el.offsetParent === null && getComputedStyle(el).position !== 'fixed') return 'hidden';
  if (el.querySelector('.empty, [data-testid="empty"]')) return 'empty';
  if (['image', 'gallery', 'annotatedimage'].includes(type))
    return el.querySelector('img[src]:not([src=""])') ? 'value' : 'empty';
  if (type === 'plot') return el.querySelector('img, svg, canvas') ? 'value' : 'empty';
  if (type === 'dataframe') return el.querySelector('tbody td') ? 'value' : 'empty';
  if (type === 'file') return el.querySelector('a[href], .file-preview td') ? 'value' : 'empty';
  const fields = Array.from(el.querySelectorAll('input, textarea'));
  if (['textbox', 'number', 'slider', 'code'].includes(type) && fields.length)
    return fields.some(f => f.value !== '') ? 'value' : 'empty';
  const clone = el.cloneNode(true);
  clone.querySelectorAll('label, [data-testid="block-label"], .block-label, button, .icon-button-wrapper')
       .forEach(n => n.remove());
  return clone.innerText.trim().length > 0 || clone.querySelector('img, svg, canvas') ? 'value' : 'empty';
}"""

# gradio's status tracker: queued/running classes, and the bars a handler's gr.Progress draws
_BUSY = "() => document.querySelectorAll('.pending, .generating, .eta-bar, .progress-level, .progress-bar, .meta-text').length"
_TOASTS = "() => Array.from(document.querySelectorAll('.toast-body.error, [data-testid=\"toast-body\"].error'))" \
          ".map(t => t.innerText.trim())"


@dataclass
class Report:
    url: str
    rendered: list[str] = field(default_factory=list)
    not_rendered: list[str] = field(default_factory=list)
    clicked: list[str] = field(default_factory=list)
    empty_outputs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def listen(page, errors: list[str]) -> None:
    """Record console errors, uncaught page errors, failed requests and HTTP errors into ``errors``."""
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} {r.failure}")
            if not _closed_stream(r) else None)
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)


def _closed_stream(request) -> bool:
    """gradio's front end aborts its own event streams (queue results, heartbeat) once they are done."""
    return request.failure == "net::ERR_ABORTED" and ("/queue/data" in request.url or "heartbeat" in request.url)


def _index(config: dict) -> tuple[dict, dict]:
    """component id -> component; component id -> list of ancestor ids (root first)."""
    components = {c["id"]: c for c in config["components"]}
    parents: dict[int, list[int]] = {}

    def visit(node: dict, path: list[int]) -> None:
        parents[node["id"]] = path
        for child in node.get("children", []) or []:
            visit(child, path + [node["id"]])

    visit(config["layout"], [])
    return components, parents


def _label(component: dict) -> str:
    props = component.get("props", {})
    return str(props.get("label") or props.get("value") or component["type"])


def _blocked_by(cid: int, components: dict, parents: dict, opened: set[int]) -> list[int]:
    """The ancestors (tab items, closed accordions) that must be clicked before ``cid`` can be seen;
    None when something on the path is hidden (visible=False)."""
    steps = []
    for ancestor in parents.get(cid, []) + [cid]:
        comp = components.get(ancestor)
        if comp is None:
            continue
        props = comp.get("props", {})
        if props.get("visible") is False:
            return None
        if comp["type"] == "tabitem" and ancestor not in opened:
            steps.append(ancestor)
        if comp["type"] == "accordion" and not props.get("open", True) and ancestor not in opened:
            steps.append(ancestor)
    return steps


def _first_tabs(components: dict, parents: dict) -> set[int]:
    """Tab items shown without a click: the first (or the selected) child of each Tabs."""
    shown = set()
    children: dict[int, list[int]] = {}
    for cid, path in parents.items():
        if path and components.get(path[-1], {}).get("type") == "tabs":
            children.setdefault(path[-1], []).append(cid)
    for tabs, items in children.items():
        selected = components[tabs].get("props", {}).get("selected")
        pick = [i for i in items if selected is not None
                and components.get(i, {}).get("props", {}).get("id") == selected] or items[:1]
        shown.update(pick)
    return shown


def _open(page, cid: int, components: dict, parents: dict, opened: set[int]) -> None:
    """Click a tab item's tab or an accordion's label; a selected tab unselects its siblings."""
    comp = components[cid]
    try:
        if comp["type"] == "tabitem":
            label = comp["props"]["label"]
            tab = page.get_by_role("tab", name=label, exact=True).locator("visible=true")
            if tab.count():
                tab.first.click(timeout=15_000)
                page.get_by_role("tab", name=label, exact=True, selected=True).first.wait_for(timeout=15_000)
            else:  # a narrow screen folds tabs into gradio's "More tabs" menu
                page.locator('button[aria-label="More tabs"]').locator("visible=true").first.click(timeout=15_000)
                page.get_by_role("button", name=label, exact=True).locator("visible=true").first.click(timeout=15_000)
            siblings = {c for c, path in parents.items() if path and path[-1] == parents[cid][-1]}
            opened -= siblings
        else:
            page.locator(f"#{comp['props']['elem_id']}").get_by_text(comp["props"]["label"], exact=True) \
                .first.click(timeout=15_000)
    except Exception as err:
        raise AssertionError(f"could not open {comp['type']} {_label(comp)!r}: {str(err).splitlines()[0]}") from None
    opened.add(cid)
    page.wait_for_timeout(300)


def _reach(page, cid: int, components: dict, parents: dict, opened: set[int]) -> bool:
    """Open whatever hides ``cid``; False when it is hidden for good (visible=False)."""
    steps = _blocked_by(cid, components, parents, opened)
    if steps is None:
        return False
    for step in steps:
        _open(page, step, components, parents, opened)
    return True


def _check_rendered(page, components: dict, parents: dict, opened: set[int], report: Report, seen: set[int]) -> None:
    for cid, comp in components.items():
        elem = comp.get("props", {}).get("elem_id")
        if cid in seen or comp["type"] not in INPUT_TYPES or not elem or cid not in parents:
            continue
        if _blocked_by(cid, components, parents, opened) != []:
            continue
        seen.add(cid)
        locator = page.locator(f"#{elem}")
        box = locator.first.bounding_box() if locator.count() else None
        name = f"{comp['type']} {_label(comp)!r}"
        (report.rendered if box and box["width"] > 0 and box["height"] > 0 else report.not_rendered).append(name)


def settle(page, timeout_s: float = 240.0) -> bool:
    """Wait until no component shows gradio's pending/generating tracker for one second; False on timeout."""
    page.wait_for_timeout(200)  # the tracker shows within a frame of the click; then 1 s calm
    deadline = time.monotonic() + timeout_s
    calm_since = None
    while time.monotonic() < deadline:
        if page.evaluate(_BUSY) == 0:
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= 1.0:
                return True
        else:
            calm_since = None
        page.wait_for_timeout(200)
    return False


def _outer_tab(cid: int, components: dict, parents: dict) -> int | None:
    """The outermost tab item holding ``cid`` (in the hub: the space's tab), or None."""
    return next((a for a in parents.get(cid, []) if components.get(a, {}).get("type") == "tabitem"), None)


def walk(page, url: str, click: bool = True, every_tab: bool = False, one_click_per_tab: bool = False) -> Report:
    """Open ``url``; check that every component a person can see rendered (with ``every_tab``, in every
    tab and accordion too); click each primary button with the defaults (if ``click``).

    ``one_click_per_tab`` clicks only the first primary button under each outermost tab: in the hub every
    space is one such tab, and each space's own URL is walked with every button clicked, so the hub walk
    only has to show that events fire from inside its tabs."""
    report = Report(url)
    listen(page, report.errors)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("() => window.gradio_config && document.querySelector('.gradio-container')")
    if not settle(page, timeout_s=60):  # load events (examples, defaults) finish first
        report.errors.append("still loading 60 s after opening (a component that never rendered?)")
    config = page.evaluate(_CONFIG)
    components, parents = _index(config)
    opened = _first_tabs(components, parents)
    seen: set[int] = set()

    _check_rendered(page, components, parents, opened, report, seen)
    if every_tab:
        for cid, comp in components.items():
            if comp["type"] in ("tabitem", "accordion") and cid in parents and cid not in opened:
                if _reach(page, cid, components, parents, opened):
                    if comp["type"] == "accordion" and not comp["props"].get("open", True):
                        _open(page, cid, components, parents, opened)
                    _check_rendered(page, components, parents, opened, report, seen)
                    report.errors.extend(f"after opening {_label(comp)!r}: {t}" for t in page.evaluate(_TOASTS))

    if click:
        buttons = [c for c in components.values()
                   if c["type"] == "button" and c["props"].get("variant") == "primary" and c["id"] in parents]
        clicked_tabs: set[int | None] = set()
        for button in buttons:
            tab = _outer_tab(button["id"], components, parents)
            if one_click_per_tab and tab is not None and tab in clicked_tabs:
                continue
            if not _reach(page, button["id"], components, parents, opened):
                continue
            clicked_tabs.add(tab)
            try:
                page.locator(f"#{button['props']['elem_id']}").click(timeout=15_000)
            except Exception as err:  # an overlay that never goes (the DiT page once) intercepts every click
                report.errors.append(f"could not click {_label(button)!r}: {str(err).splitlines()[0]}")
                continue
            report.clicked.append(_label(button))
            if not settle(page):
                report.errors.append(f"still busy 240 s after clicking {_label(button)!r}")
            report.errors.extend(f"error toast after {_label(button)!r}: {t}" for t in page.evaluate(_TOASTS))
            for cid in _fed_by(button["id"], config["dependencies"]):
                comp = components.get(cid)
                if comp is None or comp["type"] in SKIP_OUTPUT_TYPES or not comp["props"].get("elem_id"):
                    continue
                state = page.evaluate(_HOLDS_VALUE, [comp["props"]["elem_id"], comp["type"]])
                if state == "empty":
                    report.empty_outputs.append(f"{_label(button)!r} -> {comp['type']} {_label(comp)!r}")
    return report


def _fed_by(button_id: int, dependencies: list[dict]) -> list[int]:
    """Output ids of the click handlers of ``button_id`` and of everything chained after them."""
    deps = [d for d in dependencies if [button_id, "click"] in [list(t) for t in d["targets"]]]
    ids = {d["id"] for d in deps}
    grew = True
    while grew:
        chained = [d for d in dependencies if d.get("trigger_after") in ids and d["id"] not in ids]
        grew = bool(chained)
        deps += chained
        ids |= {d["id"] for d in chained}
    return list(dict.fromkeys(o for d in deps for o in d["outputs"]))

"""The hub: a landing tab with the learning path, then one tab per space.

``create_app`` also mounts every space on its own URL (``/<slug>/``), so a single tutorial
can be embedded in another site with an iframe or the ``<gradio-app>`` web component. Each
space's ``build()`` loads no weights, so building a space twice costs milliseconds.
"""

from __future__ import annotations

import html
import importlib
import logging
import traceback
from collections.abc import Iterable, Sequence

import gradio as gr

from hub.registry import PHASES, SPACES, TUTORIALS, Tutorial

log = logging.getLogger(__name__)

TITLE = "Vision Transformer Lab"
THEME = gr.themes.Soft(primary_hue="indigo")
CSS = """
.vitlab-path { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.vitlab-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px; }
.vitlab-card.planned { opacity: 0.55; }
.vitlab-card h4 { margin: 0 0 4px 0; }
.vitlab-badge { font-size: 0.75em; padding: 1px 6px; border-radius: 6px; background: var(--color-accent-soft); }
"""


def select(only: Iterable[str] | None = None, tutorials: Sequence[Tutorial] = SPACES) -> list[Tutorial]:
    """The spaces to serve, in learning-path order; ``only`` filters by slug."""
    if only is None:
        return list(tutorials)
    wanted = [s.strip() for s in only if s.strip()]
    known = {t.slug for t in tutorials}
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValueError(f"unknown space(s) {unknown}; choose from {sorted(known)}")
    return [t for t in tutorials if t.slug in wanted]


def build_space(tutorial: Tutorial) -> gr.Blocks:
    """Import ``spaces.<slug>.app`` and call its ``build()``."""
    module = importlib.import_module(tutorial.module)
    return module.build()


def _landing(selected: list[Tutorial], failed: dict[str, str]) -> str:
    served = {t.slug for t in selected}
    parts = [
        f"<h2>{TITLE}</h2><p>Interactive tutorials on vision transformers where every widget "
        "computes for real: a model runs, or a formula that a test checks. Follow the path "
        "in order, or jump to a tab.</p>"
    ]
    for phase in PHASES:
        cards = []
        for i, t in enumerate(TUTORIALS, start=1):
            if t.phase != phase:
                continue
            if t.slug in failed:
                status = "error"
            elif t.slug in served:
                status = "available"
            else:
                status = "planned"
            cls = "vitlab-card" + ("" if status == "available" else " planned")
            cards.append(
                f'<div class="{cls}" data-slug="{t.slug or ""}"><h4>{i}. {t.emoji} {html.escape(t.title)}</h4>'
                f'<span class="vitlab-badge">{status}</span><p>{html.escape(t.summary)}</p></div>'
            )
        parts.append(f"<h3>{phase}</h3><div class='vitlab-path'>{''.join(cards)}</div>")
    return "".join(parts)


def build_hub(only: Iterable[str] | None = None, tutorials: Sequence[Tutorial] = SPACES) -> gr.Blocks:
    """Landing tab plus one tab per space. A space whose build() raises becomes an error tab."""
    selected = select(only, tutorials)
    built: dict[str, gr.Blocks] = {}
    failed: dict[str, str] = {}
    for t in selected:  # build outside the hub's context, then render into a tab
        try:
            built[t.slug] = build_space(t)
        except Exception:
            log.exception("space %s failed to build", t.slug)
            failed[t.slug] = traceback.format_exc(limit=3)

    with gr.Blocks(title=TITLE) as hub:
        with gr.Tabs():
            with gr.Tab("🗺️ Learning path", id="home"):
                gr.HTML(_landing(selected, failed))
            for t in selected:
                with gr.Tab(f"{t.emoji} {t.title}", id=t.slug):
                    if t.slug in built:
                        built[t.slug].render()
                    else:
                        gr.Markdown(
                            f"### {t.emoji} {t.title} is unavailable\n\nThis space failed to build; the "
                            f"other tabs still work. The error was:\n\n```\n{failed[t.slug]}\n```"
                        )
    return hub


def create_app(only: Iterable[str] | None = None, tutorials: Sequence[Tutorial] = SPACES):
    """FastAPI app: each space alone at ``/<slug>/`` and the hub at ``/``."""
    from fastapi import FastAPI

    app = FastAPI(title=TITLE)
    for t in select(only, tutorials):
        try:
            space = build_space(t)
        except Exception:
            continue  # the hub tab shows the error
        gr.mount_gradio_app(app, space, path=f"/{t.slug}", theme=THEME, css=CSS, footer_links=["api"])
    gr.mount_gradio_app(app, build_hub(only, tutorials), path="/", theme=THEME, css=CSS, footer_links=["api"])
    return app

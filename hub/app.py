"""The hub: a landing tab with the learning path, then one tab per space.

``create_app`` also serves every space on its own URL (``/<slug>/``), so a single tutorial
can be embedded in another site with an iframe or the ``<gradio-app>`` web component.

Start-up renders each space once, straight into its hub tab with ``render(hub)``, and imports no
torch (issue 14: building each space twice as a Blocks of its own, about 0.25 s of gradio set-up
each, plus heavy imports, made start-up 2.15x a bare gradio app). A space's own URL is built on its
first request (``LazySpace``): gradio's ``Blocks.render`` renumbers the functions of the Blocks it
renders, so one Blocks object cannot serve both the hub tab and a page of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
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


def _give_dom_ids(blocks, slug: str) -> None:
    """``elem_id = "<slug>-<id>"`` for every block without one: CSS and the browser test can then find the
    element of any component or layout block the page config names (gradio puts no id on one otherwise)."""
    for block in blocks:
        if hasattr(block, "elem_id") and not block.elem_id:
            block.elem_id = f"{slug}-{block._id}"


def build_space(tutorial: Tutorial) -> gr.Blocks:
    """The space alone: ``spaces.<slug>.app.build()``, with DOM ids."""
    demo = importlib.import_module(tutorial.module).build()
    _give_dom_ids(demo.blocks.values(), tutorial.slug)
    return demo


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
    """Landing tab plus one tab per space, each rendered in place by its ``render(demo)``.
    A space whose render raises becomes an error tab; the others still work."""
    selected = select(only, tutorials)
    failed: dict[str, str] = {}
    with gr.Blocks(title=TITLE) as hub:
        with gr.Tabs():
            with gr.Tab("🗺️ Learning path", id="home"):
                landing = gr.HTML()
            for t in selected:
                with gr.Tab(f"{t.emoji} {t.title}", id=t.slug):
                    before = set(hub.blocks)
                    try:
                        importlib.import_module(t.module).render(hub)
                    except Exception:
                        log.exception("space %s failed to build", t.slug)
                        failed[t.slug] = traceback.format_exc(limit=3)
                        gr.Markdown(
                            f"### {t.emoji} {t.title} is unavailable\n\nThis space failed to build; the "
                            f"other tabs still work. The error was:\n\n```\n{failed[t.slug]}\n```"
                        )
                    _give_dom_ids([b for i, b in hub.blocks.items() if i not in before], t.slug)
        landing.value = _landing(selected, failed)  # read when the Blocks closes, so failures show
    return hub


class LazySpace:
    """An ASGI app that builds one space on its first request and serves it from then on.

    It is mounted at ``/<slug>`` like the gradio app it stands for. The first request builds the
    space, mounts it on a private FastAPI app and runs that app's lifespan (which starts gradio's
    queue); ``aclose`` ends that lifespan when the hub shuts down. A space whose build fails answers
    500 with the error, and is tried again on the next request.
    """

    def __init__(self, tutorial: Tutorial) -> None:
        self.tutorial = tutorial
        self._app = None
        self._lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()

    async def _served(self):
        if self._app is None:
            async with self._lock:
                if self._app is None:
                    from fastapi import FastAPI

                    app = FastAPI()
                    gr.mount_gradio_app(app, build_space(self.tutorial), path="/", theme=THEME, css=CSS,
                                        footer_links=["api"])
                    await self._stack.enter_async_context(app.router.lifespan_context(app))
                    self._app = app
        return self._app

    async def __call__(self, scope, receive, send) -> None:
        try:
            app = await self._served()
        except Exception:
            log.exception("space %s failed to build", self.tutorial.slug)
            if scope["type"] == "http":
                from starlette.responses import PlainTextResponse

                message = f"{self.tutorial.title} failed to build:\n\n{traceback.format_exc(limit=3)}"
                await PlainTextResponse(message, status_code=500)(scope, receive, send)
            return
        await app(scope, receive, send)

    async def aclose(self) -> None:
        await self._stack.aclose()


def _redirect_to(url: str):
    from starlette.responses import RedirectResponse

    async def redirect():
        return RedirectResponse(url)
    return redirect


def create_app(only: Iterable[str] | None = None, tutorials: Sequence[Tutorial] = SPACES):
    """FastAPI app: the hub at ``/`` and each space alone at ``/<slug>/`` (built on first visit)."""
    from fastapi import FastAPI

    selected = select(only, tutorials)
    lazy = [LazySpace(t) for t in selected]

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        for space in lazy:
            await space.aclose()

    app = FastAPI(title=TITLE, lifespan=lifespan)
    for space in lazy:  # mounted before the hub's catch-all "/"
        slug = space.tutorial.slug
        app.add_api_route(f"/{slug}", _redirect_to(f"/{slug}/"), include_in_schema=False)
        app.mount(f"/{slug}", space)
    gr.mount_gradio_app(app, build_hub(only, tutorials), path="/", theme=THEME, css=CSS, footer_links=["api"])
    return app

"""Template: a tutorial page as thin glue (copy this folder to start one; see "Add a tutorial" in the README).

``render(demo)`` creates the components and events in the current Blocks: the hub calls it inside the
space's tab, ``build()`` wraps it for the page alone. Neither imports torch or matplotlib: ``compute``
and plotting load inside the handlers, on first use.
"""

from __future__ import annotations

import gradio as gr

from hub.registry import get as tutorial
from shared.ui import downloads, page, raw_values, sample_examples, user_errors, with_downloads

from . import options

SLUG = "_template"  # the folder name, registry key and api_name prefix
TUTORIAL = tutorial(SLUG)  # title and emoji are typed once, in hub/registry.py
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = ()  # embedded models (shared/weights/<name>) that `hub export` must copy


def _figure(means):
    from matplotlib.figure import Figure  # not at start-up

    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot()
    ax.imshow(means.astype("uint8"))
    ax.set_title("mean colour of each patch")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


@user_errors
def run(image, patch_size, progress: gr.Progress = gr.Progress()):
    """Patch grid of ``image``: the plot, one table row per patch row, and the stats."""
    import pandas as pd

    from . import compute  # imports what the maths needs, at first use

    progress(0, desc="computing")
    result = compute.patch_means(image, patch_size)
    table = pd.DataFrame({"row": range(result.grid),
                          "mean brightness": result.means.mean(axis=(1, 2)).round(1)})
    return _figure(result.means), table, result.stats


def render(demo: gr.Blocks) -> None:
    """The page's components and events, in the current Blocks context."""
    samples = sample_examples()
    gr.Markdown(f"## {TUTORIAL.emoji} {TUTORIAL.title}\n{TUTORIAL.summary}")
    with gr.Row():
        with gr.Column():
            image = gr.Image(samples[0] if samples else None, label="Image", type="pil", height=240)
            patch = gr.Slider(options.MIN_PATCH, options.MAX_PATCH, value=options.DEFAULT_PATCH, step=1,
                              label="patch size")
            go = gr.Button("Run", variant="primary")
        with gr.Column():
            plot = gr.Plot(label="Patch means")
            table = gr.Dataframe(label="Per patch row")
            stats = gr.JSON(label="Stats")
            files = downloads()
    gr.Examples([[p, options.DEFAULT_PATCH] for p in samples], inputs=[image, patch])
    outputs = [plot, table, stats]
    raw_values(go.click, with_downloads(run, outputs), [image, patch], outputs + [files], api_name=f"{SLUG}_run")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()

"""Self-supervised learning: a real masked autoencoder at any mask ratio, and contrastive views (issue 21).

Public endpoint: ``mae_masking_reconstruct(image, mask_ratio, seed) -> (masked image, reconstruction image,
stats JSON)``. ``render(demo)`` / ``build()`` import no torch or matplotlib: ``compute`` loads in the handlers.
"""

from __future__ import annotations

import json

import gradio as gr

from hub.registry import get as tutorial
from shared.models import local_path
from shared.ui import downloads, page, raw_values, sample_examples, user_errors, with_downloads

from . import options

SLUG = "mae_masking"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (options.MODEL,)

PAPERS = {
    "mae": "He et al., 2022 (Masked Autoencoders Are Scalable Vision Learners)",
    "beit": "Bao et al., 2022 (BEiT)",
    "simclr": "Chen et al., 2020 (SimCLR)",
}


def facts() -> dict:
    """The shipped model's config.json and metrics.json (read, never typed; empty when absent)."""
    folder = local_path(options.MODEL)
    out: dict = {}
    for name in ("config.json", "metrics.json"):
        path = folder / name
        if path.is_file():
            out[name.removesuffix(".json")] = json.loads(path.read_text())
    return out


def _intro(f: dict) -> str:
    c, m = f.get("config", {}), f.get("metrics", {})
    if not c or not m:
        return (f"## {TUTORIAL.emoji} {TITLE}\n{TUTORIAL.summary}\n\n**{options.MODEL} is not trained yet**: run "
                f"`python -m shared.training {options.MODEL}`.")
    g = c["image_size"] // c["patch_size"]
    return (
        f"## {TUTORIAL.emoji} {TITLE}\n{TUTORIAL.summary}\n\n"
        f"A masked autoencoder ({PAPERS['mae']}) trained here on shapes: `{options.MODEL}`, transformers' "
        f"`ViTMAEForPreTraining`, image {c['image_size']}, patch {c['patch_size']} ({g}x{g} = {g * g} patches), "
        f"encoder width {c['hidden_size']} x {c['num_hidden_layers']} layers, decoder width "
        f"{c['decoder_hidden_size']} x {c['decoder_num_hidden_layers']}, {m.get('parameters', '?'):,} parameters, "
        f"trained at mask ratio {c['mask_ratio']} for {m.get('steps_trained')} steps of batch {m.get('batch_size')} "
        f"({m.get('train_wall_seconds')} s on this project's CPU), `norm_pix_loss={c['norm_pix_loss']}`.\n\n"
        f"**On {m.get('mse_images')} test-split images at ratio {m.get('eval_mask_ratio')}** "
        f"(per-pixel MSE on masked patches, pixels in [-1, 1]): masked MSE **{m.get('masked_mse')}** against "
        f"**{m.get('baseline_mse')}** for filling each masked patch with the mean colour of the visible ones "
        f"(ratio {m.get('mse_ratio')}). **Linear probe** on the frozen encoder's mean-pooled tokens "
        f"({m.get('probe_train_images')} train / {m.get('probe_test_images')} test images, {m.get('probe_classes')} "
        f"shape classes): **{m.get('linear_probe_accuracy')}**, against **{m.get('random_encoder_probe_accuracy')}** "
        f"for a randomly initialised encoder of the same shape."
    )


def _heatmap(rec):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 3)
    axes[0].imshow(rec.pasted_image, interpolation="nearest")
    axes[0].set_title("reconstruction pasted in")
    vmax = float(max(rec.patch_loss[rec.mask == 1].max(), rec.baseline_patch_loss[rec.mask == 1].max()))
    for ax, data, title in ((axes[1], rec.patch_loss, f"MAE, per masked patch\n(mean {rec.loss:.4f}; white: visible)"),
                            (axes[2], rec.baseline_patch_loss,
                             f"mean colour, per masked patch\n(mean {rec.baseline_loss:.4f}; white: visible)")):
        im = ax.imshow(data, cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=list(axes[1:]), shrink=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def _big(image, side: int = 256):
    """Pixel replication (nearest) to ``side`` for display: every model pixel becomes a block, nothing is invented."""
    from PIL import Image

    k = max(1, side // image.width)
    return image.resize((image.width * k, image.height * k), Image.NEAREST)


@user_errors
def mae_masking_reconstruct(image, mask_ratio, seed, progress: gr.Progress = gr.Progress()):
    """Mask ``image`` the way ViTMAE does (seeded noise), reconstruct; the stats hold the mask and both losses."""
    from . import compute

    progress(0, desc="loading the model")
    rec = compute.reconstruct(image, mask_ratio, seed)
    return _big(rec.masked_image), _big(rec.pasted_image), rec.stats


@user_errors
def loss_details(image, mask_ratio, seed, progress: gr.Progress = gr.Progress()):
    """The per-patch loss heatmap and the loss against the mean-colour baseline."""
    import pandas as pd

    from . import compute

    progress(0, desc="measuring")
    rec = compute.reconstruct(image, mask_ratio, seed)
    table = pd.DataFrame([{"predictor": "MAE decoder", "masked MSE": round(rec.loss, 5)},
                          {"predictor": "mean colour of the visible patches", "masked MSE": round(rec.baseline_loss, 5)}])
    return _heatmap(rec), table


@user_errors
def patterns(image, mask_ratio, seed, model, progress: gr.Progress = gr.Progress()):
    """Random, block-wise and grid masks at the same ratio, each reconstructed and measured."""
    import pandas as pd
    from matplotlib.figure import Figure

    from shared import validate

    from . import compute

    model = validate.choice(model, "model", options.MODELS)
    progress(0, desc=f"loading {model}")
    recs = compute.compare_patterns(image, mask_ratio, seed, model)
    fig = Figure(figsize=(6.5, 2.2 * len(recs)))
    axes = fig.subplots(len(recs), 2, squeeze=False)
    for row, rec in zip(axes, recs, strict=True):
        row[0].imshow(rec.masked_image, interpolation="nearest")
        row[0].set_title(f"{rec.extra['pattern']}: visible", fontsize=9)
        row[1].imshow(rec.pasted_image, interpolation="nearest")
        row[1].set_title(f"reconstruction, MSE {rec.loss:.4f}", fontsize=9)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    table = pd.DataFrame([{"pattern": r.extra["pattern"], "masked patches": int(r.mask.sum()),
                           "masked MSE": round(r.loss, 5), "mean-colour MSE": round(r.baseline_loss, 5),
                           "MSE / baseline": round(r.loss / r.baseline_loss, 3)} for r in recs])
    return fig, table


def _sweep_figure(df):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3))
    a, b = fig.subplots(1, 2)
    a.plot(df["mask ratio"], df["masked MSE"], "o-", label="MAE")
    a.plot(df["mask ratio"], df["mean-colour MSE"], "s--", label="mean colour")
    a.set_xlabel("eval mask ratio")
    a.set_ylabel("masked MSE")
    a.legend()
    b.plot(df["mask ratio"], df["probe accuracy (visible tokens)"], "o-")
    b.set_xlabel("eval mask ratio")
    b.set_ylabel("probe accuracy (visible tokens)")
    fig.tight_layout()
    return fig


def shipped_sweep():
    """The sweep stored in metrics.json by ``python -m shared.models eval mae-tiny-shapes`` (as a table)."""
    import pandas as pd

    m = facts().get("metrics", {})
    rows = [{"mask ratio": float(r), "masked MSE": v["masked_mse"], "mean-colour MSE": v["baseline_mse"],
             "probe accuracy (visible tokens)": v["probe_accuracy_visible_only"]} for r, v in m.get("sweep", {}).items()]
    return pd.DataFrame(rows)


@user_errors
def recompute_sweep(n_images, progress: gr.Progress = gr.Progress()):
    """The sweep recomputed live on ``n_images`` test (and as many train) images."""
    import pandas as pd

    from . import compute

    progress(0, desc="rendering shapes and loading the model")
    rows = compute.sweep(options.SWEEP_RATIOS, n_images,
                         on_step=lambda i, n: progress(i / n, desc=f"ratio {i} / {n}"))
    df = pd.DataFrame(rows)
    return _sweep_figure(df), df


@user_errors
def views(image, seed, batch, tau, progress: gr.Progress = gr.Progress()):
    """Two SimCLR views, cosine similarities against other images, and NT-Xent on the batch."""
    import pandas as pd

    from . import compute

    progress(0, desc="embedding views")
    r = compute.contrastive(image, seed, batch, tau)
    table = pd.DataFrame([{"image": "view B of the same image (positive)", "cosine to view A": round(r.positive, 4)},
                          *r.similarities])
    stats = {"cosine(view A, view B)": round(r.positive, 4),
             "max cosine(view A, other image)": max(s["cosine to view A"] for s in r.similarities),
             "nt_xent_trained_encoder": round(r.loss, 4), "nt_xent_random_encoder": round(r.random_encoder_loss, 4),
             "batch_images": r.batch, "views": 2 * r.batch, "temperature": r.tau}
    return _big(r.view_a), _big(r.view_b), table, stats


def render(demo: gr.Blocks) -> None:
    f = facts()
    samples = sample_examples()
    gr.Markdown(_intro(f))
    with gr.Row():
        image = gr.Image(samples[0] if samples else None, label="Image", type="pil", height=220)
        with gr.Column():
            ratio = gr.Slider(options.MIN_RATIO, options.MAX_RATIO, value=options.DEFAULT_RATIO, step=0.05,
                              label="mask ratio")
            seed = gr.Number(options.DEFAULT_SEED, precision=0, minimum=0, maximum=options.MAX_SEED, label="seed")
            gr.Markdown(
                "ViTMAE keeps `int(L x (1 - ratio))` of the L patches, those with the smallest noise; the page draws "
                "that noise from the seed and passes it to the model, so the same seed gives the same mask and the "
                "mask shown is the model's own.")
    if samples:
        gr.Examples([[p] for p in samples], inputs=[image])

    with gr.Tab("Mask and reconstruct"):
        go = gr.Button("Mask and reconstruct", variant="primary")
        with gr.Row():
            masked = gr.Image(label="visible patches (masked ones grey)", type="pil", format="png", height=280)
            recon = gr.Image(label="reconstruction of the masked patches pasted in", type="pil", format="png",
                             height=280)
        stats = gr.JSON(label="stats (the endpoint mae_masking_reconstruct)", max_height=260)
        heat = gr.Plot(label="per-patch loss")
        loss_table = gr.Dataframe(label="loss against the mean-colour baseline")
        files = downloads()
        gr.Markdown(f"Loss: per-pixel MSE over the masked patches in the model's normalised pixel space, as in "
                    f"{PAPERS['mae']}; the baseline fills each masked patch with the mean colour of the visible ones. The "
                    "images are the model's pixels enlarged by pixel replication (nearest) to about 256 px.")

    with gr.Tab("Mask patterns"):
        gr.Markdown(f"The same number of masked patches, three layouts: random (MAE), block-wise ({PAPERS['beit']}, "
                    f"Algorithm 1, on the model's patch grid), and grid (one visible patch per cell, MAE's Figure 6). Each is "
                    "passed to the model as noise ordering, so ViTMAE itself masks it.")
        model = gr.Dropdown(list(options.MODELS), value=options.MODEL, label="model",
                            info=f"{options.HUB_MODEL} needs network (or the Hugging Face cache); it loads through "
                                 "the same loader")
        pat_btn = gr.Button("Compare mask patterns", variant="primary")
        pat_plot = gr.Plot(label="mask patterns")
        pat_table = gr.Dataframe(label="reconstruction per pattern")
        pat_files = downloads()

    with gr.Tab("Why 75%"):
        gr.Markdown(
            f"{PAPERS['mae']} find that masking a high proportion of the image, e.g. 75%, gives a non-trivial, "
            "meaningful self-supervised task; their Figure 5 plots fine-tuning and linear-probe accuracy against "
            "the masking ratio, **one model pre-trained per ratio**. The table below is not that experiment: it is "
            f"one model, trained at {f.get('config', {}).get('mask_ratio', 0.75)}, **evaluated** at other ratios "
            "(masked MSE, the mean-colour baseline, and a linear probe on the visible tokens only). Shipped: "
            "computed by `python -m shared.models eval mae-tiny-shapes` on "
            f"{f.get('metrics', {}).get('mse_images')} test images; recompute it here on a subset.")
        gr.Dataframe(value=shipped_sweep(), label="shipped sweep (metrics.json)")
        metrics_file = local_path(options.MODEL) / "metrics.json"
        gr.File(value=str(metrics_file) if metrics_file.is_file() else None, label="download metrics.json",
                interactive=False, height=80)
        n_images = gr.Slider(options.MIN_SWEEP_IMAGES, options.MAX_SWEEP_IMAGES, value=options.DEFAULT_SWEEP_IMAGES,
                             step=10, label="images (test split to measure, as many from train to fit the probe)")
        sweep_btn = gr.Button("Recompute the sweep", variant="primary")
        sweep_plot = gr.Plot(label="loss and probe accuracy over mask ratios")
        sweep_table = gr.Dataframe(label="recomputed sweep")
        sweep_files = downloads()

    with gr.Tab("Contrastive views"):
        gr.Markdown(
            f"SimCLR ({PAPERS['simclr']}) learns by pulling two augmented views of one image together and pushing "
            "other images away. Here: two views (random resized crop, flip, colour jitter, greyscale), their cosine "
            "similarity under the trained MAE encoder (mean-pooled tokens) against other shapes, and the NT-Xent "
            "loss l(i,j) = -log exp(s_ij/τ) / Σ_{k≠i} exp(s_ik/τ) (their eq. 1) over the batch, beside the same loss "
            "under a random encoder. The MAE encoder was never trained with this loss.")
        with gr.Row():
            batch = gr.Slider(options.MIN_BATCH, options.MAX_BATCH, value=options.DEFAULT_BATCH, step=1,
                              label="batch (images, two views each)")
            tau = gr.Slider(options.MIN_TAU, options.MAX_TAU, value=options.DEFAULT_TAU, step=0.05,
                            label="temperature τ")
        view_btn = gr.Button("Make views", variant="primary")
        with gr.Row():
            view_a = gr.Image(label="view A", type="pil", format="png", height=280)
            view_b = gr.Image(label="view B", type="pil", format="png", height=280)
        sims = gr.Dataframe(label="cosine similarity to view A")
        view_stats = gr.JSON(label="contrastive stats", open=True)
        view_files = downloads()

    event = raw_values(go.click, mae_masking_reconstruct, [image, ratio, seed], [masked, recon, stats],
                       api_name=f"{SLUG}_reconstruct")
    detail_outs = [heat, loss_table, stats]

    def details_with_stats(image, mask_ratio, seed, progress: gr.Progress = gr.Progress()):
        fig, table = loss_details(image, mask_ratio, seed, progress)
        return fig, table, mae_masking_reconstruct(image, mask_ratio, seed)[2]

    raw_values(event.success, with_downloads(details_with_stats, detail_outs), [image, ratio, seed],
               detail_outs + [files], api_name=f"{SLUG}_loss")
    pat_outs = [pat_plot, pat_table]
    raw_values(pat_btn.click, with_downloads(patterns, pat_outs), [image, ratio, seed, model], pat_outs + [pat_files],
               api_name=f"{SLUG}_patterns")
    sweep_outs = [sweep_plot, sweep_table]
    raw_values(sweep_btn.click, with_downloads(recompute_sweep, sweep_outs), [n_images], sweep_outs + [sweep_files],
               api_name=f"{SLUG}_sweep")
    view_outs = [view_a, view_b, sims, view_stats]
    raw_values(view_btn.click, with_downloads(views, view_outs), [image, seed, batch, tau], view_outs + [view_files],
               api_name=f"{SLUG}_views")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()

"""V-JEPA: the real multi-block tube masks, and the feature-prediction objective on a tiny model (issue 19).

Public endpoint: ``vjepa_masking_mask(frames, image_size, patch_size, tubelet, seed) -> (image of the masked
clip, stats JSON)``. ``render(demo)`` / ``build()`` import no torch or matplotlib: ``compute`` loads in the handlers.
"""

from __future__ import annotations

import json

import gradio as gr

from hub.registry import get as tutorial
from shared.models import local_path, shipped_metrics
from shared.ui import downloads, page, raw_values, user_errors, with_downloads

from . import options

SLUG = "vjepa_masking"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (options.MODEL,)

PAPER = "Bardes et al., 2024 (Revisiting Feature Prediction for Learning Visual Representations from Video)"
CODE = ("facebookresearch/jepa at commit 51c59d5 (`src/masks/multiblock3d.py`, `app/vjepa/train.py`, "
        "`configs/pretrain/vitl16.yaml`)")


def facts() -> dict:
    """The shipped model's config.json and metrics.json (read, never typed; empty when absent)."""
    path = local_path(options.MODEL) / "config.json"
    return {"config": json.loads(path.read_text()) if path.is_file() else {},
            "metrics": shipped_metrics(options.MODEL) or {}}


def _intro(f: dict) -> str:
    head = (f"## {TUTORIAL.emoji} {TITLE}\n{TUTORIAL.summary}\n\n"
            f"V-JEPA ({PAPER}) learns from video without pixels: a **context encoder** sees the tokens a mask "
            "leaves visible, a narrow **predictor** guesses the features of the hidden tokens, and the loss is the L1 "
            "distance to what an **EMA target encoder** outputs there. The masks below are produced by a port of the "
            f"released mask generator ({CODE}), with the paper's two mask types.")
    c, m = f.get("config", {}), f.get("metrics", {})
    if not c or not m:
        return head + f"\n\n**{options.MODEL} is not trained yet**: run `python -m shared.training {options.MODEL}`."
    t, g = c["frames"] // c["tubelet_size"], c["image_size"] // c["patch_size"]
    return head + (
        f"\n\nThe model run here, `{options.MODEL}`, was trained on this project's moving-shapes clips: "
        f"{c['frames']} frames of {c['image_size']} px, tubelet {c['tubelet_size']}, patch {c['patch_size']} "
        f"({t}x{g}x{g} = {t * g * g} tokens), encoder width {c['hidden_size']} x {c['num_hidden_layers']} layers, "
        f"predictor width {c['predictor_hidden_size']} x {c['predictor_num_hidden_layers']}, "
        f"{m.get('parameters', 0):,} parameters, {m.get('steps_trained')} steps of batch {m.get('batch_size')} "
        f"({m.get('train_wall_seconds')} s of training, "
        + (f"on {m['trained_on']}" if m.get("trained_on") else f"{m.get('torch_threads')} threads") + ").")


def _probe_markdown(f: dict) -> str:
    m = f.get("metrics", {})
    if not m:
        return f"No metrics yet: train `{options.MODEL}` first."
    return (
        f"**Did it learn?** A linear probe (softmax regression) for the motion direction ({m.get('probe_classes')} "
        f"classes, chance {m.get('chance')}) on the frozen target encoder's mean-pooled tokens, fitted on "
        f"{m.get('probe_train_clips')} train clips and scored on {m.get('probe_test_clips')} held-out test clips: "
        f"**{m.get('direction_probe_accuracy')}** for the trained encoder against "
        f"**{m.get('random_encoder_direction_probe_accuracy')}** for the same encoder at its seeded initialisation "
        f"(context encoder: {m.get('context_encoder_direction_probe_accuracy')}). The same probe on **every "
        f"token's features** (concatenated instead of averaged): **{m.get('all_tokens_direction_probe_accuracy')}** "
        f"against **{m.get('random_encoder_all_tokens_direction_probe_accuracy')}** untrained. A mean over tokens "
        "throws away where and when things are, which is what a motion direction is made of; V-JEPA's own frozen "
        "evaluation reads the tokens with an attentive (cross-attention) probe rather than a mean "
        "(facebookresearch/jepa, `evals/video_classification_frozen`). The model never saw a direction label. "
        f"Computed by `python -m shared.models eval {options.MODEL}` and stored in metrics.json.")


def probe_table(f: dict):
    import pandas as pd

    m = f.get("metrics", {})
    rows = [("V-JEPA target encoder (trained)", m.get("direction_probe_accuracy")),
            ("V-JEPA context encoder (trained)", m.get("context_encoder_direction_probe_accuracy")),
            ("same encoder, untrained (same seed)", m.get("random_encoder_direction_probe_accuracy")),
            ("chance", m.get("chance"))]
    tokens = {rows[0][0]: m.get("all_tokens_direction_probe_accuracy"),
              rows[2][0]: m.get("random_encoder_all_tokens_direction_probe_accuracy")}
    return pd.DataFrame([{"encoder": r, "direction probe accuracy": v,
                          "same probe on all tokens": tokens.get(r)} for r, v in rows if v is not None])


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

@user_errors
def vjepa_masking_mask(frames, image_size, patch_size, tubelet, seed, progress: gr.Progress = gr.Progress()):
    """Both mask types of ``seed`` drawn over a test clip; the stats hold the masks (1 = target) and ratios."""
    from . import compute

    progress(0, desc="sampling masks")
    image, masks = compute.masked_clip(frames, image_size, patch_size, tubelet, seed)
    return image, masks.stats


@user_errors
def per_step_table(frames, image_size, patch_size, tubelet, seed):
    """Target tokens per time step for each type (the same at every step: the blocks span the whole clip)."""
    import pandas as pd

    from . import compute

    masks = compute.mask_for(frames, image_size, patch_size, tubelet, seed)
    t, h, w = masks.grid
    table = pd.DataFrame([{"time step": k, "frames": f"{k * int(tubelet)}-{(k + 1) * int(tubelet) - 1}",
                           "long-range targets": int(masks.long_range[k].sum()),
                           "short-range targets": int(masks.short_range[k].sum()), "tokens per step": h * w}
                          for k in range(t)])
    return table, masks.stats


def _ratio_figure(per_seed: dict, paper: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    bins = [i / 40 for i in range(41)]
    for name, colour in (("short-range", "#2870e6"), ("long-range", "#e63c28")):
        ax.hist(per_seed[name], bins=bins, alpha=0.6, color=colour, label=f"{name} (one clip's mask)")
    ax.axvline(paper, color="k", ls="--", label=f"paper: about {paper:.0%}")
    ax.set_xlabel("masking ratio (target tokens / all tokens)")
    ax.set_ylabel("seeds")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


@user_errors
def ratios(seeds, progress: gr.Progress = gr.Progress()):
    """Each type's ratio over ``seeds`` seeds at 16x224x224, patch 16, tubelet 2, and what the collator withholds."""
    import pandas as pd

    from . import compute

    progress(0, desc="one clip per seed")
    r = compute.ratio_stats(seeds)
    progress(0.3, desc=f"batches of {compute.COLLATOR_BATCH} clips")
    c = compute.collator_stats(seeds)
    rows = []
    for name in ("short-range", "long-range"):
        a, b = r["types"][name], c["types"][name]["withheld_from_encoder"]
        rows.append({"mask type": f"{name} ({a['blocks']} x {a['spatial_scale']})",
                     "one clip: mean": a["mean"], "min": a["min"], "max": a["max"],
                     "independent blocks 1-(1-a)^n": a["independent_blocks_estimate"],
                     f"batch of {c['batch_size']}: withheld mean": b["mean"], "withheld min": b["min"],
                     "withheld max": b["max"], "paper": f"about {options.PAPER_RATIO:.0%}"})
    stats = {"per_clip": {k: {q: v[q] for q in ("mean", "min", "max", "std", "mean_block_area",
                                                  "independent_blocks_estimate")} for k, v in r["types"].items()},
             "per_clip_mean_of_both_types": r["mean_of_both_types"], "collator": c["types"],
             "collator_withheld_mean_of_both_types": c["withheld_mean_of_both_types"],
             "seeds": r["seeds"], "grid": r["grid"], "paper_average": options.PAPER_RATIO}
    return _ratio_figure(r["per_seed"], options.PAPER_RATIO), pd.DataFrame(rows), stats


def _objective_figure(obj):
    import numpy as np
    from matplotlib.figure import Figure

    t, h, w = obj.masks.grid
    tub = obj.clip.shape[0] // t
    fig = Figure(figsize=(10, 5.2))
    axes = fig.subplots(len(obj.losses) * 2, 1)

    def strip(values):  # (t, h, w) -> (h, t*w + gaps) with NaN gaps
        cols = []
        for k in range(t):
            cols += [values[k], np.full((h, 1), np.nan)]
        return np.concatenate(cols[:-1], axis=1)

    for i, x in enumerate(obj.losses):
        frames = np.concatenate([obj.clip[k * tub] for k in range(t)], axis=1)  # (S, t*S, 3)
        ax = axes[2 * i]
        shaded = frames.astype(float)
        s = obj.clip.shape[1]
        cell = np.kron(np.concatenate(list(x.target), axis=1), np.ones((s // h, s // w))).astype(bool)
        shaded[cell] = 0.35 * shaded[cell] + 0.65 * np.array([230, 60, 40] if i else [40, 110, 230])
        ax.imshow(shaded.astype(np.uint8), interpolation="nearest")
        ax.set_title(f"{x.name}: targets shaded ({int(x.target.sum())} of {x.target.size} tokens); "
                     f"one column per time step", fontsize=9)
        ax2 = axes[2 * i + 1]
        lat = strip(x.latent_token_error / max(np.nanmax(x.latent_token_error), 1e-9))
        pix = strip(x.pixel_token_error / max(np.nanmax(x.pixel_token_error), 1e-9))
        both = np.concatenate([lat, np.full((1, lat.shape[1]), np.nan), pix], axis=0)
        ax2.imshow(both, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax2.set_title(f"per target token, each scaled to its max: top latent L1 (mean {x.latent_l1:.3f}), "
                      f"bottom pixel MSE of the context-mean fill (mean {x.pixel_mse_context_mean:.3f})", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def _momentum_figure(c: dict, m: dict):
    from matplotlib.figure import Figure

    from . import compute

    steps = int(m.get("steps_trained") or m.get("steps_planned") or 1)
    ema, scale = tuple(c.get("ema", (0.998, 1.0))), float(c.get("ipe_scale", 1.25))
    curve = compute.momentum_curve(steps, ema, scale)
    fig = Figure(figsize=(5, 2.6))
    ax = fig.add_subplot()
    ax.plot(range(steps), curve, label="momentum used at each step")
    ax.axhline(ema[1], color="grey", ls=":", label=f"{ema[1]} (reached at {scale} x the steps)")
    ax.set_xlabel("training step")
    ax.set_ylabel("EMA momentum m")
    ax.set_title(f"target <- m target + (1-m) context: {ema[0]} -> {curve[-1]:.5f}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@user_errors
def objective(clip_index, seed, progress: gr.Progress = gr.Progress()):
    """The tiny model's V-JEPA loss on one clip and both mask types, beside pixel losses; the momentum plot."""
    import pandas as pd

    from . import compute

    progress(0, desc=f"loading {options.MODEL}")
    obj = compute.objective(clip_index, seed)
    rows = [{"mask type": x.name, "target tokens": int(x.target.sum()),
             "latent L1: trained predictor": round(x.latent_l1, 4),
             "latent L1: constant (mean context feature)": round(x.latent_l1_context_mean, 4),
             "latent L1: untrained model": round(x.latent_l1_untrained, 4),
             "pixel MSE: context mean colour": round(x.pixel_mse_context_mean, 4),
             "pixel MSE: each token's own mean (oracle)": round(x.pixel_mse_token_mean_oracle, 4)}
            for x in obj.losses]
    f = facts()
    return (_objective_figure(obj), pd.DataFrame(rows), obj.stats,
            _momentum_figure(f.get("config", {}), f.get("metrics", {})))


# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def render(demo: gr.Blocks) -> None:
    f = facts()
    gr.Markdown(_intro(f))

    with gr.Tab("Masks"):
        gr.Markdown(
            "Both types, as `configs/pretrain/vitl16.yaml` sets them: **short-range** = the union of 8 blocks, each "
            "of spatial scale 0.15 of the frame; **long-range** = the union of 2 blocks of scale 0.7; aspect ratio "
            "0.75-1.5; temporal scale 1.0, so every block is a tube through the whole clip. One block size is drawn "
            "per call, then each block's position; a mask that leaves no context is drawn again. Each type is its "
            "own target (1 in the JSON), its complement the context. Red: long-range targets; blue: short-range "
            "targets; one column per token time step (its first frame), on a held-out moving-shapes clip.")
        with gr.Row():
            frames = gr.Number(options.DEFAULT_FRAMES, precision=0, label="frames", minimum=options.MIN_FRAMES,
                               maximum=options.MAX_FRAMES)
            size = gr.Number(options.DEFAULT_IMAGE_SIZE, precision=0, label="image size (px)",
                             minimum=options.MIN_IMAGE_SIZE, maximum=options.MAX_IMAGE_SIZE)
            patch = gr.Number(options.DEFAULT_PATCH, precision=0, label="patch size", minimum=options.MIN_PATCH,
                              maximum=options.MAX_PATCH)
            tubelet = gr.Number(options.DEFAULT_TUBELET, precision=0, label="tubelet (frames per token)",
                                minimum=options.MIN_TUBELET, maximum=options.MAX_TUBELET)
            seed = gr.Number(options.DEFAULT_SEED, precision=0, label="seed", minimum=0, maximum=options.MAX_SEED)
        gr.Markdown(f"Caps: frames divisible by the tubelet, image size divisible by the patch, a grid of at least "
                    f"{options.MIN_GRID_SIDE}x{options.MIN_GRID_SIDE} patches, at most {options.MAX_TOKENS} tokens.")
        go = gr.Button("Sample masks", variant="primary")
        masked = gr.Image(label="clip (top), long-range targets (red), short-range targets (blue)", type="pil",
                          format="png")
        stats = gr.JSON(label="stats (the endpoint vjepa_masking_mask)", max_height=260)
        steps_table = gr.Dataframe(label="target tokens per time step")
        files = downloads()

    with gr.Tab("Ratio over seeds"):
        gr.Markdown(
            f"Each type's masking ratio at V-JEPA's setting (16 frames of 224 px, patch 16, tubelet 2: 8x14x14 tokens) "
            f"over seeds 0..N-1, beside the paper's \"average masking ratio of about 90%\" ({PAPER}). "
            "**One clip's mask** is what the generator draws for one clip. Blocks overlap more than independent "
            "placement would make them (a block never crosses the border, so two 12x12 blocks in a 14x14 grid can "
            "only shift by 2 cells), so the union is below `1-(1-a)^n`. **In a batch**, the released collator cuts "
            "every clip's context list to the batch's shortest (`cm[:min_keep_enc]`, "
            "`src/masks/multiblock3d.py`), so the share of tokens withheld from the context encoder is set by the "
            "clip with the least context among 24 (`data.batch_size`); the target lists are cut the same way. "
            "The table shows both; which of these the paper's figure refers to, it does not say.")
        n_seeds = gr.Slider(options.MIN_SEEDS, options.MAX_SEEDS, value=options.BENCH_SEEDS, step=1,
                            label="seeds (and batches of 24)")
        ratio_btn = gr.Button("Measure ratios", variant="primary")
        ratio_plot = gr.Plot(label="masking ratio per seed")
        ratio_table = gr.Dataframe(label="ratio per mask type")
        ratio_stats = gr.JSON(label="ratio stats", open=False)
        ratio_files = downloads()

    with gr.Tab("Objective on the tiny model"):
        gr.Markdown(
            f"The loss of `{options.MODEL}` on one held-out clip, computed now: context encoder on the context tokens "
            "-> predictor (context tokens + one mask token per target position) -> L1 against the EMA target "
            "encoder's layer-normed features on the target tokens, for each mask type (V-JEPA's `loss_fn`, "
            "averaged over the types in training). Beside it, two baselines in the same latent space, and pixel "
            "losses on the same clip and mask (pixels in [-1, 1]).\n\n"
            f"**Why features, not pixels** ({PAPER}): a pixel objective must reproduce every detail of the hidden "
            "region, including what the context cannot determine; predicting in a learned feature space lets the "
            "model leave out what is unpredictable, and the paper's comparison of pixel and feature targets "
            "finds feature prediction better under frozen evaluation. Here the "
            "*oracle* column fills each target tubelet with its own true mean colour: its error is the "
            "texture, edges and background noise inside tokens that a pixel decoder would still have to "
            "model. Because every block spans all frames, no hidden token can be copied from the same place in "
            "a neighbouring frame.")
        with gr.Row():
            clip_index = gr.Number(options.DEFAULT_CLIP, precision=0, label="test clip index", minimum=0,
                                   maximum=options.MAX_CLIP)
            obj_seed = gr.Number(options.DEFAULT_SEED, precision=0, label="mask seed", minimum=0,
                                 maximum=options.MAX_SEED)
        obj_btn = gr.Button("Compute the objective", variant="primary")
        obj_plot = gr.Plot(label="targets and per-token errors")
        obj_table = gr.Dataframe(label="losses on this clip")
        obj_stats = gr.JSON(label="objective stats", open=False)
        momentum_plot = gr.Plot(label="EMA momentum schedule")
        obj_files = downloads()

    with gr.Tab("Did it learn?"):
        gr.Markdown(_probe_markdown(f))
        gr.Dataframe(value=probe_table(f), label="linear probe for motion direction (metrics.json)")
        metrics_file = local_path(options.MODEL) / "metrics.json"
        gr.File(value=str(metrics_file) if metrics_file.is_file() else None, label="download metrics.json",
                interactive=False, height=80)

    inputs = [frames, size, patch, tubelet, seed]
    event = raw_values(go.click, vjepa_masking_mask, inputs, [masked, stats], api_name=f"{SLUG}_mask")
    step_outs = [steps_table, stats]
    raw_values(event.success, with_downloads(per_step_table, step_outs), inputs, step_outs + [files],
               api_name=f"{SLUG}_per_step")
    ratio_outs = [ratio_plot, ratio_table, ratio_stats]
    raw_values(ratio_btn.click, with_downloads(ratios, ratio_outs), [n_seeds], ratio_outs + [ratio_files],
               api_name=f"{SLUG}_ratios")
    obj_outs = [obj_plot, obj_table, obj_stats, momentum_plot]
    raw_values(obj_btn.click, with_downloads(objective, obj_outs), [clip_index, obj_seed], obj_outs + [obj_files],
               api_name=f"{SLUG}_objective")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()

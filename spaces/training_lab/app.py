"""Training lab: train and fine-tune a real ViT live on the CPU, with DeiT's knobs, streaming curves, an
augmentation preview, fine-tuning strategies compared, exact LoRA counts and a pre-training cost estimate.

Thin glue: ``render``/``build`` import neither torch nor matplotlib; ``compute`` (torch, transformers,
peft) and the figures load inside the handlers. Each session has its own run (``runs.REGISTRY``, keyed by
gradio's session hash), at most ``MAX_CONCURRENT_RUNS`` at once.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from hub.registry import get as tutorial
from shared.models import local_path, shipped_metrics
from shared.ui import downloads, page, raw_values, user_errors, with_downloads

from . import options as o
from . import runs

SLUG = "training_lab"
TUTORIAL = tutorial(SLUG)
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = (o.BASE_MODEL,)
P = o.PAPERS


def base_facts() -> dict:
    """The embedded base model's sizes and held-out accuracy, read from its config.json and metrics.json."""
    c = json.loads((local_path(o.BASE_MODEL) / "config.json").read_text())
    m = shipped_metrics(o.BASE_MODEL) or {}
    g = c["image_size"] // c["patch_size"]
    return {"image_size": c["image_size"], "patch_size": c["patch_size"], "grid": f"{g}x{g}",
            "hidden_size": c["hidden_size"], "layers": c["num_hidden_layers"], "heads": c["num_attention_heads"],
            "parameters": m.get("parameters"), "accuracy": m.get("accuracy"), "eval_images": m.get("n")}


def intro() -> str:
    f = base_facts()
    acc = f"{f['accuracy']:.1%} on {f['eval_images']} held-out shapes" if f["accuracy"] is not None else "n/a"
    return (
        f"## {TUTORIAL.emoji} {TUTORIAL.title}\n{TUTORIAL.summary}\n\n"
        f"Everything here trains for real, on this machine's CPU. The base model is the embedded "
        f"`{o.BASE_MODEL}` (ViT, {P['vit']}): image {f['image_size']}, patch {f['patch_size']} "
        f"({f['grid']} grid), width {f['hidden_size']}, {f['layers']} layers, {f['heads']} heads, "
        f"{f['parameters']:,} parameters, accuracy {acc} (its config.json and metrics.json). "
        f"**pretrained** fine-tunes a copy of it; **scratch** trains the same architecture from a seeded "
        f"random initialisation (expect it to stay near chance, 1 in 5, for the few hundred steps allowed here: "
        f"the embedded model needed an easy-shapes curriculum and thousands of steps, see its recipe in "
        f"`shared/training/vit_tiny_shapes.py`). Data: a seeded subset of the procedural shapes dataset (train split), "
        f"validation on {o.VAL_IMAGES} held-out shapes (val split)."
    )


def _knobs_help() -> str:
    return (
        f"**The knobs** (DeiT's recipe for training ViTs, {P['deit']}): the learning rate rises linearly "
        f"over the warm-up steps ({P['warmup']}) then decays along half a cosine to 0 ({P['cosine']}); AdamW "
        f"with decoupled weight decay ({P['adamw']}); label smoothing ε: targets (1−ε)·onehot + ε/K "
        f"({P['smoothing']}); mixup: λ~Beta(α,α), x = λx₁+(1−λ)x₂ and the same for the labels ({P['mixup']}); "
        f"cutmix: a box of area (1−λ) pasted from another image, labels mixed by area ({P['cutmix']}); with "
        f"both α > 0 each batch uses one of the two at random, as DeiT does; RandAugment: N ops drawn "
        f"uniformly, all at one magnitude M ({P['randaugment']}); drop path (stochastic depth, "
        f"{P['droppath']}): each residual branch is dropped per sample with a rate rising linearly with depth "
        f"to the value set. transformers' ViT has no drop path, so forward hooks on every attention and MLP "
        f"branch apply it here (training mode only).\n\n"
        f"**Caps** (one shared CPU): steps 1–{o.MAX_STEPS}, batch 1–{o.MAX_BATCH}, learning rate in "
        f"(0, {o.MAX_LR:g}], at most **{o.MAX_CONCURRENT_RUNS} runs at once for all visitors**, one per "
        f"session. Curves refresh at most once every {o.UPDATE_SECONDS:g} s; Stop ends your run after the "
        f"current step. A run whose page closes stops within {o.ABANDONED_SECONDS:g} s."
    )


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

def _session(request: gr.Request | None) -> str:
    return (request.session_hash if request is not None else None) or "anonymous"


def _curves(history: list[dict], xlabel: str, key: str, ylabel: str, total: int, before: float | None = None):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    rows = ([{"step": 0, key: before}] if before is not None else []) + [h for h in history if key in h]
    ax.plot([h["step"] for h in rows], [h[key] for h in rows], marker="o" if key == "val_accuracy" else None,
            ms=3, lw=1.5, color="#1f77b4" if key == "loss" else "#2ca02c")
    ax.set_title(xlabel, loc="right", fontsize=9)  # right-aligned: the page's label badge sits top left
    ax.set_xlabel("step")
    ax.set_xlim(-0.02 * total, total)  # the step-0 point stays visible
    ax.set_ylabel(ylabel)
    if key == "val_accuracy":
        ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    return fig


def _panels(result, cfg, final: bool):
    stats = result.stats(cfg)
    stats["status"] = "stopped" if result.stopped else ("finished" if final else "running")
    where = f"{stats['status']}: step {result.steps_done}/{cfg.steps}"
    loss = _curves(result.history, where, "loss", "soft cross-entropy", cfg.steps)
    acc = _curves(result.history, f"{where} (step 0: before training)", "val_accuracy",
                  f"accuracy ({o.VAL_IMAGES} val images)", cfg.steps, before=result.initial_val_accuracy)
    return loss, acc, stats


def _stream(cfg, request):
    from . import compute

    run = runs.REGISTRY.start(_session(request), cfg, compute.train)
    yield from runs.follow(run)


@user_errors
def train_live(start, steps, lr, batch_size, label_smoothing, mixup_alpha, seed, cutmix_alpha, warmup_steps,
               weight_decay, randaug_ops, randaug_magnitude, drop_path, task, train_images,
               request: gr.Request = None, progress=gr.Progress()):
    """The page's Train button: the loss and accuracy curves and the stats, streamed."""
    from . import compute

    cfg = compute.make_config(start, steps, lr, batch_size, label_smoothing, mixup_alpha, seed, cutmix_alpha,
                              warmup_steps, weight_decay, randaug_ops, randaug_magnitude, drop_path, task,
                              train_images)
    progress(0, desc="preparing data and model")
    for result, final in _stream(cfg, request):
        progress(result.steps_done / cfg.steps, desc=f"step {result.steps_done}/{cfg.steps}")
        yield _panels(result, cfg, final)


@user_errors
def training_lab_train(start: str, steps: int, lr: float, batch_size: int, label_smoothing: float,
                       mixup_alpha: float, seed: int, request: gr.Request = None) -> dict:
    """Train live (from ``pretrained`` or ``scratch``); streams the stats JSON, the last one final: its
    ``history`` lists {step, loss, lr, (val_accuracy)}; the same arguments and seed give the same history."""
    from . import compute

    cfg = compute.make_config(start, steps, lr, batch_size, label_smoothing, mixup_alpha, seed)
    for result, final in _stream(cfg, request):
        stats = result.stats(cfg)
        stats["status"] = "stopped" if result.stopped else ("finished" if final else "running")
        yield stats


def _start_lr(start: str) -> float:
    return o.START_LR.get(start, o.DEFAULT_LR)


def stop_run(request: gr.Request = None) -> str:
    stopped = runs.REGISTRY.stop(_session(request))
    return "Stopping after the current step." if stopped else "No run is going in this session."


def _preview_figure(rows: list[tuple[str, Any, list[str]]]):
    from matplotlib.figure import Figure

    n = rows[0][1].shape[0]
    fig = Figure(figsize=(1.6 * n, 1.9 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (name, images, titles) in enumerate(rows):
        for i in range(n):
            ax = axes[r][i]
            ax.imshow(((images[i].permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype("uint8"))
            ax.set_title(titles[i], fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(name, fontsize=9)
    return fig


def _mixed_label(targets, classes) -> str:
    top = targets.argsort(descending=True)[:2]
    parts = [f"{float(targets[k]):.2f} {classes[int(k)]}" for k in top if float(targets[k]) > 0.005]
    return "\n".join(parts)


@user_errors
def preview(randaug_ops, randaug_magnitude, mixup_alpha, cutmix_alpha, seed, progress=gr.Progress()):
    """One batch of training shapes before and after RandAugment, mixup and cutmix, with the mixed labels."""
    import numpy as np
    import pandas as pd
    import torch

    from shared import validate

    from . import compute

    ops = validate.integer(randaug_ops, "RandAugment ops", 0, o.MAX_RANDAUG_OPS)
    mag = validate.integer(randaug_magnitude, "RandAugment magnitude", 0, o.MAX_RANDAUG_MAGNITUDE)
    ma = validate.number(mixup_alpha, "mixup alpha", 0, o.MAX_MIX_ALPHA, above=True)
    ca = validate.number(cutmix_alpha, "cutmix alpha", 0, o.MAX_MIX_ALPHA, above=True)
    seed = validate.integer(seed, "seed", 0, o.MAX_SEED)
    progress(0, desc="rendering shapes")
    x, y = compute.dataset("train", o.SUBSETS[0], "shape")
    x, y = x[:o.PREVIEW_IMAGES], y[:o.PREVIEW_IMAGES]
    classes = compute.CLASSES["shape"]
    gen = torch.Generator().manual_seed(seed)
    aug, used = compute.randaugment(x, ops, mag, gen)
    targets = compute.soft_targets(y, len(classes), 0.0)
    mixed = compute.mixup(x, targets, ma, np.random.default_rng(seed), gen)
    cut = compute.cutmix(x, targets, ca, np.random.default_rng(seed + 1), gen)
    rows = [("original", x, [classes[int(k)] for k in y]),
            (f"RandAugment N={ops} M={mag}", aug, [", ".join(u) or "none" for u in used]),
            (f"mixup α={ma:g} (λ={mixed.lam:.2f})", mixed.images, [_mixed_label(t, classes) for t in mixed.targets]),
            (f"cutmix α={ca:g} (λ={cut.lam:.2f})", cut.images, [_mixed_label(t, classes) for t in cut.targets])]
    table = pd.DataFrame({
        "image": range(1, len(y) + 1), "label": [classes[int(k)] for k in y],
        "RandAugment ops": [", ".join(u) or "none" for u in used],
        "mixup partner": [classes[int(y[p])] for p in mixed.partner],
        "mixup target": [_mixed_label(t, classes).replace("\n", " + ") for t in mixed.targets],
        "cutmix partner": [classes[int(y[p])] for p in cut.partner],
        "cutmix target": [_mixed_label(t, classes).replace("\n", " + ") for t in cut.targets],
    })
    return _preview_figure(rows), table


@user_errors
def compare(progress=gr.Progress()):
    """Linear probe, LoRA and full fine-tune on the same budget (cached after the first click)."""
    import pandas as pd

    progress(0, desc=f"training 3 strategies x {o.COMPARE_STEPS} steps (a minute or two, cached afterwards)")
    from . import compute

    rows = compute.compare_strategies()
    table = pd.DataFrame(rows)
    return table, _strategy_figure(rows)


def _strategy_figure(rows: list[dict]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), layout="constrained")
    ax = fig.add_subplot()
    names = [f"{r['strategy']}\n{r['trainable']:,} trainable" for r in rows]
    ax.bar(names, [r["val_accuracy"] for r in rows], color=["#9467bd", "#ff7f0e", "#1f77b4"])
    ax.axhline(rows[0]["val_accuracy_before"], ls="--", c="grey", lw=1, label="before training (new head)")
    ax.set_ylim(0, 1)
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"task '{o.COMPARE_TASK}', {o.COMPARE_STEPS} steps x batch {o.COMPARE_BATCH} each")
    ax.legend(fontsize=8)
    return fig


@user_errors
def training_lab_lora_params(model, rank, target_modules, progress=gr.Progress()):
    """Exact trainable / total parameters with LoRA of ``rank`` on ``target_modules`` (counted by peft)."""
    progress(0, desc="building the model on the meta device")
    from . import compute

    return compute.lora_params(model, rank, target_modules)


def _echo(value):
    return value


@user_errors
def estimate(preset, images_seen, gpu, gpus, mfu, progress=gr.Progress()):
    """C ~ 6 N D and the time it takes on ``gpus`` GPUs at ``mfu`` of their dense peak."""
    import pandas as pd

    from shared import validate

    from . import compute

    preset = validate.choice(preset, "model", o.VIT_PRESETS)
    progress(0, desc="counting parameters on the meta device")
    params = compute.preset_params(preset)
    grid = 224 // o.VIT_PRESETS[preset]["patch_size"]
    stats = compute.training_cost(params, images_seen, grid * grid + 1, gpu, gpus, mfu)
    table = pd.DataFrame([{
        "GPU": name, "dense peak TFLOP/s": spec["dense"], "sparse peak (not used)": spec["sparse"],
        "days": round(compute.training_cost(params, images_seen, grid * grid + 1, name, gpus, mfu)["days"], 2),
        "source": spec["source"]} for name, spec in o.GPUS.items()])
    return stats, table


# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def _wire(button: gr.Button, fn, inputs: list, outputs: list, name: str) -> None:
    """A downloads box under ``outputs`` and the click event (endpoint ``<slug>_<name>``)."""
    files = downloads()
    raw_values(button.click, with_downloads(fn, outputs), inputs, outputs + [files], api_name=f"{SLUG}_{name}")


def render(demo: gr.Blocks) -> None:
    gr.Markdown(intro())
    with gr.Tab("Train live"):
        with gr.Row():
            with gr.Column(scale=1):
                start = gr.Radio(list(o.STARTS), value="pretrained", label="start from")
                task = gr.Dropdown(list(o.TASKS), value="shape", label="task",
                                   info="shape: the base model's own 5 classes; size: small/medium/large (new head)")
                subset = gr.Dropdown(list(o.SUBSETS), value=o.DEFAULT_SUBSET, label="training images (subset)")
                steps = gr.Slider(1, o.MAX_STEPS, value=o.DEFAULT_STEPS, step=1, label=f"steps (1–{o.MAX_STEPS})")
                lr = gr.Number(value=o.DEFAULT_LR, label=f"peak learning rate (0, {o.MAX_LR:g}]",
                               info=f"set to {o.DEFAULT_LR:g} for pretrained, {o.SCRATCH_LR:g} for scratch")
                batch = gr.Slider(1, o.MAX_BATCH, value=o.DEFAULT_BATCH, step=1, label=f"batch size (1–{o.MAX_BATCH})")
                warmup = gr.Slider(0, o.MAX_WARMUP, value=o.DEFAULT_WARMUP, step=1, label="warm-up steps")
                wd = gr.Slider(0, o.MAX_WEIGHT_DECAY, value=o.DEFAULT_WEIGHT_DECAY, step=0.01, label="weight decay (AdamW)")
            with gr.Column(scale=1):
                smoothing = gr.Slider(0, o.MAX_LABEL_SMOOTHING, value=o.DEFAULT_LABEL_SMOOTHING, step=0.01,
                                      label="label smoothing ε")
                mix = gr.Slider(0, o.MAX_MIX_ALPHA, value=o.DEFAULT_MIXUP, step=0.05, label="mixup α (0: off)")
                cut = gr.Slider(0, o.MAX_MIX_ALPHA, value=o.DEFAULT_CUTMIX, step=0.05, label="cutmix α (0: off)")
                ra_ops = gr.Slider(0, o.MAX_RANDAUG_OPS, value=o.DEFAULT_RANDAUG_OPS, step=1, label="RandAugment N (ops)")
                ra_mag = gr.Slider(0, o.MAX_RANDAUG_MAGNITUDE, value=o.DEFAULT_RANDAUG_MAGNITUDE, step=1,
                                   label="RandAugment M (magnitude)")
                dp = gr.Slider(0, o.MAX_DROP_PATH, value=o.DEFAULT_DROP_PATH, step=0.05, label="drop path rate")
                seed = gr.Number(value=0, precision=None, label="seed", minimum=0, maximum=o.MAX_SEED)
                with gr.Row():
                    go = gr.Button("Train", variant="primary", elem_id="training-lab-train")
                    stop = gr.Button("Stop", variant="stop", elem_id="training-lab-stop")
                stop_info = gr.Markdown()
            with gr.Column(scale=2):
                loss_plot = gr.Plot(label="Training loss", elem_id="training-lab-loss")
                acc_plot = gr.Plot(label="Validation accuracy", elem_id="training-lab-acc")
        stats = gr.JSON(label="Run stats", elem_id="training-lab-stats")
        files = downloads()  # also where the run's progress bar shows, so that it never covers the curves
        gr.Markdown(_knobs_help())
        outputs = [loss_plot, acc_plot, stats]
        inputs = [start, steps, lr, batch, smoothing, mix, seed, cut, warmup, wd, ra_ops, ra_mag, dp, task, subset]
        raw_values(go.click, with_downloads(train_live, outputs), inputs, outputs + [files],
                   api_visibility="private", concurrency_limit=None, show_progress_on=[files])
        stop.click(stop_run, None, stop_info, api_visibility="private", queue=False)
        start.change(_start_lr, start, lr, api_visibility="private", queue=False)
        gr.api(training_lab_train, api_name=f"{SLUG}_train", concurrency_limit=None)

    with gr.Tab("Augmentation preview"):
        gr.Markdown(f"The same 8 training shapes before and after each augmentation; mixup and cutmix show the "
                    f"mixed labels (the two largest weights of the target). Defaults are DeiT's "
                    f"({P['deit']}): RandAugment M=9, mixup α=0.8, cutmix α=1.0.")
        with gr.Row():
            p_ops = gr.Slider(0, o.MAX_RANDAUG_OPS, value=2, step=1, label="RandAugment N (ops)")
            p_mag = gr.Slider(0, o.MAX_RANDAUG_MAGNITUDE, value=9, step=1, label="RandAugment M (magnitude)")
            p_mix = gr.Slider(0.05, o.MAX_MIX_ALPHA, value=0.8, step=0.05, label="mixup α")
            p_cut = gr.Slider(0.05, o.MAX_MIX_ALPHA, value=1.0, step=0.05, label="cutmix α")
            p_seed = gr.Number(value=0, precision=None, label="seed", minimum=0, maximum=o.MAX_SEED)
        p_go = gr.Button("Preview augmentations", variant="primary")
        p_plot = gr.Plot(label="Augmentation preview")
        p_table = gr.Dataframe(label="Labels before and after mixing")
        _wire(p_go, preview, [p_ops, p_mag, p_mix, p_cut, p_seed], [p_plot, p_table], "preview")

    with gr.Tab("Fine-tuning strategies"):
        gr.Markdown(
            f"Three ways to adapt the pretrained `{o.BASE_MODEL}` to a new task (**{o.COMPARE_TASK}**: small / "
            f"medium / large, with a new seeded head), each for the same {o.COMPARE_STEPS} steps × batch "
            f"{o.COMPARE_BATCH}, same images, same order: a **linear probe** (only the head trains), **LoRA** "
            f"(rank {o.COMPARE_RANK} adapters on `q_proj` and `v_proj` through `peft`, {P['lora']}, plus the "
            f"head) and a **full fine-tune**. Learning rates: the usual orders for each (a head alone takes a "
            f"larger one), listed in the table. It trains on the CPU (a minute or two), then the result is "
            f"cached.")
        c_go = gr.Button("Compare strategies", variant="secondary")
        c_table = gr.Dataframe(label="Strategies on the same budget")
        c_plot = gr.Plot(label="Accuracy reached")
        _wire(c_go, compare, [], [c_table, c_plot], "compare")

    with gr.Tab("LoRA counter"):
        gr.Markdown(
            f"LoRA ({P['lora']}) freezes a Linear W (d_out × d_in) and learns ΔW = B·A with A: r × d_in and "
            f"B: d_out × r, so each adapted Linear adds r·(d_in + d_out) trainable parameters. The counts below "
            f"come from `peft` itself (`get_nb_trainable_parameters`) on the model built on the `meta` device "
            f"(no weights, no download): `{o.BASE_MODEL}` from its config.json, and `{o.VIT_B16}` from its "
            f"configuration written out in code (hidden 768, 12 layers, 12 heads, MLP 3072, image 224, patch "
            f"16, 1000 classes; {P['vit']}, Table 1). Only the LoRA matrices train (no `modules_to_save`). "
            f"Target names are the models' own Linear names (transformers 5: `q_proj`, `k_proj`, `v_proj`, "
            f"`o_proj`, `fc1`, `fc2`, `classifier`); the result lists those read from the model.")
        with gr.Row():
            l_model = gr.Dropdown(list(o.LORA_MODELS), value=o.VIT_B16, label="model")
            l_rank = gr.Slider(1, o.MAX_RANK, value=o.DEFAULT_RANK, step=1, label=f"rank r (1–{o.MAX_RANK})")
            l_targets = gr.Textbox(value=o.DEFAULT_TARGETS, label="target modules (comma-separated)")
        l_go = gr.Button("Count", variant="primary")
        l_stats = gr.JSON(label="LoRA parameters")
        l_files = downloads()
        dep = raw_values(l_go.click, training_lab_lora_params, [l_model, l_rank, l_targets], [l_stats],
                         api_name=f"{SLUG}_lora_params")
        dep.success(with_downloads(_echo, [l_stats]), [l_stats], [l_stats, l_files], api_visibility="private")

    with gr.Tab("Pre-training cost"):
        gr.Markdown(
            f"Training compute C ≈ 6·N·D FLOPs ({P['kaplan']}, section 2.1: 2N per token forward, 4N backward; "
            f"the attention term is left out), with N the parameters (counted on the model built on the meta "
            f"device from {P['vit']}'s Table 1 sizes) and D = images × tokens per image ((224/p)² patches + "
            f"[CLS]). Time = C / (GPUs × dense peak × MFU). Peaks are the vendors' datasheet figures for dense "
            f"BF16 tensor math; the datasheets' larger 'with sparsity' figures assume 2:4 structured sparsity, "
            f"which training does not use. MFU (model FLOPs utilisation) is an assumption: "
            f"{o.DEFAULT_MFU:.0%} by default; PaLM reached {o.PALM_MFU:.1%} ({P['palm']}). The default run is "
            f"300 epochs of ImageNet-1k's 1,281,167 training images (DeiT's schedule, {P['deit']}).")
        with gr.Row():
            k_preset = gr.Dropdown(list(o.VIT_PRESETS), value=o.DEFAULT_PRESET, label="model")
            k_images = gr.Number(value=o.DEFAULT_IMAGES_SEEN, label="images seen (epochs × dataset size)")
            k_gpu = gr.Dropdown(list(o.GPUS), value=o.DEFAULT_GPU, label="GPU")
            k_gpus = gr.Number(value=o.DEFAULT_GPUS, precision=None, label=f"GPUs (1–{o.MAX_GPUS})")
            k_mfu = gr.Slider(0.05, 1.0, value=o.DEFAULT_MFU, step=0.01, label="MFU (assumed)")
        k_go = gr.Button("Estimate", variant="primary")
        k_stats = gr.JSON(label="Cost estimate")
        k_table = gr.Dataframe(label="Same run on each GPU")
        _wire(k_go, estimate, [k_preset, k_images, k_gpu, k_gpus, k_mfu], [k_stats, k_table], "cost")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()

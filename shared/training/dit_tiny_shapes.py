"""dit-tiny-shapes: a tiny class-conditional DiT that denoises 32x32 shape images in pixel space.

The model is diffusers' ``DiTTransformer2DModel`` (Peebles & Xie, 2023: patchify, transformer
blocks with adaLN-Zero conditioning on timestep + class, linear decoder) trained with a
diffusers ``DDPMScheduler`` noise schedule. What made it learn on a 2-core CPU (24000 steps;
class accuracy 0.935 at guidance 3 with DPM-Solver++ under the first, 32-px judge, 0.50 with the
previous recipe; 0.893 under the wide-distribution judge of issue 13, and 0.92 after phase 2's
8000 steps without REPA, 1000 samples each):

- x-prediction (Li & He, 2025, "Back to Basics: Let Denoising Generative Models Denoise"): the
  model outputs the clean image x̂_0, which lies on the data's low-dimensional manifold, rather
  than ε or v. Same 2500 steps, seed and judge: x-prediction 0.37 class accuracy, v-prediction
  (Salimans & Ho, 2022) 0.24;
- noise levels drawn from a logit-normal slightly on the noisy side (Esser et al., 2024), where the
  shape is decided, and JiT's v-loss on the x-prediction, capped at SNR 5 (see ``Config``);
- representation alignment (REPA, Yu et al., 2024; ``RepresentationAlignment``): block 2's tokens
  are pulled towards the patch features that the embedded CLIP's image tower sees in the clean image;
- lr 3e-3, which a model this small takes.
  Same seed, 1 thread, judged by vit-tiny-shapes, class accuracy at guidance 3 after 500 / 1000 /
  2000 steps: uniform noise levels and the plain x-loss 0.37 at 2500; logit-normal + v-loss 0.18 /
  0.24 / 0.42; + lr 3e-3 0.21 / 0.38 / 0.49; + REPA 0.24 / 0.45 / 0.48; both 0.34 at 500;
- a cosine schedule (Nichol & Dhariwal, 2021);
- DiT's own initialisation: adaLN modulation and the output layer start at zero, so every
  block starts as the identity ("adaLN-Zero");
- AdamW with warm-up and cosine decay, and an exponential moving average of the weights.

Classifier-free guidance (Ho & Salimans, 2022) needs an unconditional model too: the label is
replaced by the null class ``num_classes`` for ``label_dropout`` of the training batch. diffusers'
label embedding would also drop 10% of the labels by itself, but independently in every block
(each block has its own embedding), so that dropout is switched off and we drop labels once
per sample, consistently through the whole network.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from shared.data.shapes import DEFAULT_SIZE, SHAPES, ShapesDataset, render
from shared.diffusion import DEFAULT_SCHEDULER, to_eps_x0
from shared.images import to_tensor
from shared.training.loop import (
    cosine_lr,
    make_accelerator,
    micro_batches,
    progress,
    random_batches,
    rank_slice,
    save_rank_weights,
    seed_everything,
    write_model_card,
)


@dataclass
class Config:
    image_size: int = DEFAULT_SIZE
    patch_size: int = 4  # 8x8 = 64 tokens of 4*4*3 = 48 pixel values
    num_attention_heads: int = 4
    attention_head_dim: int = 32  # width 128
    num_layers: int = 6
    train_images: int = 50_000
    # The backgrounds the DiT learns. Noise and stripe textures are high-entropy detail that says
    # nothing about the class, and a 2M-parameter model trained for CPU minutes spends its capacity
    # on them (earlier runs on all backgrounds: blobs on busy textures, class accuracy 0.33).
    backgrounds: tuple[str, ...] = ("plain",)
    batch_size: int = 64
    steps: int = 24_000
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup: int = 300
    ema_decay: float = 0.999
    label_dropout: float = 0.1  # share of labels replaced by the null class (for guidance)
    prediction_type: str = "sample"  # x-prediction (see the docstring)
    beta_schedule: str = "squaredcos_cap_v2"
    # Which noise levels training sees, and how much each counts. t = (T-1)·sigmoid(n), n ~ N(mean, std):
    # a logit-normal (Esser et al., 2024, SD3) centred a little on the noisy side, where the shape is
    # decided. The loss is |x̂_0 - x_0|²·(1 + min(SNR, cap)): JiT's v-loss on an x-prediction (Li & He,
    # 2025), capped so the nearly clean steps, where SNR runs to 10⁴, do not swamp the rest.
    t_logit_mean: float = 0.3
    t_logit_std: float = 1.0
    snr_weight_cap: float = 5.0
    # Representation alignment (see RepresentationAlignment); an empty teacher switches it off.
    repa_teacher: str = "clip-tiny-shapes"
    repa_weight: float = 0.5
    repa_block: int = 2  # align the tokens after this many blocks (REPA: an early block)
    # Phase 2 (HASTE, Wang et al., 2025, "REPA Works Until It Doesn't"): alignment speeds up the early steps,
    # then holds a student back once it models the data. So finetune_steps more steps start from phase 1's EMA
    # weights with REPA off, a fresh AdamW at finetune_lr (warm-up 100, cosine), generator seed + 1 and the EMA
    # carried on; from saved weights alone: python -m shared.training dit-tiny-shapes --from DIR.
    finetune_steps: int = 8_000
    finetune_lr: float = 1e-3
    eval_every: int = 0  # class accuracy every N steps during training (slow); 0: only at the end
    eval_samples: int = 200
    final_eval_samples: int = 1_000  # the card's class_accuracy (binomial s.e. about 0.01)
    class_embed_std: float = 0.02  # init std of the class embedding tables (DiT: 0.02)
    grad_accum: int = 1  # micro-batches per optimizer step (the global batch stays batch_size)


def build_model(cfg: Config):
    from diffusers import DiTTransformer2DModel

    model = DiTTransformer2DModel(
        num_attention_heads=cfg.num_attention_heads, attention_head_dim=cfg.attention_head_dim,
        in_channels=3, out_channels=3, num_layers=cfg.num_layers, sample_size=cfg.image_size,
        patch_size=cfg.patch_size, num_embeds_ada_norm=len(SHAPES),  # classes 0..4, null class 5
    )
    initialize_weights(model, cfg.class_embed_std)
    return model


def build_scheduler_config(cfg: Config) -> dict:
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule=cfg.beta_schedule, prediction_type=cfg.prediction_type,
        clip_sample=True, clip_sample_range=1.0, timestep_spacing="trailing",
    )
    return dict(scheduler.config)


@torch.no_grad()
def initialize_weights(model, class_embed_std: float = 0.02) -> None:
    """facebookresearch/DiT ``initialize_weights``, mapped onto diffusers' module names."""
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    w = model.pos_embed.proj.weight  # patch embedding conv, initialised like a Linear
    torch.nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    torch.nn.init.zeros_(model.pos_embed.proj.bias)
    for block in model.transformer_blocks:
        emb = block.norm1.emb
        torch.nn.init.normal_(emb.class_embedder.embedding_table.weight, std=class_embed_std)
        torch.nn.init.normal_(emb.timestep_embedder.linear_1.weight, std=0.02)
        torch.nn.init.normal_(emb.timestep_embedder.linear_2.weight, std=0.02)
        torch.nn.init.zeros_(block.norm1.linear.weight)  # adaLN-Zero: gates start at 0
        torch.nn.init.zeros_(block.norm1.linear.bias)
    for layer in (model.proj_out_1, model.proj_out_2):  # final adaLN and output layer
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)


class RepresentationAlignment(torch.nn.Module):
    """REPA (Yu et al., 2024, "Representation Alignment for Generation", arXiv 2410.06940).

    An MLP maps the DiT's tokens after block ``block``, computed from the noisy x_t, to a frozen image
    encoder's patch features of the clean x_0; the loss is minus their mean cosine similarity. The DiT
    thus learns early what a shape is from an encoder that already knows, instead of finding it
    through the denoising loss alone. The teacher is the CLIP image tower, not the ViT that judges
    the samples, so the metric does not grade its own teacher. Training only: the projector is
    thrown away and the saved DiT is a plain ``DiTTransformer2DModel``.
    """

    def __init__(self, model, teacher: str, block: int):
        super().__init__()
        from transformers import CLIPVisionModel

        from shared.models import resolve

        self.teacher = CLIPVisionModel.from_pretrained(resolve(teacher), use_safetensors=True)
        self.teacher.eval().requires_grad_(False)
        width, dim = model.inner_dim, self.teacher.config.hidden_size
        self.projector = torch.nn.Sequential(  # REPA's 3-layer SiLU MLP
            torch.nn.Linear(width, 4 * width), torch.nn.SiLU(),
            torch.nn.Linear(4 * width, 4 * width), torch.nn.SiLU(),
            torch.nn.Linear(4 * width, dim),
        )
        self._hidden: torch.Tensor | None = None
        model.transformer_blocks[block - 1].register_forward_hook(self._capture)

    def _capture(self, module, args, output: torch.Tensor) -> None:
        self._hidden = output  # (B, N, W), kept with its graph for this step's backward

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        """Alignment loss for the DiT forward that just ran on a noised ``x0`` (B, 3, H, W) in [-1, 1]."""
        with torch.no_grad():  # CLIP's processor also maps pixels to [-1, 1] (mean = std = 0.5)
            size = self.teacher.config.image_size
            if x0.shape[-1] != size:  # a teacher trained at another resolution sees x0 resized to its own
                x0 = torch.nn.functional.interpolate(x0, size=(size, size), mode="bilinear", align_corners=False)
            target = self.teacher(pixel_values=x0).last_hidden_state[:, 1:]  # (B, M, D) patch tokens
        h = self._hidden  # (B, N, W)
        b, n, w = h.shape
        g, tg = math.isqrt(n), math.isqrt(target.shape[1])
        h = h.transpose(1, 2).reshape(b, w, g, g)  # (B, W, g, g)
        h = torch.nn.functional.adaptive_avg_pool2d(h, tg).flatten(2).transpose(1, 2)  # (B, M, W): the teacher's grid
        return -torch.nn.functional.cosine_similarity(self.projector(h), target, dim=-1).mean()


def _disable_builtin_label_dropout(model) -> None:
    for block in model.transformer_blocks:
        block.norm1.emb.class_embedder.dropout_prob = 0.0


def class_accuracy(model, scheduler_config: dict, n: int = 200, steps: int = 25, guidance: float = 3.0,
                   seed: int = 0, judge: str | None = None) -> float:
    """Share of ``n`` samples (classes in turn) that the shapes ViT assigns to their class."""
    from shared.evaluation import judge_samples

    return judge_samples(model, scheduler_config, n=n, steps=steps, guidance=guidance, seed=seed, judge=judge)


def training_images(cfg: Config, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The first ``train_images`` shapes of ``split``, each on a background from ``cfg.backgrounds``
    (cycled, so the choice does not change which shapes are drawn). -> uint8 (N, H, W, 3), int64 (N,)"""
    ds = ShapesDataset(split, cfg.train_images, cfg.image_size, distribution="classic")
    specs = [replace(ds.spec(i), background=cfg.backgrounds[i % len(cfg.backgrounds)]) for i in range(len(ds))]
    images = np.stack([np.asarray(render(s, cfg.image_size)) for s in specs])  # (N, H, W, 3)
    return images, np.array([s.label for s in specs], dtype=np.int64)


def _judge_available() -> bool:
    from shared.models import available_offline

    return available_offline("vit-tiny-shapes")


def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
          grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    cfg = cfg or Config()
    if steps is not None:  # a smoke run: phase 1 only, for this many steps
        cfg.steps, cfg.finetune_steps = steps, 0
    if grad_accum is not None:
        cfg.grad_accum = grad_accum
    acc = make_accelerator(cfg.grad_accum, cfg.batch_size)
    start = time.perf_counter()
    gen = seed_everything(seed)
    out = Path(out_dir)
    data = _training_tensors(cfg)

    model = build_model(cfg).to(acc.device)
    _disable_builtin_label_dropout(model)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    align = None
    if cfg.repa_teacher:
        align = RepresentationAlignment(model, cfg.repa_teacher, cfg.repa_block).to(acc.device)
        opt.add_param_group({"params": list(align.projector.parameters())})
        model, align.projector, opt = acc.prepare(model, align.projector, opt)
    else:
        model, opt = acc.prepare(model, opt)
    history = _train_phase(acc, model, ema, opt, cfg, gen, data, out, align=align, ema_warmup=True)
    if cfg.finetune_steps:
        model, ema, phase2 = finetune(acc, ema, cfg, seed, data, out)
        history += phase2
    if rank_weights:
        save_rank_weights(acc, model, out)
    acc.wait_for_everyone()
    metrics = _report(ema.cpu(), cfg, out, history, start, acc.num_processes) if acc.is_main_process else {}
    acc.wait_for_everyone()
    acc.end_training()
    return metrics


def finetune(acc, weights, cfg: Config, seed: int, data: tuple[torch.Tensor, torch.Tensor], out: Path):
    """Phase 2 from ``weights`` (phase 1's EMA): ``cfg.finetune_steps`` steps at ``cfg.finetune_lr`` without
    REPA, a fresh AdamW and generator seed + 1; the EMA starts at ``weights`` and keeps its full decay.
    Returns (prepared model, EMA, eval history)."""
    phase2 = replace(cfg, steps=cfg.finetune_steps, lr=cfg.finetune_lr, warmup=100)
    gen = seed_everything(seed + 1)
    model = copy.deepcopy(weights).train().requires_grad_(True).to(acc.device)
    _disable_builtin_label_dropout(model)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=phase2.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    model, opt = acc.prepare(model, opt)
    history = _train_phase(acc, model, ema, opt, phase2, gen, data, out, align=None, ema_warmup=False)
    return model, ema, [{**h, "phase": 2} for h in history]


def finetune_from(weights_dir: str, out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
                  grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    """Phase 2 alone, on saved phase-1 weights (``python -m shared.training dit-tiny-shapes --from DIR``;
    ``steps`` overrides ``finetune_steps`` for a smoke run). The card and metrics say which weights it
    started from; their eval history is carried over."""
    from diffusers import DiTTransformer2DModel

    cfg = cfg or Config()
    if steps is not None:
        cfg.finetune_steps = steps
    if grad_accum is not None:
        cfg.grad_accum = grad_accum
    if not cfg.finetune_steps:
        raise ValueError("finetune_steps is 0: there is no phase 2 to run (set it with --set finetune_steps=N)")
    source = Path(weights_dir)
    weights = DiTTransformer2DModel.from_pretrained(source, use_safetensors=True)
    keys = ("sample_size", "patch_size", "num_layers", "num_attention_heads", "attention_head_dim", "num_embeds_ada_norm")
    built = build_model(cfg).config
    differ = {k: (weights.config[k], built[k]) for k in keys if weights.config[k] != built[k]}
    if differ:
        raise ValueError(f"{source} does not match the Config (saved, Config): {differ}; "
                         "pass the Config it was trained with (--set)")
    acc = make_accelerator(cfg.grad_accum, cfg.batch_size)
    start = time.perf_counter()
    out = Path(out_dir)
    data = _training_tensors(cfg)
    model, ema, history = finetune(acc, weights, cfg, seed, data, out)
    if rank_weights:
        save_rank_weights(acc, model, out)
    acc.wait_for_everyone()
    metrics = {}
    if acc.is_main_process:
        earlier = source / "eval_history.json"
        history = (json.loads(earlier.read_text()) if earlier.is_file() else []) + history
        metrics = _report(ema.cpu(), cfg, out, history, start, acc.num_processes,
                          phase1_from=_describe_source(source))
    acc.wait_for_everyone()
    acc.end_training()
    return metrics


def _describe_source(source: Path) -> str:
    """Where phase-1 weights came from, for the card: their path, and the git commit that last changed them."""
    import subprocess

    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "diffusion_pytorch_model.safetensors"],
                                cwd=source, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{source.name} at commit {commit}" if commit else str(source)


def _training_tensors(cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = training_images(cfg)
    return to_tensor(images), torch.from_numpy(labels).long()  # (N, 3, 32, 32), (N,)


def _train_phase(acc, model, ema, opt, cfg: Config, gen: torch.Generator, data: tuple[torch.Tensor, torch.Tensor],
                 out: Path, align: RepresentationAlignment | None, ema_warmup: bool) -> list[dict]:
    """``cfg.steps`` steps of AdamW (warm-up + cosine to ``cfg.lr``) on the denoising loss (+ REPA when
    ``align``), updating ``ema`` after each; returns the class-accuracy history (``cfg.eval_every``).
    ``ema_warmup``: DiT's short-horizon start of the EMA, for weights that start random."""
    from diffusers import DDPMScheduler

    x_train, y_train = data
    scheduler_config = build_scheduler_config(cfg)
    alphas_cumprod = DDPMScheduler.from_config(scheduler_config).alphas_cumprod.to(acc.device)  # (T,)
    null_class = len(SHAPES)
    plain = acc.unwrap_model(model)
    bar = progress(cfg.steps, "dit-tiny-shapes", disable=not acc.is_main_process)
    history = []
    for step, idx in enumerate(random_batches(len(x_train), cfg.batch_size, cfg.steps, gen)):
        model.train()
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        # Every random draw is made for the whole global batch, on every rank, then sliced.
        x0 = x_train[idx]  # (B, 3, 32, 32)
        b = x0.shape[0]
        flip = torch.rand(b, generator=gen) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)  # shapes are flip-invariant
        y = y_train[idx]
        y = torch.where(torch.rand(b, generator=gen) < cfg.label_dropout, null_class, y)  # (B,)
        u = torch.sigmoid(cfg.t_logit_mean + cfg.t_logit_std * torch.randn(b, generator=gen))  # (B,) in (0, 1)
        t = (u * (len(alphas_cumprod) - 1)).round().long()  # (B,)
        noise = torch.randn(x0.shape, generator=gen)  # (B, 3, 32, 32)
        x0, y, t, noise = rank_slice(acc, x0, y, t, noise)  # this rank's share
        for x0m, ym, tm, noisem in micro_batches(cfg.grad_accum, x0, y, t, noise):
            with acc.accumulate(model), acc.autocast():
                ab = alphas_cumprod[tm][:, None, None, None]  # (b, 1, 1, 1)
                x_t = ab.sqrt() * x0m + (1 - ab).sqrt() * noisem  # (b, 3, 32, 32)
                pred = model(x_t, timestep=tm, class_labels=ym).sample  # (b, 3, 32, 32)
                _, x0_pred = to_eps_x0(pred, x_t, ab, cfg.prediction_type)  # (b, 3, 32, 32)

                snr = (ab / (1 - ab)).flatten()  # (b,)
                weight = 1 + snr.clamp(max=cfg.snr_weight_cap)  # (b,)
                denoise = (((x0_pred - x0m) ** 2).mean(dim=(1, 2, 3)) * weight).mean()
                alignment = align.loss(x0m) if align is not None else torch.zeros((), device=acc.device)
                loss = denoise + cfg.repa_weight * alignment
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)

        decay = min(cfg.ema_decay, (1 + step) / (10 + step)) if ema_warmup else cfg.ema_decay
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), plain.parameters(), strict=True):
                pe.lerp_(pm, 1 - decay)
        bar.update(1)
        if step % 50 == 0 or step == cfg.steps - 1:
            bar.set_postfix(denoise=f"{denoise.item():.4f}", align=f"{alignment.item():.3f}")
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps and acc.is_main_process:
            ema.save_pretrained(out / "snapshot", safe_serialization=True)  # to inspect a long run
            if _judge_available():
                from shared.evaluation import judge_description

                score = class_accuracy(ema, scheduler_config, n=cfg.eval_samples)
                history.append({"step": step + 1, "class_accuracy": score, "scheduler": DEFAULT_SCHEDULER,
                                "judge": judge_description()})  # the judge changes between runs (issue 13)
                bar.write(f"step {step + 1}: denoising loss {denoise.item():.4f}, EMA class accuracy {score:.3f}")
    bar.close()
    return history


def _report(ema, cfg: Config, out: Path, history: list[dict], start: float, processes: int,
            phase1_from: str | None = None) -> dict:
    """Save the EMA weights and the scheduler, evaluate, write the model card."""
    from diffusers import DDPMScheduler

    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "snapshot", ignore_errors=True)
    ema.save_pretrained(out, safe_serialization=True)
    config_path = out / "config.json"  # weights loaded from a folder remember its path: not worth shipping
    config_path.write_text(json.dumps({k: v for k, v in json.loads(config_path.read_text()).items()
                                       if k != "_name_or_path"}, indent=2, sort_keys=True) + "\n")
    DDPMScheduler.from_config(build_scheduler_config(cfg)).save_pretrained(out / "scheduler")

    from shared.models import evaluate  # the same evaluation as `python -m shared.models eval`

    metrics = evaluate("dit-tiny-shapes", path=out, n=cfg.final_eval_samples)
    metrics.pop("model", None)
    metrics["parameters"] = sum(p.numel() for p in ema.parameters())
    metrics["train_steps"] = cfg.steps + cfg.finetune_steps  # both phases
    metrics["phase2_steps"] = cfg.finetune_steps
    wall = round(time.perf_counter() - start, 1)  # rendering + training + evaluation
    if phase1_from:  # phase 2 ran alone: its time is not the whole recipe's
        metrics["phase1_from"], metrics["phase2_wall_seconds"] = phase1_from, wall
    else:
        metrics["train_wall_seconds"] = wall
    metrics["processes"], metrics["torch_threads"] = processes, torch.get_num_threads()
    if history:
        (out / "eval_history.json").write_text(json.dumps(history, indent=1) + "\n")
    write_card(out, cfg, metrics)
    return metrics


def write_card(out: Path, cfg: Config, metrics: dict) -> None:
    """README.md (the model card) and metrics.json for weights trained with ``cfg``."""
    tokens = (cfg.image_size // cfg.patch_size) ** 2
    phase2 = ""
    if cfg.finetune_steps:
        phase2 = (f"- Phase 2: {cfg.finetune_steps} steps at lr {cfg.finetune_lr} (warm-up 100, cosine) from phase 1's\n"
                  "  EMA weights, REPA off (HASTE, Wang et al., 2025: alignment speeds up early training, then holds\n"
                  "  the student back), a fresh AdamW, the EMA carried on.\n")
    if "phase1_from" in metrics:
        phase2 += (f"- This phase 2 ran alone (`--from`) on {metrics['phase1_from']}: `phase2_wall_seconds` is its\n"
                   "  time (rendering, training, evaluation); `eval_history.json` holds both phases, each entry\n"
                   "  under the judge of its day. A rerun of phase 1 aligns to the current "
                   f"`{cfg.repa_teacher}`,\n  not necessarily the one those weights saw.\n")
    judge_note = ""
    if "previous_judge_class_accuracy" in metrics:
        judge_note = (" The judge was retrained after these weights; `previous_judge_class_accuracy` is the figure "
                      "under the judge before it.")
    write_model_card(
        out, "dit-tiny-shapes",
        f"""A `diffusers` `DiTTransformer2DModel` (Peebles & Xie, 2023) trained from scratch in pixel space
on the procedural shapes dataset (`shared/data/shapes.py`), conditioned on the shape class
({", ".join(SHAPES)}; null class {len(SHAPES)} for classifier-free guidance).

- Architecture: image {cfg.image_size}x{cfg.image_size}x3, patch {cfg.patch_size} ({tokens} tokens), width
  {cfg.num_attention_heads * cfg.attention_head_dim}, {cfg.num_layers} blocks with adaLN-Zero, {cfg.num_attention_heads} heads.
- Noise schedule: diffusers `DDPMScheduler`, 1000 steps, `{cfg.beta_schedule}`, `{cfg.prediction_type}`
  (saved in `scheduler/`; the stepper rebuilds DDIM, DPM-Solver++ and Euler from it).
- Data: the first {cfg.train_images} training-split shapes of the `classic` distribution (six saturated colours,
  all sizes, positions and rotations) on {" / ".join(cfg.backgrounds)} backgrounds: textures are detail a 2M-parameter
  model cannot afford to learn on a CPU.
- Recipe: {cfg.steps} steps of batch {cfg.batch_size}, AdamW lr {cfg.lr}
  (warm-up {cfg.warmup}, cosine), label dropout {cfg.label_dropout}, EMA {cfg.ema_decay}
  (the EMA weights are saved), horizontal flips, DiT's zero initialisation. Noise levels
  t = 999·sigmoid(N({cfg.t_logit_mean}, {cfg.t_logit_std}²)); loss |x̂_0 - x_0|²·(1 + min(SNR, {cfg.snr_weight_cap})).
  Representation alignment (REPA, Yu et al., 2024): {f"block {cfg.repa_block}'s tokens against `{cfg.repa_teacher}`'s image features, weight {cfg.repa_weight}" if cfg.repa_teacher else "off"}.
{phase2}- Metric: `class_accuracy` is the share of {metrics.get('n', cfg.eval_samples)} samples (classes in turn, 25 {metrics.get('scheduler', 'DDIM')} steps, guidance 3,
  fixed seeds) that the judge (`judge` below) classifies as the class they were conditioned on;
  `class_accuracy_guidance0` is the same without guidance. `judge_accuracy_on_real` is the judge's accuracy on as many
  real test-split shapes of the training data's kind, passed the same way: the ceiling of `class_accuracy`.{judge_note}
- Config: `{asdict(cfg)}`
""",
        metrics,
        "python -m shared.training dit-tiny-shapes",
    )

"""Quality metrics of the two stages of autoregressive image generation (issue 20).

- ``vq_quality``: a VQ-VAE's reconstruction PSNR and codebook usage on the test split, and its PSNR on
  shapes drawn by an independent renderer (matplotlib);
- ``ar_class_accuracy``: the share of an autoregressive token model's samples, decoded by the VQ-VAE,
  that ``vit-tiny-shapes`` assigns to the class they were conditioned on (as ``dit_class_accuracy``
  judges the DiT's samples).
"""

from __future__ import annotations

import numpy as np
import torch

from shared.models import kv_cache_name
from shared.sampling_settings import sampling_settings


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """10·log10(255² / MSE) between two uint8 images of one shape (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in about [-1, 1] -> uint8 (B, H, W, 3), as a user sees it."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def reconstruct(model, images: np.ndarray, batch: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W, 3) -> (reconstructions uint8 (N, H, W, 3), tokens (N, g, g))."""
    from shared.images import to_tensor

    recons, tokens = [], []
    for s in range(0, len(images), batch):
        t = model.tokenize(to_tensor(images[s:s + batch]))
        tokens.append(t.numpy())
        recons.append(to_uint8(model.decode_tokens(t)))
    return np.concatenate(recons), np.concatenate(tokens)


def vq_quality(source: str, n: int = 1000, n_independent: int = 200) -> dict:
    from PIL import Image

    from shared.data import matplotlib_shapes
    from shared.data.shapes import ShapesDataset
    from shared.training.vq_tiny_shapes import VQVAE

    model = VQVAE.from_pretrained(source)
    size = model.config["image_size"]
    images, _, _ = ShapesDataset("test", n, size, distribution="wide").arrays()
    recon, tokens = reconstruct(model, images)
    psnrs = [psnr_uint8(a, b) for a, b in zip(images, recon, strict=True)]
    drawings, _ = matplotlib_shapes.dataset(n_independent, size=128)
    drawn = np.stack([np.asarray(d.convert("RGB").resize((size, size), Image.Resampling.BOX)) for d in drawings])
    drawn_recon, _ = reconstruct(model, drawn)
    g = model.grid
    return {
        "psnr": round(float(np.mean(psnrs)), 2),
        "psnr_median": round(float(np.median(psnrs)), 2),
        "codebook_usage": round(len(np.unique(tokens)) / model.codebook_size, 4),
        "codes_used_test": int(len(np.unique(tokens))),
        "codebook_size": model.codebook_size,
        "independent_renderer_psnr": round(float(np.mean([psnr_uint8(a, b) for a, b in zip(drawn, drawn_recon, strict=True)])), 2),
        "grid": f"{g}x{g}", "image_size": size, "n": n, "n_independent": n_independent,
        "data_distribution": "wide",
    }


def embed(ar, ids: torch.Tensor, class_tokens: torch.Tensor) -> torch.Tensor:
    """Input embeddings of ``ids`` (B, L). With ``config.class_at_every_position`` the class token's embedding is
    added at every position (B,) -> (B, L, W), so the class reaches each prediction directly instead of only
    through attention to the prefix (a trial without it ignored the class: NLL 2.515 with the right class,
    2.522 with a wrong one)."""
    wte = ar.get_input_embeddings()
    x = wte(ids)
    if getattr(ar.config, "class_at_every_position", False):
        x = x + wte(class_tokens)[:, None, :]
    return x


def null_class_token(ar) -> int | None:
    """The token of "no class" that a model trained with class dropout knows; None for older models."""
    return getattr(ar.config, "null_class_token", None)


def default_guidance(ar) -> float:
    """The classifier-free guidance scale ``class_accuracy`` is measured at (config.json); 1 = no guidance."""
    return float(sampling_settings(ar.config.to_dict())["guidance_scale"])


def start_tokens(ar, class_tokens: torch.Tensor, guidance: float) -> torch.Tensor:
    """The prefix of each sequence (B,) -> (B,) or, when guided, (2B,): the conditional rows, then the same rows
    with the null class (the unconditional pass of classifier-free guidance)."""
    if guidance == 1.0:
        return class_tokens
    null = null_class_token(ar)
    if null is None:
        raise ValueError("this model was trained without class dropout, so it has no unconditional pass: "
                         "guidance must be 1")
    return torch.cat([class_tokens, torch.full_like(class_tokens, null)])


def next_code_logits(ar, inp: torch.Tensor, cls: torch.Tensor, cache, guidance: float, codebook_size: int):
    """One decoding step: logits of the next image code (B, K) and the updated KV cache.

    Guided (``guidance`` != 1, the batch doubled by ``start_tokens``): l_u + s·(l_c - l_u), classifier-free
    guidance (Ho & Salimans, 2022) applied to the next-token logits, as Parti does for its autoregressive
    sampler (Yu et al., 2022)."""
    name = kv_cache_name(ar)
    out = ar(inputs_embeds=embed(ar, inp, cls), use_cache=True, **{name: cache})
    logits = out.logits[:, -1, :codebook_size]  # image codes only, never a class token
    if guidance != 1.0:
        cond, uncond = logits.chunk(2)
        logits = uncond + guidance * (cond - uncond)
    return logits, getattr(out, name)


@torch.no_grad()
def sample_tokens(ar, n: int, labels: torch.Tensor, codebook_size: int, tokens_per_image: int,
                  temperature: float, top_k: int, seed: int = 0, guidance: float = 1.0) -> torch.Tensor:
    """Batched raster-order sampling: (n,) class ids -> tokens (n, tokens_per_image). Temperature 0 is greedy."""
    gen = torch.Generator().manual_seed(seed)
    cls = start_tokens(ar, (labels + codebook_size).long(), guidance)  # (n,) or (2n,)
    inp = cls[:, None]
    cache = None
    chosen = []
    for _ in range(tokens_per_image):
        logits, cache = next_code_logits(ar, inp, cls, cache, guidance, codebook_size)  # (n, K)
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            vals, idx = (logits / temperature).topk(top_k, dim=-1)
            pick = torch.multinomial(torch.softmax(vals, -1), 1, generator=gen)
            nxt = idx.gather(1, pick)
        chosen.append(nxt)
        inp = nxt if guidance == 1.0 else torch.cat([nxt, nxt])
    return torch.cat(chosen, 1)


class Judge:
    """Samples of a token generator, decoded and classified: the generator, its tokenizer and ``vit-tiny-shapes``,
    loaded once (a sampling sweep measures many settings)."""

    def __init__(self, source: str, vq: str | None = None):
        from transformers import AutoModelForCausalLM

        from shared.evaluation import ShapeJudge
        from shared.models import resolve
        from shared.training.vq_tiny_shapes import VQVAE

        self.ar = AutoModelForCausalLM.from_pretrained(source, use_safetensors=True).eval()
        self.tokenizer = VQVAE.from_pretrained(vq or resolve("vq-tiny-shapes"))
        self.judge = ShapeJudge()

    @torch.no_grad()
    def class_accuracy(self, n: int, temperature: float, top_k: int, guidance: float, seed: int) -> float:
        """Share of ``n`` samples (classes in turn; batches of 100 seeded ``seed``, ``seed + 100``, ...) that the
        judge assigns to the class they were conditioned on."""
        from shared.data.shapes import SHAPES

        labels = torch.arange(n) % len(SHAPES)
        g = self.tokenizer.grid
        hits = 0
        for s in range(0, n, 100):
            lab = labels[s:s + 100]
            tokens = sample_tokens(self.ar, len(lab), lab, self.tokenizer.codebook_size, g * g, temperature, top_k,
                                   seed + s, guidance)
            pixels = to_uint8(self.tokenizer.decode_tokens(tokens.view(-1, g, g)))
            hits += int(self.judge.correct(pixels, lab).sum())
        return hits / n


def ar_class_accuracy(source: str, n: int = 1000, temperature: float | None = None, top_k: int | None = None,
                      vq: str | None = None, seed: int = 0, guidance: float | None = None) -> dict:
    """``class_accuracy`` of ``n`` samples at the model's own sampling settings (``sampling_settings``) unless
    given. Seeds 0, 100, ...: the recipe chooses those settings on other seeds."""
    from shared.evaluation import judge_description

    judge = Judge(source, vq)
    settings = sampling_settings(judge.ar.config.to_dict())
    for name, given in (("guidance_scale", guidance), ("temperature", temperature), ("top_k", top_k)):
        if given is not None:
            settings[name] = given
    accuracy = judge.class_accuracy(n, settings["temperature"], settings["top_k"], settings["guidance_scale"], seed)
    return {"class_accuracy": round(accuracy, 4), "n": n, **settings, "judge": judge_description()}

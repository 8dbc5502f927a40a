"""Quality metrics of the embedded models on held-out data (the test split, seed 2).

Each function takes a model folder (or Hub id) and returns a dict of metrics; the registry
in ``shared/models.py`` names which one applies to which model.
"""

from __future__ import annotations

import torch

from shared.data.shapes import SHAPES, ShapesDataset


@torch.no_grad()
def classifier_accuracy(source: str, n: int = 2000, batch_size: int = 250) -> dict:
    """Top-1 accuracy on ``n`` test-split shapes, through the model's own image processor."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(source, use_safetensors=True).eval()
    processor = AutoImageProcessor.from_pretrained(source)
    labels_by_name = {v: int(k) for k, v in model.config.id2label.items()}
    ds = ShapesDataset("test", n, size=processor.size["height"])
    correct = 0
    for start in range(0, n, batch_size):
        batch = [ds[i] for i in range(start, min(n, start + batch_size))]
        pixels = processor(images=[b[0] for b in batch], return_tensors="pt")["pixel_values"]
        pred = model(pixel_values=pixels).logits.argmax(-1)  # (B,)
        truth = torch.tensor([labels_by_name[SHAPES[b[1]]] for b in batch])
        correct += (pred == truth).sum().item()
    return {"accuracy": round(correct / n, 4), "n": n}


@torch.no_grad()
def clip_zero_shot(source: str, n: int = 1000, batch_size: int = 100) -> dict:
    """Zero-shot accuracy (shape; colour x shape) and image-to-caption R@1 of a CLIP on the test split.

    Prompts are "a photo of a {shape}" and "a photo of a {color} {shape}" (Radford et al., 2021).
    Retrieval ranks the 100 captions of each batch of 100 images; a hit is the true caption's text.
    """
    import torch.nn.functional as F
    from transformers import AutoProcessor, CLIPModel

    from shared.data.shapes import COLORS

    model = CLIPModel.from_pretrained(source, use_safetensors=True).eval()
    processor = AutoProcessor.from_pretrained(source)
    size = processor.image_processor.crop_size["height"]

    def embed_text(texts: list[str]) -> torch.Tensor:
        tokens = processor.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        return F.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)  # (T, P)

    pairs = [(c, s) for c in COLORS for s in SHAPES]
    shape_text = embed_text([f"a photo of a {s}" for s in SHAPES])  # (5, P)
    pair_text = embed_text([f"a photo of a {c} {s}" for c, s in pairs])  # (30, P)
    ds = ShapesDataset("test", n, size=size)
    shape_hits = pair_hits = r1_hits = 0
    for start in range(0, n, batch_size):
        batch = [ds[i] for i in range(start, min(n, start + batch_size))]
        specs = [b[2] for b in batch]
        pixels = processor(images=[b[0] for b in batch], return_tensors="pt")["pixel_values"]
        image = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)  # (B, P)
        shape_pred = (image @ shape_text.T).argmax(-1)  # (B,)
        pair_pred = (image @ pair_text.T).argmax(-1)  # (B,)
        captions = [s.caption for s in specs]
        caption_pred = (image @ embed_text(captions).T).argmax(-1)  # (B,)
        for i, s in enumerate(specs):
            shape_hits += SHAPES[shape_pred[i]] == s.shape
            pair_hits += pairs[pair_pred[i]] == (s.color, s.shape)
            r1_hits += captions[caption_pred[i]] == s.caption
    return {
        "zero_shot_shape_accuracy": round(shape_hits / n, 4),
        "zero_shot_color_shape_accuracy": round(pair_hits / n, 4),
        "retrieval_r1": round(r1_hits / n, 4),
        "retrieval_batch": batch_size,
        "n": n,
    }


# --------------------------------------------------------------------------------------
#                        dit-tiny-shapes: class accuracy of samples
# --------------------------------------------------------------------------------------

@torch.no_grad()
def judge_samples(transformer, scheduler_config: dict, n: int = 200, steps: int = 25, guidance: float = 3.0,
                  seed: int = 0, scheduler: str | None = None, judge: str | None = None) -> float:
    """Share of ``n`` samples (classes in turn, one seeded batch) that ``vit-tiny-shapes`` assigns
    to the class they were conditioned on. Samples are quantised to uint8 first, as a user sees them."""
    from transformers import AutoModelForImageClassification

    from shared.diffusion import DEFAULT_SCHEDULER, sample
    from shared.models import resolve

    classifier = AutoModelForImageClassification.from_pretrained(
        judge or resolve("vit-tiny-shapes"), use_safetensors=True).eval()
    judge_index = {v: int(k) for k, v in classifier.config.id2label.items()}
    labels = torch.arange(n) % len(SHAPES)  # (n,)
    was_training = transformer.training
    transformer.eval()
    x = sample(transformer, scheduler_config, labels, steps=steps, guidance=guidance, seed=seed,
               scheduler=scheduler or DEFAULT_SCHEDULER)  # (n, 3, 32, 32) in about [-1, 1]
    transformer.train(was_training)
    x = torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1  # uint8 round trip, back to [-1, 1]
    pred = classifier(pixel_values=x).logits.argmax(-1)  # (n,)
    truth = torch.tensor([judge_index[SHAPES[int(c)]] for c in labels])
    return round((pred == truth).float().mean().item(), 4)


def dit_class_accuracy(source: str, n: int = 200, steps: int = 25) -> dict:
    """Class accuracy of a class-conditional pixel-space DiT at guidance 3 and, for contrast, 0."""
    import json
    from pathlib import Path

    from diffusers import DiTTransformer2DModel

    from shared.diffusion import DEFAULT_SCHEDULER

    transformer = DiTTransformer2DModel.from_pretrained(source, use_safetensors=True).eval()
    config = json.loads((Path(source) / "scheduler" / "scheduler_config.json").read_text())
    return {
        "class_accuracy": judge_samples(transformer, config, n=n, steps=steps, guidance=3.0),
        "class_accuracy_guidance0": judge_samples(transformer, config, n=n, steps=steps, guidance=0.0),
        "n": n, "steps": steps, "guidance": 3.0, "scheduler": DEFAULT_SCHEDULER,
    }


# --------------------------------------------------------------------------------------
#                        fast-bpe-actions: tokens per action chunk
# --------------------------------------------------------------------------------------

def fast_bpe_tokens(source: str, n: int = 200, scale: float = 10.0) -> dict:
    """FAST tokens per held-out 50x7 chunk (50 Hz, 1 s; noise 0, 0.05, 0.2 in turn), against
    the T x D = 350 of 256-bin tokenization, and whether BPE decoding restores every character."""
    import numpy as np
    from transformers import AutoTokenizer

    from shared.actions import generate_chunk
    from shared.training.fast_bpe_actions import chunk_text

    tokenizer = AutoTokenizer.from_pretrained(source).backend_tokenizer
    counts: dict[float, list[int]] = {0.0: [], 0.05: [], 0.2: []}
    exact = 0
    for i in range(n):
        noise = (0.0, 0.05, 0.2)[i % 3]
        text = chunk_text(generate_chunk(10_000_000 + i, steps=50, hz=50.0, noise=noise), scale)
        ids = tokenizer.encode(text).ids
        exact += tokenizer.decode(ids) == text
        counts[noise].append(len(ids))
    smooth = float(np.mean(counts[0.0]))
    return {
        "vocab_size": tokenizer.get_vocab_size(),
        "mean_tokens_50x7_noise0": round(smooth, 1),
        "mean_tokens_50x7_noise0.05": round(float(np.mean(counts[0.05])), 1),
        "mean_tokens_50x7_noise0.2": round(float(np.mean(counts[0.2])), 1),
        "bin256_tokens_50x7": 350,
        "compression_vs_bin256_noise0": round(350 / smooth, 2),
        "bpe_roundtrip_exact": f"{exact}/{n}",
        "n": n, "scale": scale,
    }

"""Quality metrics of the embedded models on held-out data (the test split, seed 2).

Each function takes a model folder (or Hub id) and returns a dict of metrics; the registry
in ``shared/models.py`` names which one applies to which model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from shared.data.shapes import SHAPES, ShapesDataset


def trained_on(source: str) -> str:
    """The shapes distribution a model folder was trained on (``data_distribution`` in its metrics.json;
    folders from before the wide distribution have none and were trained on the classic one)."""
    import json

    path = Path(source) / "metrics.json"
    if not path.is_file():
        return "wide"  # a Hub model or a fresh folder: judge it on the default distribution
    return json.loads(path.read_text()).get("data_distribution", "classic")


def _rates(hits: dict[str, list[bool]]) -> dict[str, dict]:
    return {k: {"accuracy": round(sum(v) / len(v), 4), "n": len(v)} for k, v in sorted(hits.items())}


def not_shapes(n_noise: int = 100, crops_per_photo: int = 4, seed: int = 0) -> dict[str, list]:
    """Images that are not shapes, for the OOD detection rate: noise of several kinds, and photos
    (scikit-image's bundled samples: a cat, an astronaut, coffee, a rocket...), each whole and as random
    crops. Without scikit-image (a runtime install) there are no photos: matplotlib's Grace Hopper is an
    Outlier Exposure training image (``shared/data/outliers.py``), so it cannot measure detection."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    noise = []
    for i in range(n_noise):
        kind = i % 4
        if kind == 0:  # uniform RGB noise
            arr = rng.integers(0, 256, (64, 64, 3))
        elif kind == 1:  # grey Gaussian noise
            arr = np.repeat(np.clip(rng.normal(128, 50, (64, 64, 1)), 0, 255), 3, -1)
        elif kind == 2:  # smooth colour noise (upsampled 4x4)
            arr = np.asarray(Image.fromarray(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)).resize((64, 64), Image.BICUBIC))
        else:  # salt and pepper on a random colour
            arr = np.where(rng.random((64, 64, 1)) < 0.1, rng.integers(0, 2, (64, 64, 1)) * 255, rng.integers(0, 256, 3))
        noise.append(Image.fromarray(arr.astype(np.uint8), "RGB"))
    photos = []
    for photo in _photos():
        photos.append(photo)
        w, h = photo.size
        for _ in range(crops_per_photo):
            side = int(rng.uniform(0.3, 0.7) * min(w, h))
            x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
            photos.append(photo.crop((x, y, x + side, y + side)))
    return {"noise": noise, "photos": photos} if photos else {"noise": noise}


def _photos() -> list:
    from PIL import Image

    try:
        import skimage.data as data
    except ImportError:
        return []
    names = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "brick", "grass",
             "gravel", "retina", "hubble_deep_field", "page", "text", "cell", "horse", "immunohistochemistry")
    out = []
    for name in names:
        arr = getattr(data, name)()
        if arr.dtype == bool:
            arr = arr.astype("uint8") * 255
        out.append(Image.fromarray(arr).convert("RGB"))
    return out


def ood_rates(extract, stats, test_logits: torch.Tensor | None, test_feats: torch.Tensor) -> dict:
    """False-alarm rate on test-split shapes and detection rate on ``not_shapes()``: for the flag the
    pages use (``shared.ood.flagged``: the softmax score for a classifier, else the distance) and for each
    score alone."""
    from shared import ood

    def rates(logits: torch.Tensor | None, feats: torch.Tensor) -> dict[str, float]:
        distance = ood.mahalanobis(feats, stats.means, stats.precision)
        msp = logits.softmax(-1).max(-1).values if logits is not None else None
        out = {"flagged": float(ood.flagged(stats, distance, msp).float().mean()),
               "mahalanobis": float((distance > stats.threshold).float().mean())}
        if msp is not None and stats.msp_threshold is not None:
            out["msp"] = float((msp < stats.msp_threshold).float().mean())
        return {k: round(v, 4) for k, v in out.items()}

    test = rates(test_logits, test_feats)
    result = {"threshold": round(stats.threshold, 3), "target_false_alarm": stats.meta["target_false_alarm"],
              "false_alarm_test": test.pop("flagged"), "n_test": len(test_feats),
              **{f"{k}_false_alarm_test": v for k, v in test.items()}}
    if stats.msp_threshold is not None:
        result["msp_threshold"] = round(stats.msp_threshold, 4)
    for kind, images in not_shapes().items():
        found = rates(*extract(images))
        result[f"detected_{kind}"] = found.pop("flagged")
        result.update({f"{k}_detected_{kind}": v for k, v in found.items()})
        result[f"n_{kind}"] = len(images)
    return result


@torch.no_grad()
def classifier_accuracy(source: str, n: int = 2000, n_shifted: int = 1000, n_independent: int = 500) -> dict:
    """Top-1 accuracy on ``n`` test-split shapes through the model's own image processor, and the
    robustness table: per background kind, colour and size word; on the ``shifted`` split (colour x
    background pairs never trained on); on shapes drawn by matplotlib (an independent renderer).
    With calibrated OOD stats beside the weights (``shared.ood``): the false-alarm rate on the test
    split and the detection rate on noise and photos, for the Mahalanobis score and the softmax baseline."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from shared import ood
    from shared.data import matplotlib_shapes

    model = AutoModelForImageClassification.from_pretrained(source, use_safetensors=True).eval()
    processor = AutoImageProcessor.from_pretrained(source)
    to_model = {int(k): v for k, v in model.config.id2label.items()}
    size = processor.size["height"]

    def predict(images: list) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        logits, feats = ood.image_features(model, processor, images)
        return [to_model[int(i)] for i in logits.argmax(-1)], logits, feats

    distribution = trained_on(source)
    ds = ShapesDataset("test", n, size=size, distribution=distribution)
    specs = [ds.spec(i) for i in range(n)]
    pred, test_logits, test_feats = predict([ds[i][0] for i in range(n)])
    hits = [p == s.shape for p, s in zip(pred, specs, strict=True)]
    by: dict[str, dict[str, list[bool]]] = {"background": {}, "color": {}, "size": {}}
    for hit, s in zip(hits, specs, strict=True):
        for key, value in (("background", s.background), ("color", s.color), ("size", s.size)):
            by[key].setdefault(value, []).append(hit)
    shifted = ShapesDataset("shifted", n_shifted, size=size)  # wide only: the pairs no model trained on
    shifted_pred, _, _ = predict([shifted[i][0] for i in range(n_shifted)])
    drawings, drawing_labels = matplotlib_shapes.dataset(n_independent)
    drawn_pred, _, _ = predict(drawings)
    config = model.config
    metrics = {
        "accuracy": round(sum(hits) / n, 4), "n": n, "data_distribution": distribution,
        "grid": f"{config.image_size // config.patch_size}x{config.image_size // config.patch_size}",
        "image_size": config.image_size, "patch_size": config.patch_size,
        "shifted_accuracy": round(sum(p == s.shape for p, s in zip(shifted_pred, (shifted.spec(i) for i in range(n_shifted)), strict=True)) / n_shifted, 4),
        "n_shifted": n_shifted,
        "independent_renderer_accuracy": round(sum(p == SHAPES[y] for p, y in zip(drawn_pred, drawing_labels, strict=True)) / n_independent, 4),
        "n_independent": n_independent,
        "by_background": _rates(by["background"]), "by_color": _rates(by["color"]), "by_size": _rates(by["size"]),
    }
    stats = ood.load(source) if Path(source).is_dir() else None
    if stats is not None:
        metrics["ood"] = ood_rates(lambda images: ood.image_features(model, processor, images), stats,
                                   test_logits, test_feats)
    return metrics


@torch.no_grad()
def clip_zero_shot(source: str, n: int = 1000, batch_size: int = 100, n_shifted: int = 500) -> dict:
    """Zero-shot accuracy (shape; colour x shape) and image-to-caption R@1 of a CLIP on the test split,
    and the same on the ``shifted`` split (colour x background pairs never trained on).

    Prompts are "a photo of a {shape}" and "a photo of a {color} {shape}" (Radford et al., 2021).
    Retrieval ranks the 100 captions of each batch of 100 images; a hit is the true caption's text.
    """
    import torch.nn.functional as F
    from transformers import AutoProcessor, CLIPModel

    from shared import ood
    from shared.data.shapes import CLASSIC_COLORS, COLORS

    model = CLIPModel.from_pretrained(source, use_safetensors=True).eval()
    processor = AutoProcessor.from_pretrained(source)
    size = processor.image_processor.crop_size["height"]

    def embed_text(texts: list[str]) -> torch.Tensor:
        tokens = processor.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        return F.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)  # (T, P)

    distribution = trained_on(source)
    colors = list(COLORS) if distribution == "wide" else list(CLASSIC_COLORS)
    pairs = [(c, s) for c in colors for s in SHAPES]
    shape_text = embed_text([f"a photo of a {s}" for s in SHAPES])  # (5, P)
    pair_text = embed_text([f"a photo of a {c} {s}" for c, s in pairs])  # (60, P)

    def score(ds: ShapesDataset) -> tuple[float, float, float]:
        shape_hits = pair_hits = r1_hits = 0
        for start in range(0, len(ds), batch_size):
            batch = [ds[i] for i in range(start, min(len(ds), start + batch_size))]
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
        return shape_hits / len(ds), pair_hits / len(ds), r1_hits / len(ds)

    test = ShapesDataset("test", n, size=size, distribution=distribution)
    shape_acc, pair_acc, r1 = score(test)
    metrics = {
        "zero_shot_shape_accuracy": round(shape_acc, 4),
        "zero_shot_color_shape_accuracy": round(pair_acc, 4),
        "retrieval_r1": round(r1, 4),
        "retrieval_batch": batch_size,
        "n": n,
        "data_distribution": distribution,
        "colors": len(colors),
    }
    if distribution == "wide":
        shifted_shape, shifted_pair, shifted_r1 = score(ShapesDataset("shifted", n_shifted, size=size))
        metrics.update({
            "shifted_zero_shot_shape_accuracy": round(shifted_shape, 4),
            "shifted_zero_shot_color_shape_accuracy": round(shifted_pair, 4),
            "shifted_retrieval_r1": round(shifted_r1, 4),
            "n_shifted": n_shifted,
        })
    stats = ood.load(source) if Path(source).is_dir() else None
    if stats is not None:
        def extract(images: list) -> tuple[torch.Tensor, torch.Tensor]:
            return ood.clip_image_features(model, processor, images)

        metrics["ood"] = ood_rates(extract, stats, *extract([test[i][0] for i in range(n)]))
    return metrics


# --------------------------------------------------------------------------------------
#                        dit-tiny-shapes: class accuracy of samples
# --------------------------------------------------------------------------------------

class ShapeJudge:
    """``vit-tiny-shapes`` (or ``path``) classifying uint8 images through its own processor, as a user's upload:
    the judge of every generator's samples."""

    def __init__(self, path: str | None = None):
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        from shared.models import resolve

        path = path or resolve("vit-tiny-shapes")
        self.classifier = AutoModelForImageClassification.from_pretrained(path, use_safetensors=True).eval()
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.index = {v: int(k) for k, v in self.classifier.config.id2label.items()}

    @torch.no_grad()
    def correct(self, pixels, labels: torch.Tensor) -> torch.Tensor:
        """(N,) bool: the judge names class ``labels`` (N,) (indices into SHAPES) for ``pixels`` (N, H, W, 3) uint8."""
        from PIL import Image

        inputs = self.processor(images=[Image.fromarray(p) for p in pixels], return_tensors="pt")["pixel_values"]
        pred = self.classifier(pixel_values=inputs).logits.argmax(-1)  # (N,)
        return pred == torch.tensor([self.index[SHAPES[int(c)]] for c in labels])

    def accuracy(self, pixels, labels: torch.Tensor) -> float:
        return round(self.correct(pixels, labels).float().mean().item(), 4)


@torch.no_grad()
def judge_samples(transformer, scheduler_config: dict, n: int = 200, steps: int = 25, guidance: float = 3.0,
                  seed: int = 0, scheduler: str | None = None, judge: str | None = None) -> float:
    """Share of ``n`` samples (classes in turn, one seeded batch) that ``vit-tiny-shapes`` assigns
    to the class they were conditioned on. Samples are quantised to uint8 first, as a user sees them."""
    from shared.diffusion import DEFAULT_SCHEDULER, sample

    labels = torch.arange(n) % len(SHAPES)  # (n,)
    was_training = transformer.training
    transformer.eval()
    x = sample(transformer, scheduler_config, labels, steps=steps, guidance=guidance, seed=seed,
               scheduler=scheduler or DEFAULT_SCHEDULER)  # (n, 3, 32, 32) in about [-1, 1]
    transformer.train(was_training)
    pixels = torch.round((x.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (n, 32, 32, 3)
    return ShapeJudge(judge).accuracy(pixels, labels)


def judge_on_real_shapes(n: int = 1000, size: int | None = None, judge: str | None = None) -> float:
    """The judge's accuracy on ``n`` real test-split images of what the DiT learns (its recipe's data: classic
    shapes on its backgrounds, at ``size`` px, by default the recipe's), passed as samples are. The ceiling of
    ``class_accuracy``: a shape the judge misses here it would miss in a perfect sample too."""
    import numpy as np

    from shared.training.dit_tiny_shapes import Config, training_images

    cfg = replace(Config(), train_images=n, image_size=size or Config().image_size)
    images, labels = training_images(cfg, split="test")  # (n, size, size, 3) uint8, (n,)
    return ShapeJudge(judge).accuracy(np.asarray(images), torch.from_numpy(labels))


def dit_class_accuracy(source: str, n: int = 200, steps: int = 25) -> dict:
    """Class accuracy of a class-conditional pixel-space DiT at guidance 3 and, for contrast, 0; and the
    judge's accuracy on real shapes of the kind the DiT draws."""
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
        "judge": judge_description(),
        "judge_accuracy_on_real": judge_on_real_shapes(n, size=transformer.config.sample_size),
    }


def judge_description() -> str:
    """Which classifier judged the samples, from its config (the judge changed once: issue 13)."""
    import json

    from shared.models import resolve

    config = json.loads((Path(resolve("vit-tiny-shapes")) / "config.json").read_text())
    g = config["image_size"] // config["patch_size"]
    return f"vit-tiny-shapes ({config['image_size']} px, {g}x{g} patches; samples resized by its processor)"


# --------------------------------------------------------------------------------------
#                        fast-bpe-actions: tokens per action chunk
# --------------------------------------------------------------------------------------

def fast_bpe_tokens(source: str, n: int = 200, scale: float = 10.0) -> dict:
    """FAST tokens per held-out 50x7 chunk (50 Hz, 1 s; noise 0, 0.05, 0.2 in turn), against
    the T x D = 350 of 256-bin tokenization, and whether BPE decoding restores every character."""
    import numpy as np
    from transformers import AutoTokenizer

    from shared.actions import chunk_text, generate_chunk

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

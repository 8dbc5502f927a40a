"""The model registry and the one loader every space uses.

``REGISTRY`` is a plain dict from a short name to a ``ModelSpec``. A spec's source is either
``embedded`` (weights shipped in ``shared/weights/<name>/``) or a Hugging Face Hub id; both go
through the same ``from_pretrained`` call, so a user with network can swap in the real model.

``load(name)`` is lazy, cached (bounded LRU) and thread-safe. Only safetensors are loaded and
``trust_remote_code`` is never set. Offline, a Hub model that is not in the local cache fails
at once with a message naming the embedded alternative, instead of hanging on retries.

CLI: ``python -m shared.models list`` and ``python -m shared.models eval NAME``.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.cache import BoundedCache
from shared.device import pick_device

if TYPE_CHECKING:  # torch is imported by load(), not here: the hub's start-up imports this module
    import torch

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
EMBEDDED = "embedded"


class ModelUnavailableError(ValueError):
    """The model cannot be loaded here (offline and not cached, or no weights shipped)."""


# --------------------------------------------------------------------------------------
#                                   Registry
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSpec:
    task: str  # a key of LOADERS
    source: str  # EMBEDDED or a Hub id
    description: str
    alternative: str | None = None  # the embedded model to suggest when a Hub model is unavailable
    evaluate: str | None = None  # "module:function" computing quality metrics, see shared/evaluation.py

    @property
    def embedded(self) -> bool:
        return self.source == EMBEDDED


REGISTRY: dict[str, ModelSpec] = {
    "vit-tiny-shapes": ModelSpec(
        task="image-classification", source=EMBEDDED,
        description="ViT trained here on shapes (sizes in its config.json)",
        evaluate="shared.evaluation:classifier_accuracy",
    ),
    "cnn-tiny-shapes": ModelSpec(
        task="image-classification", source=EMBEDDED,
        description="tiny ResNet trained here on the same shapes as vit-tiny-shapes (sizes in its config.json)",
        evaluate="shared.training.cnn_tiny_shapes:evaluate",
    ),
    "fast-bpe-actions": ModelSpec(
        task="action-tokenizer", source=EMBEDDED,
        description="FAST's byte-level BPE (vocab 1024) over DCT coefficients of 7-D action chunks; trained here",
        evaluate="shared.evaluation:fast_bpe_tokens",
    ),
    "vq-actions": ModelSpec(
        task="action-vq-tokenizer", source=EMBEDDED,
        description="residual VQ action tokenizer: k-means codebooks over 10-step segments of 50x7 chunks; trained here",
        evaluate="shared.training.vq_actions:evaluate",
    ),
    "google/vit-base-patch16-224": ModelSpec(
        task="image-classification", source="google/vit-base-patch16-224",
        description="ViT-B/16, ImageNet-21k pre-trained, ImageNet-1k fine-tuned (Dosovitskiy et al., 2021)",
        alternative="vit-tiny-shapes",
    ),
    "facebook/deit-tiny-patch16-224": ModelSpec(
        task="image-classification", source="facebook/deit-tiny-patch16-224",
        description="DeiT-Ti/16, ImageNet-1k (Touvron et al., 2021)",
        alternative="vit-tiny-shapes",
    ),
    "facebook/dino-vits16": ModelSpec(
        task="image-features", source="facebook/dino-vits16",
        description="DINO ViT-S/16, self-supervised on ImageNet-1k, no classifier head (Caron et al., 2021)",
        alternative="vit-tiny-shapes",
    ),
    "clip-tiny-shapes": ModelSpec(
        task="zero-shot-image-classification", source=EMBEDDED,
        description="CLIP trained here on shapes and their captions (sizes in its config.json)",
        evaluate="shared.evaluation:clip_zero_shot",
    ),
    "openai/clip-vit-base-patch32": ModelSpec(
        task="zero-shot-image-classification", source="openai/clip-vit-base-patch32",
        description="CLIP ViT-B/32, 400M web image-text pairs (Radford et al., 2021)",
        alternative="clip-tiny-shapes",
    ),
    "dit-tiny-shapes": ModelSpec(
        task="class-conditional-diffusion", source=EMBEDDED,
        description="DiT trained here on shapes, in pixel space (sizes in its config.json)",
        evaluate="shared.evaluation:dit_class_accuracy",
    ),
    "facebook/DiT-XL-2-256": ModelSpec(
        task="class-conditional-diffusion", source="facebook/DiT-XL-2-256",
        description="DiT-XL/2 on 32x32x4 SD-VAE latents of 256 px ImageNet images (Peebles & Xie, 2023)",
        alternative="dit-tiny-shapes",
    ),
    "mae-tiny-shapes": ModelSpec(
        task="masked-image-modeling", source=EMBEDDED,
        description="masked autoencoder (ViTMAE) trained here on shapes at mask ratio 0.75 (sizes in its config.json)",
        evaluate="shared.training.mae_tiny_shapes:evaluate",
    ),
    "facebook/vit-mae-base": ModelSpec(
        task="masked-image-modeling", source="facebook/vit-mae-base",
        description="MAE ViT-B/16 pre-trained on ImageNet-1k at mask ratio 0.75 (He et al., 2022)",
        alternative="mae-tiny-shapes",
    ),
    "vq-tiny-shapes": ModelSpec(
        task="image-tokenizer", source=EMBEDDED,
        description="VQ-VAE trained here on shapes: 32x32 image -> 8x8 tokens (codebook size in its config.json)",
        evaluate="shared.evaluation_vq:vq_quality",
    ),
    "ar-tiny-shapes": ModelSpec(
        task="autoregressive-image-generation", source=EMBEDDED,
        description="Llama-style decoder trained here on vq-tiny-shapes tokens, class as a prefix token",
        evaluate="shared.evaluation_vq:ar_class_accuracy",
    ),
    "vjepa-tiny-shapes": ModelSpec(
        task="video-jepa", source=EMBEDDED,
        description="tiny V-JEPA trained here on moving shapes: context encoder, EMA target encoder, predictor",
        evaluate="shared.training.vjepa_tiny_shapes:evaluate",
    ),
    "video-vit-tiny-shapes": ModelSpec(
        task="video-classification", source=EMBEDDED,
        description="VideoMAE-architecture video ViT trained here on moving shapes: motion direction, 8 classes",
        evaluate="shared.training.video_vit_tiny_shapes:evaluate",
    ),
    "MCG-NJU/videomae-base": ModelSpec(
        task="video-classification", source="MCG-NJU/videomae-base",
        description="VideoMAE ViT-B, 16 frames of 224 px, tubelet 2, self-supervised on Kinetics-400 (Tong et al., 2022)",
        alternative="video-vit-tiny-shapes",
    ),
    "vlm-tiny-shapes": ModelSpec(
        task="image-text-to-text", source=EMBEDDED,
        description="tiny LLaVA trained here: clip-tiny-shapes' vision tower, MLP projector, a tiny Llama; answers "
                    "questions about one shape",
        evaluate="shared.training.vlm_tiny_shapes:evaluate",
    ),
    "HuggingFaceTB/SmolVLM-256M-Instruct": ModelSpec(
        task="image-text-to-text", source="HuggingFaceTB/SmolVLM-256M-Instruct",
        description="SmolVLM-256M-Instruct: SigLIP tower, pixel shuffle, SmolLM2-135M (Marafioti et al., 2025)",
        alternative="vlm-tiny-shapes",
    ),
}


def _spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ModelUnavailableError(f"unknown model {name!r}; choose one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def names(task: str | None = None) -> list[str]:
    """Registered model names, optionally only those of one task."""
    return [n for n, s in REGISTRY.items() if task is None or s.task == task]


# --------------------------------------------------------------------------------------
#                                   Availability
# --------------------------------------------------------------------------------------

def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def local_path(name: str) -> Path:
    return WEIGHTS_DIR / name


def summary(name: str) -> str:
    """One line on a model: for an embedded ViT-family classifier, its sizes read from config.json
    (so the line cannot go stale when the weights change); otherwise the registry's description."""
    import json

    spec = _spec(name)
    path = local_path(name) / "config.json" if spec.embedded else None
    if path is not None and path.is_file():
        c = json.loads(path.read_text())
        if {"image_size", "patch_size", "hidden_size", "num_hidden_layers"} <= set(c):
            g = c["image_size"] // c["patch_size"]
            return (f"ViT, image {c['image_size']}, patch {c['patch_size']} ({g}x{g} grid), width {c['hidden_size']}, "
                    f"{c['num_hidden_layers']} layers; trained here on shapes")
    return spec.description


@dataclass(frozen=True)
class ViTFacts:
    """An embedded ViT classifier's sizes and held-out accuracy, as its config.json and metrics.json state
    them (read without torch: pages show them at start-up)."""

    name: str
    image_size: int
    patch_size: int
    hidden_size: int
    layers: int
    heads: int
    classes: tuple[str, ...]
    parameters: int | None
    accuracy: float | None
    eval_images: int | None

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def width(self) -> int:
        return self.hidden_size

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads


def vit_facts(name: str) -> ViTFacts | None:
    """``ViTFacts`` of an embedded model, or None when its folder has no config.json."""
    import json

    path = local_path(name) / "config.json"
    if not path.is_file():
        return None
    c = json.loads(path.read_text())
    m = shipped_metrics(name) or {}
    labels = c.get("id2label") or {}
    return ViTFacts(name=name, image_size=int(c["image_size"]), patch_size=int(c["patch_size"]),
                    hidden_size=int(c["hidden_size"]), layers=int(c["num_hidden_layers"]),
                    heads=int(c["num_attention_heads"]), classes=tuple(labels[k] for k in sorted(labels, key=int)),
                    parameters=m.get("parameters"), accuracy=m.get("accuracy"), eval_images=m.get("n"))


def shipped_metrics(name: str) -> dict | None:
    """The metrics.json that training wrote beside an embedded model's weights (None if absent),
    so a page can state how good the model it runs is without evaluating it at start-up."""
    import json

    path = local_path(name) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for marker in ("config.json", "model_index.json"):
        hit = try_to_load_from_cache(repo_id, marker)
        if isinstance(hit, str):
            return True
    return False


def available_offline(name: str) -> bool:
    spec = _spec(name)
    if spec.embedded:
        path = local_path(name)
        return path.is_dir() and any(path.rglob("*.safetensors")) or (path / "tokenizer.json").is_file()
    return _hub_cached(spec.source)


def offline_names(task: str | None = None) -> list[str]:
    return [n for n in names(task) if available_offline(n)]


def _unavailable(name: str, why: str) -> ModelUnavailableError:
    spec = REGISTRY[name]
    hint = f" Use the embedded {spec.alternative!r} instead." if spec.alternative else ""
    ready = ", ".join(offline_names(spec.task)) or "none"
    return ModelUnavailableError(f"{name} is not available: {why}.{hint} Available offline for {spec.task}: {ready}.")


def resolve(name: str) -> str:
    """The path or Hub id to pass to ``from_pretrained``; fails fast when it cannot load."""
    spec = _spec(name)
    if spec.embedded:
        if not available_offline(name):
            raise _unavailable(name, f"no weights in {local_path(name)}; retrain with "
                               f"`python -m shared.training {name}`")
        return str(local_path(name))
    if offline() and not _hub_cached(spec.source):
        raise _unavailable(name, "HF_HUB_OFFLINE=1 and it is not in the local Hugging Face cache")
    return spec.source


# --------------------------------------------------------------------------------------
#                                   Loaders
# --------------------------------------------------------------------------------------

class Loaded(NamedTuple):
    model: Any
    processor: Any


def _load_image_classifier(source: str, attn: str | None) -> Loaded:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    kwargs = {"attn_implementation": attn} if attn else {}
    model = AutoModelForImageClassification.from_pretrained(source, use_safetensors=True, **kwargs)
    return Loaded(model, AutoImageProcessor.from_pretrained(source))


def _load_image_backbone(source: str, attn: str | None) -> Loaded:
    from transformers import AutoImageProcessor, AutoModel

    kwargs = {"attn_implementation": attn} if attn else {}
    model = AutoModel.from_pretrained(source, use_safetensors=True, **kwargs)
    return Loaded(model, AutoImageProcessor.from_pretrained(source))


def _load_clip(source: str, attn: str | None) -> Loaded:
    from transformers import AutoProcessor, CLIPModel

    kwargs = {"attn_implementation": attn} if attn else {}
    model = CLIPModel.from_pretrained(source, use_safetensors=True, **kwargs)
    return Loaded(model, AutoProcessor.from_pretrained(source))


@dataclass(frozen=True)
class DiffusionParts:
    """What a class-conditional DiT needs besides the transformer: ``vae`` is None in pixel space."""

    vae: Any
    scheduler_config: dict
    class_names: tuple[str, ...]
    latent_scale: float = 0.18215  # SD-VAE latents are divided by this before decoding


def _load_class_conditional_diffusion(source: str, attn: str | None) -> Loaded:
    """A diffusers DiT: the embedded pixel-space model (folder with ``scheduler/``) or a DiT
    pipeline repository (subfolders ``transformer``, ``vae``, ``scheduler``)."""
    from diffusers import AutoencoderKL, DDPMScheduler, DiffusionPipeline, DiTTransformer2DModel

    if Path(source).is_dir() and (Path(source) / "config.json").is_file():
        from shared.data.shapes import SHAPES

        model = DiTTransformer2DModel.from_pretrained(source, use_safetensors=True)
        config = DDPMScheduler.load_config(source, subfolder="scheduler")
        return Loaded(model, DiffusionParts(None, dict(config), SHAPES))
    model = DiTTransformer2DModel.from_pretrained(source, subfolder="transformer", use_safetensors=True)
    vae = AutoencoderKL.from_pretrained(source, subfolder="vae", use_safetensors=True)
    config = DDPMScheduler.load_config(source, subfolder="scheduler")
    # DiTPipeline keeps ImageNet's names in model_index.json ("id2label"); the first synonym is enough.
    id2label = DiffusionPipeline.load_config(source).get("id2label") or {}
    names = tuple(id2label.get(str(i), f"class {i}").split(",")[0].strip()
                  for i in range(model.config.num_embeds_ada_norm))
    return Loaded(model, DiffusionParts(vae, dict(config), names))


def _load_masked_autoencoder(source: str, attn: str | None) -> Loaded:
    """A ViTMAE encoder + decoder (``ViTMAEForPreTraining``) and its image processor."""
    from transformers import AutoImageProcessor, ViTMAEForPreTraining

    kwargs = {"attn_implementation": attn} if attn else {}
    model = ViTMAEForPreTraining.from_pretrained(source, use_safetensors=True, **kwargs)
    return Loaded(model, AutoImageProcessor.from_pretrained(source))


def _load_action_tokenizer(source: str, attn: str | None) -> Loaded:
    """A tokenizer only (FAST's BPE): no weights, so ``model`` is None."""
    from transformers import AutoTokenizer

    return Loaded(None, AutoTokenizer.from_pretrained(source))


def _load_image_tokenizer(source: str, attn: str | None) -> Loaded:
    """A VQ-VAE (``shared/training/vq_tiny_shapes.py``): the model is the tokenizer; no processor."""
    from shared.training.vq_tiny_shapes import VQVAE

    return Loaded(VQVAE.from_pretrained(source), None)


def _load_video_jepa(source: str, attn: str | None) -> Loaded:
    """A V-JEPA (``shared/training/vjepa_tiny_shapes.py``): encoders and predictor in one module; no processor."""
    from shared.training.vjepa_tiny_shapes import VJEPA

    return Loaded(VJEPA.from_pretrained(source), None)


def _load_autoregressive_image_generation(source: str, attn: str | None) -> Loaded:
    """A decoder-only transformer (GPT-2 or Llama) over image tokens; its config names the tokenizer, codebook
    size and classes."""
    from transformers import AutoModelForCausalLM

    kwargs = {"attn_implementation": attn} if attn else {}
    return Loaded(AutoModelForCausalLM.from_pretrained(source, use_safetensors=True, **kwargs), None)


def _load_video_classifier(source: str, attn: str | None) -> Loaded:
    """A video transformer classifier (VideoMAE: tubelet tokens, joint space-time attention) and its
    processor. A pre-training checkpoint (MCG-NJU/videomae-base) loads with a new, untrained head."""
    from transformers import AutoImageProcessor, AutoModelForVideoClassification

    kwargs = {"attn_implementation": attn} if attn else {}
    model = AutoModelForVideoClassification.from_pretrained(source, use_safetensors=True, **kwargs)
    return Loaded(model, AutoImageProcessor.from_pretrained(source))


def _load_action_vq_tokenizer(source: str, attn: str | None) -> Loaded:
    """A residual VQ action tokenizer (``shared/training/vq_actions.py``): the model is the codebooks."""
    from shared.training.vq_actions import ActionVQ

    return Loaded(ActionVQ.from_pretrained(source), None)


def _load_image_text_to_text(source: str, attn: str | None) -> Loaded:
    """A vision-language model that answers in text (LLaVA, Idefics3/SmolVLM, ...) and its processor."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    kwargs = {"attn_implementation": attn} if attn else {}
    model = AutoModelForImageTextToText.from_pretrained(source, use_safetensors=True, **kwargs)
    return Loaded(model, AutoProcessor.from_pretrained(source))


# task -> loader(source, attn) -> Loaded. Spaces add tasks here as they need them.
LOADERS: dict[str, Callable[[str, str | None], Loaded]] = {
    "image-classification": _load_image_classifier,
    "action-tokenizer": _load_action_tokenizer,
    "action-vq-tokenizer": _load_action_vq_tokenizer,
    "image-features": _load_image_backbone,
    "zero-shot-image-classification": _load_clip,
    "class-conditional-diffusion": _load_class_conditional_diffusion,
    "masked-image-modeling": _load_masked_autoencoder,
    "image-tokenizer": _load_image_tokenizer,
    "autoregressive-image-generation": _load_autoregressive_image_generation,
    "video-jepa": _load_video_jepa,
    "video-classification": _load_video_classifier,
    "image-text-to-text": _load_image_text_to_text,
}


_CACHE: BoundedCache[Loaded] = BoundedCache(4)  # a few models per process: they are the memory that counts

# transformers resolves its names lazily, and that first import is not safe from two threads at once: two
# first clicks on two pages gave "cannot import name 'AutoImageProcessor' from 'transformers'". Loaders run
# under this lock; code that instantiates transformers classes itself on a first click takes it too.
TRANSFORMERS_IMPORT_LOCK = threading.RLock()


def load(name: str, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
         attn: str | None = None) -> Loaded:
    """Load ``name`` once (per device, dtype and attention implementation) and cache it.

    ``attn="eager"`` is needed wherever attention maps are shown: under the default SDPA
    attention ``output_attentions=True`` returns nothing.
    """
    import torch

    spec = _spec(name)
    device = torch.device(device) if device is not None else pick_device()

    def make() -> Loaded:
        source = resolve(name)
        try:
            with TRANSFORMERS_IMPORT_LOCK:
                loaded = LOADERS[spec.task](source, attn)
        except OSError as err:  # network errors and missing files surface as OSError in HF libraries
            raise _unavailable(name, f"loading failed ({str(err).splitlines()[0]})") from err
        model = loaded.model
        if hasattr(model, "to"):
            model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
            model.eval()
        return Loaded(model, loaded.processor)

    return _CACHE.get_or_create((name, str(device), str(dtype), attn), make)[0]


def kv_cache_name(model: Any) -> str:
    """The keyword of ``model.forward`` (and attribute of its output) that carries the KV cache: transformers renamed
    it from ``past_key_values`` to ``cache`` during 5.x, model by model (Idefics3 has, LLaVA and GPT-2 not yet in 5.24)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def clear_cache() -> None:
    _CACHE.clear()


def evaluate(name: str, path: str | Path | None = None, **kwargs: Any) -> dict:
    """Quality metrics of ``name`` on held-out data (the function its spec names)."""
    spec = _spec(name)
    if spec.evaluate is None:
        raise ValueError(f"{name} has no evaluation; models with one: "
                         f"{[n for n, s in REGISTRY.items() if s.evaluate]}")
    module, func = spec.evaluate.split(":")
    fn = getattr(importlib.import_module(module), func)
    return {"model": name, **fn(str(path) if path else resolve(name), **kwargs)}


# --------------------------------------------------------------------------------------
#                                   CLI
# --------------------------------------------------------------------------------------

def _print_tables(metrics: dict, stream) -> None:
    """Each nested table of ``metrics`` (by_background, by_color, by_size, ood...) as aligned text."""
    for name, table in metrics.items():
        if not isinstance(table, dict):
            continue
        print(f"{name}:", file=stream)
        for key, value in table.items():
            cells = "  ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            print(f"  {key:<22} {cells}", file=stream)


def main(argv: list[str] | None = None) -> None:
    """python -m shared.models list | eval NAME"""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m shared.models")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="each model with its source and whether it is available offline")
    ev = sub.add_parser("eval", help="one JSON line of quality metrics on held-out data (tables on stderr)")
    ev.add_argument("name")
    args = parser.parse_args(argv)

    if args.command == "list":
        width = max(len(n) for n in REGISTRY)
        print(f"{'name':<{width}}  {'task':<32} {'source':<32} offline")
        for name, spec in REGISTRY.items():
            source = f"embedded ({local_path(name).relative_to(WEIGHTS_DIR.parent.parent)})" if spec.embedded else "hub"
            print(f"{name:<{width}}  {spec.task:<32} {source:<32} {'yes' if available_offline(name) else 'no'}")
    else:
        import sys

        try:
            metrics = evaluate(args.name)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
        _print_tables(metrics, sys.stderr)  # the robustness tables, for a person; stdout stays one JSON line
        print(json.dumps(metrics))


if __name__ == "__main__":
    main()

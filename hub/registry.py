"""The learning path: every tutorial in order, and which ones are built (have a space).

A tutorial with ``slug`` set is a space in ``spaces/<slug>/``; one without is planned. The
slug is the folder name, the registry key and the prefix of the space's API names.
"""

from __future__ import annotations

from dataclasses import dataclass

PHASES: tuple[str, ...] = ("Foundation", "Vision-language", "Generative", "Production")


@dataclass(frozen=True)
class Tutorial:
    title: str
    emoji: str
    phase: str
    summary: str
    slug: str | None = None  # set when the tutorial is built as spaces/<slug>/

    @property
    def available(self) -> bool:
        return self.slug is not None

    @property
    def module(self) -> str | None:
        return f"spaces.{self.slug}.app" if self.slug else None


TUTORIALS: tuple[Tutorial, ...] = (
    # Foundation
    Tutorial("Why transformers for vision", "🔭", "Foundation", "CNN receptive fields against global attention.",
             slug="cnn_vs_vit"),
    Tutorial("ViT fundamentals", "🧱", "Foundation", "A full ViT forward pass, layer by layer, and what it costs.",
             slug="vit_anatomy"),
    Tutorial("Patch embeddings & positional encoding", "🧩", "Foundation",
             "How an image becomes tokens: patches, projection, position codes.", slug="patch_explorer"),
    Tutorial("Visual attention", "👁️", "Foundation", "Real per-head attention maps and rollout.",
             slug="attention_maps"),
    Tutorial("Training & fine-tuning ViTs", "🏋️", "Foundation", "Short real fine-tunes with live curves.",
             slug="training_lab"),
    # Vision-language
    Tutorial("CLIP zero-shot", "🔗", "Vision-language",
             "Contrastive image-text learning and zero-shot classification.", slug="clip_zero_shot"),
    Tutorial("Modern VLMs", "💬", "Vision-language", "Visual tokens and cross-modal integration.",
             slug="vlm_tokens"),
    Tutorial("VLA action tokenizer", "🦾", "Vision-language",
             "Robot actions as tokens: 256-bin against FAST (DCT + BPE).", slug="vla_tokenizer"),
    Tutorial("V-JEPA", "🎞️", "Vision-language", "Predicting video features in latent space.",
             slug="vjepa_masking"),
    # Generative
    Tutorial("Autoregressive image generation", "🧮", "Generative", "Images as sequences of VQ tokens.",
             slug="vq_tokens"),
    Tutorial("DiT denoising stepper", "🌫️", "Generative",
             "A diffusion transformer removing noise, one step at a time.", slug="dit_stepper"),
    Tutorial("Video transformers", "🎬", "Generative", "Space-time patches and factorised attention.",
             slug="video_attention"),
    # Production
    Tutorial("Quantization latency", "⚡", "Production",
             "fp32, bf16 and int8 measured on your own hardware.", slug="quant_latency"),
    Tutorial("Interpretability", "🔬", "Production",
             "Rollout, gradients, integrated gradients, sanity checks and FGSM.", slug="attribution"),
    Tutorial("Self-supervised learning", "🎭", "Production", "MAE and contrastive pre-training.",
             slug="mae_masking"),
    Tutorial("Production systems", "🏭", "Production", "Serving, batching and monitoring ViTs.",
             slug="serving_planner"),
)

SPACES: tuple[Tutorial, ...] = tuple(t for t in TUTORIALS if t.available)

# spaces/_template/: the skeleton a new tutorial is copied from; never served, tested like a space.
TEMPLATE = Tutorial("Template", "🧪", "Foundation", "The mean colour of each patch: a skeleton to copy.",
                    slug="_template")


def get(slug: str) -> Tutorial:
    for t in (*SPACES, TEMPLATE):
        if t.slug == slug:
            return t
    raise ValueError(f"unknown space {slug!r}; choose one of {[t.slug for t in SPACES]}")

"""CNN against ViT: choices, caps, input checks and the two embedded models' shipped facts.

Torch-free on purpose: the hub imports every space's ``app.py`` and builds its page at start-up. ``compute.py``
imports from here, so each limit is defined once.
"""

from __future__ import annotations

import json

from shared import validate
from shared.models import local_path, shipped_metrics

VIT = "vit-tiny-shapes"
CNN = "cnn-tiny-shapes"
MODELS: tuple[str, ...] = (VIT, CNN)

# torchvision model definitions walked for the receptive field, and the embedded tiny CNN.
TORCHVISION_ARCHITECTURES: tuple[str, ...] = ("alexnet", "vgg16", "resnet18", "resnet50")
ARCHITECTURES: tuple[str, ...] = (*TORCHVISION_ARCHITECTURES, CNN)
DEFAULT_ARCHITECTURE = "resnet50"
# The TF-slim ResNet-50 v1 figure (stride on the first 1x1 of each down-sampling block): Araujo, Norris & Sim
# (2019), Distill, "Computing Receptive Fields of Convolutional Neural Networks", table of receptive fields.
TF_SLIM_RESNET50_RF = 483

# Effective receptive field (Luo et al., 2016): gradient of the centre output unit, averaged over images.
MIN_ERF_IMAGES, MAX_ERF_IMAGES, DEFAULT_ERF_IMAGES = 1, 64, 16

# Inductive-bias table: accuracy on a subset of the test split under each transformation.
MIN_BIAS_IMAGES, MAX_BIAS_IMAGES, DEFAULT_BIAS_IMAGES = 20, 2000, 300
MIN_SHIFT, MAX_SHIFT, DEFAULT_SHIFT = 1, 24, 4  # pixels right and down
MIN_ANGLE, MAX_ANGLE, DEFAULT_ANGLE = -180, 180, 30  # degrees, counter-clockwise


def check_architecture(name) -> str:
    return validate.choice(name, "architecture", ARCHITECTURES)


def check_erf_images(n) -> int:
    return validate.integer(n, "number of images", MIN_ERF_IMAGES, MAX_ERF_IMAGES)


def check_bias_inputs(n, shift, angle) -> tuple[int, int, float]:
    return (validate.integer(n, "number of test images", MIN_BIAS_IMAGES, MAX_BIAS_IMAGES),
            validate.integer(shift, "shift (pixels)", MIN_SHIFT, MAX_SHIFT),
            validate.number(angle, "rotation angle (degrees)", MIN_ANGLE, MAX_ANGLE))


def config(name: str) -> dict:
    """A shipped model's config.json ({} when its weights are absent)."""
    path = local_path(name) / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def facts() -> dict:
    """What the page states about the two models, read from their config.json and metrics.json."""
    vit, cnn = config(VIT), config(CNN)
    out: dict = {}
    if vit:
        out[VIT] = {"image": vit["image_size"], "patch": vit["patch_size"], "grid": vit["image_size"] // vit["patch_size"],
                    "width": vit["hidden_size"], "layers": vit["num_hidden_layers"], "metrics": shipped_metrics(VIT) or {}}
    if cnn:
        out[CNN] = {"widths": cnn["hidden_sizes"], "depths": cnn["depths"], "stem": cnn["embedding_size"],
                    "metrics": shipped_metrics(CNN) or {}}
    return out

"""CNN against ViT: the figures the issue's closing note asks for, through the page's own code.

- ``final_rf``: per torchvision architecture (alexnet, vgg16, resnet18, resnet50) and the tiny CNN, the final
  receptive field from ``compute.receptive_field`` (the ``cnn_vs_vit_receptive_field`` endpoint's path), the
  layer it is measured at, resnet50's TF-slim layout (stride on the 1x1), and the empirical check: the span of
  input pixels with a nonzero gradient for the centre unit of the final layer of a random-weight model.
- ``accuracy``: both models' shipped test accuracy (metrics.json) and training steps.
- ``erf``: effective-receptive-field radii (Luo et al., 2016) over 64 test shapes.
- ``inductive_bias``: the table on 2000 test shapes, shift 4 px, rotation 30°.

Run: ``.venv/bin/python -m bench.cnn_vs_vit`` (prints JSON); ``python -m bench --only cnn_vs_vit``.
"""

from __future__ import annotations

import json

import torch

from shared.models import shipped_metrics
from spaces.cnn_vs_vit import compute, options

SIZES = {"alexnet": 320, "vgg16": 256, "resnet18": 576, "resnet50": 576}  # large enough that padding clips nothing


def gradient_span(arch: str) -> int:
    from shared.cnn_models import torchvision_models

    torch.manual_seed(0)
    model = getattr(torchvision_models(), arch)(weights=None).eval()
    x = torch.randn(1, 3, SIZES[arch], SIZES[arch], requires_grad=True)
    if arch in ("alexnet", "vgg16"):
        fmap = model.features(x)
    else:
        m = model
        fmap = m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))))
    fmap[0, :, fmap.shape[2] // 2, fmap.shape[3] // 2].sum().backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1)).sum(1)).flatten()
    return int(rows.max() - rows.min() + 1)


def run(erf_images: int = 64, bias_images: int = 2000) -> dict:
    rf = {}
    for arch in options.ARCHITECTURES:
        s = compute.receptive_field(arch)
        rf[arch] = {"final_rf": s["final_rf"], "final_layer": s["final_layer"], "layers": len(s["layers"])}
        if arch in SIZES:
            rf[arch]["gradient_span"] = gradient_span(arch)
        if "tf_slim_v1_rf" in s:
            rf[arch]["tf_slim_v1_rf"] = s["tf_slim_v1_rf"]
    accuracy = {m: {k: (shipped_metrics(m) or {}).get(k) for k in ("accuracy", "n", "parameters", "steps_trained",
                                                                     "shifted_accuracy", "independent_renderer_accuracy")}
                for m in options.MODELS}
    erf = compute.effective_rf(erf_images).stats
    bias = compute.inductive_bias(bias_images, options.DEFAULT_SHIFT, options.DEFAULT_ANGLE)
    return {"final_rf": rf, "accuracy": accuracy, "erf": erf, "inductive_bias": bias}


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))

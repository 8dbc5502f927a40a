"""Every page that classifies with vit-tiny-shapes shows the calibrated out-of-distribution verdict (issue 13):
attention maps, ViT anatomy and attribution. Each page's verdict is checked against the one computed here
from a plain ``transformers`` forward through the model's own processor."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from shared import ood
from shared.data.shapes import sample_image
from shared.models import local_path

MODEL = "vit-tiny-shapes"


@pytest.fixture(scope="module")
def reference():
    """verdict(image) from transformers' own forward: logits and [CLS] after the final norm."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(local_path(MODEL)).eval()
    processor = AutoImageProcessor.from_pretrained(local_path(MODEL))
    classes = [model.config.id2label[i] for i in range(model.config.num_labels)]

    def verdict(image: Image.Image) -> ood.OODVerdict:
        logits, feats = ood.image_features(model, processor, [image.convert("RGB")])
        stats = ood.stats_for(MODEL)
        score = float(ood.mahalanobis(feats, stats.means, stats.precision)[0])
        return ood.verdict(score, stats, classes, msp=float(logits.softmax(-1).max()))

    return verdict


def _images() -> dict[str, Image.Image]:
    out = {"red star": sample_image("star", "red", size=64)[0]}
    skimage_data = pytest.importorskip("skimage.data")
    out["Chelsea the cat"] = Image.fromarray(skimage_data.chelsea())
    return out


def _same(page: ood.OODVerdict, ref: ood.OODVerdict) -> None:
    assert page.unusual == ref.unusual
    assert page.score == pytest.approx(ref.score, rel=1e-3, abs=1e-3)
    assert page.message.split("(")[0] == ref.message.split("(")[0]


@pytest.mark.parametrize("name", ["red star", "Chelsea the cat"])
def test_attention_maps_page_shows_the_verdict(reference, name):
    from spaces.attention_maps import compute

    image = _images()[name]
    cap = compute.capture(image, MODEL)
    assert cap.ood is not None
    _same(cap.ood, reference(image))


@pytest.mark.parametrize("name", ["red star", "Chelsea the cat"])
def test_vit_anatomy_page_shows_the_verdict(reference, name):
    from spaces.vit_anatomy import compute

    image = _images()[name]
    st = compute.step_through(image)
    assert st.ood is not None
    _same(st.ood, reference(image))


@pytest.mark.parametrize("name", ["red star", "Chelsea the cat"])
def test_attribution_page_shows_the_verdict(reference, name):
    from spaces.attribution import compute

    image = _images()[name]
    v = compute.view(image, MODEL)
    with torch.no_grad():
        logits = compute.logits_of(v.model, v, v.x).logits[0]
    message = compute.ood_message(v, logits)
    ref = reference(image)
    assert message.split("(")[0] == ref.message.split("(")[0]


def test_a_clean_shape_passes_and_the_cat_is_flagged(reference):
    """The shipped weights and calibration: a plain red star is not flagged; Chelsea is (issue 13)."""
    images = _images()
    assert not reference(images["red star"]).unusual
    cat = reference(images["Chelsea the cat"])
    assert cat.unusual and "knows 5 shapes" in cat.message and "unlike" in cat.message

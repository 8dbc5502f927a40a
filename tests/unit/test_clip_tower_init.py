"""clip-tiny-shapes' image tower starts from a supervised ViT: the copied tower computes the ViT's
[CLS] feature exactly, apart from CLIP's one extra layer norm of the embeddings."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPConfig, CLIPModel, ViTConfig, ViTForImageClassification

from shared.training.clip_tiny_shapes import init_image_tower


def _pair(tmp_path, layers: int = 2, image_size: int = 32):
    torch.manual_seed(0)
    vit = ViTForImageClassification(ViTConfig(
        image_size=image_size, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
        num_attention_heads=2, num_labels=5, initializer_range=0.1)).eval()
    with torch.no_grad():  # a non-zero patch bias, so folding it into the positions is tested
        vit.vit.embeddings.patch_embeddings.projection.bias.normal_(0, 0.5)
    vit.save_pretrained(tmp_path)
    clip = CLIPModel(CLIPConfig(
        text_config=dict(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
        vision_config=dict(image_size=image_size, patch_size=8, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=layers, num_attention_heads=2, hidden_act="gelu", layer_norm_eps=1e-12),
        projection_dim=16)).eval()
    return vit, clip


def test_copied_tower_reproduces_the_vit_cls_feature(tmp_path):
    vit, clip = _pair(tmp_path)
    init_image_tower(clip, str(tmp_path))
    clip.vision_model.pre_layrnorm = torch.nn.Identity()  # the one layer ViT does not have
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        theirs = vit.vit(pixel_values=x).last_hidden_state[:, 0]  # (3, 32): [CLS] after the final layer norm
        mine = clip.vision_model(pixel_values=x).pooler_output  # (3, 32)
    torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


def test_mismatched_shapes_are_refused(tmp_path):
    vit, _ = _pair(tmp_path)
    _, clip = _pair(tmp_path / "other", layers=3)
    with pytest.raises(ValueError, match="does not match"):
        init_image_tower(clip, str(tmp_path))

"""clip-tiny-shapes: a ~1.5M-parameter CLIP trained contrastively on shapes and their captions.

CLIP (Radford et al., 2021) trains an image tower and a text tower so that matching
(image, caption) pairs have the highest cosine similarity in a batch: a symmetric
cross-entropy over the (B, B) similarity matrix scaled by a learned logit scale.

Three changes from the paper, all because our data come from a tiny grammar:

- **Shape-counterfactual groups.** Colour, size and position already tell most captions in a
  batch apart, so a plain contrastive run learns those and barely learns shape (the hardest
  visual attribute). Each training scene is therefore rendered once per shape, with the same
  colour, size, position, angle and background, and a batch holds whole groups: within a
  group the captions differ only by the shape word, so these are the hardest negatives
  possible for shape (in the spirit of hard-negative CLIP training, e.g. NegCLIP, Yuksekgonul
  et al., 2023).
- **Varied captions.** Each image is described by its full caption ("a small red star in
  the top left") half of the time, and otherwise by a random partial description behind a
  random prompt prefix ("a photo of a red star", "an image of a circle"), so the text tower
  learns the words that zero-shot prompts use.
- **Multi-positive InfoNCE.** A partial text such as "a photo of a star" truly describes every
  star in the batch. The loss therefore counts as positives all pairs whose text is true of
  the image (log of the summed softmax mass on the positives). With one positive per row
  (all full captions unique) it is exactly CLIP's loss.

The tokenizer is a byte-level BPE trained here with the ``tokenizers`` library on the
caption grammar, with CLIP's layout (256 bytes, 256 bytes + ``</w>``, merges, then
``<|startoftext|>`` and ``<|endoftext|>``), so any text tokenizes without unknown tokens
and the folder loads with ``AutoTokenizer`` / ``AutoProcessor`` as a real ``CLIPTokenizer``.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shared.data.outliers import KINDS as OUTLIER_KINDS
from shared.data.outliers import arrays as outlier_arrays
from shared.data.shapes import COLORS, POSITIONS, SHAPES, SIZES, ShapesDataset, ShapeSpec, is_easy, render, spec_at
from shared.images import to_tensor
from shared.ood import OOD_PROMPT, TARGET_FALSE_ALARM
from shared.training.loop import (
    check_outlier_batch,
    cosine_lr,
    curriculum_batches,
    gather_with_grad,
    make_accelerator,
    progress,
    save_rank_weights,
    seed_everything,
    uniform_cross_entropy,
    write_model_card,
)


@dataclass
class Config:
    # 64 px, patch 8 (8x8 = 64 patch tokens + [CLS]): the wide distribution's smallest shapes
    # (radius 0.10) are 6 px across at 32 px, too few to tell a star from a circle.
    image_size: int = 64
    patch_size: int = 8
    vision_width: int = 96
    vision_layers: int = 4
    text_width: int = 96
    text_layers: int = 3
    heads: int = 4
    mlp_ratio: int = 4
    projection_dim: int = 64
    context_length: int = 32  # text positions; longer prompts are truncated (OpenAI CLIP: 77)
    train_scenes: int = 8_000  # each rendered once per shape: 40,000 training images
    batch_size: int = 120  # 24 scenes x 5 shapes; splits evenly over 2, 3, 4, 5, 6 or 8 processes
    steps: int = 5_000
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 200
    # Curriculum over scenes (shared.data.shapes.is_easy): easy scenes only for easy_steps, then a
    # linear ramp to the whole distribution at ramp_end (as for vit-tiny-shapes, whose loss sat
    # at chance for 1200 steps on the whole wide distribution).
    easy_steps: int = 500
    ramp_end: int = 2_000
    grad_accum: int = 1  # micro-batches per step; with k > 1 each micro-batch's negatives are only its own
    # Start the image tower from this supervised shapes ViT (same width, depth and patch grid); "" trains it
    # from scratch. See init_image_tower.
    image_tower_init: str = "vit-tiny-shapes"
    image_tower_lr_scale: float = 0.3  # the copied tower learns slower, so the random text tower cannot wreck it early
    full_caption_fraction: float = 0.5  # the rest get a random partial description
    max_logit_scale: float = 100.0  # CLIP clips the learned scale at 100 (temperature 0.01)
    # Outlier Exposure (Hendrycks et al., 2019), as for vit-tiny-shapes: each step also embeds outlier_batch non-shape
    # images (shared/data/outliers.py) and pushes their zero-shot softmax over the shape prompts (OOD_PROMPT) towards
    # uniform, with the paper's weight 0.5. The page then flags a low top zero-shot probability (shared/ood.py); the
    # Mahalanobis distance this model flagged on before caught 32% of test photos and not Chelsea the cat. 0 turns it off.
    outlier_weight: float = 0.5
    outlier_batch: int = 40  # splits evenly over 2, 4, 5 or 8 processes
    outlier_images: int = 20_000
    eval_images: int = 1_000


# --------------------------------------------------------------------------------------
#                                   Captions
# --------------------------------------------------------------------------------------

PREFIXES: tuple[str, ...] = ("", "a photo of ", "an image of ", "a picture of ", "a rendering of ",
                             "a drawing of ", "a photo of the ", "a close-up photo of ")
SHAPE_WORDS: tuple[str, ...] = ("shape", "object", "thing")  # extra words prompt writers use


def describe(shape: str, color: str, size: str, position: str, rng: np.random.Generator) -> tuple[str, tuple]:
    """A random partial description of one image and its key (attributes it names, else None)."""
    use_color, use_size, use_position = (rng.random(3) < (0.6, 0.3, 0.3))
    key = (shape, color if use_color else None, size if use_size else None, position if use_position else None)
    words = [w for w in (key[2], key[1], shape) if w]
    phrase = " ".join(words)
    article = "an" if phrase[0] in "aeiou" and rng.random() < 0.5 else "a"
    text = f"{PREFIXES[rng.integers(len(PREFIXES))]}{article} {phrase}"
    if rng.random() < 0.15:  # some prompts have no article at all ("red star")
        text = phrase
    if use_position:
        text += f" in the {position}"
    return text, key


def counterfactual_specs(n_scenes: int, split: str = "train") -> list[ShapeSpec]:
    """Scene ``g`` of ``split`` rendered as every shape: spec ``g * len(SHAPES) + k`` has shape ``SHAPES[k]``."""
    return [replace(spec_at(split, g), shape=shape) for g in range(n_scenes) for shape in SHAPES]


def positives(image_attrs: list[tuple], text_keys: list[tuple]) -> torch.Tensor:
    """(B, B) bool: text j is true of image i (every attribute it names matches)."""
    attrs = np.array(image_attrs, dtype=object)  # (B, 4)
    keys = np.array(text_keys, dtype=object)  # (B, 4)
    named = keys != None  # noqa: E711  (elementwise)  # (B, 4)
    agree = attrs[:, None, :] == keys[None, :, :]  # (B, B, 4)
    return torch.from_numpy(np.all(agree | ~named[None], axis=-1))  # (B, B)


def multi_positive_infonce(logits: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with several positives per row: -log(softmax mass on the positives).

    logits: (B, B) image x text, scaled; pos: (B, B) bool with a true diagonal.
    """
    masked = logits.masked_fill(~pos, float("-inf"))  # (B, B)
    i2t = torch.logsumexp(logits, dim=1) - torch.logsumexp(masked, dim=1)  # (B,)
    t2i = torch.logsumexp(logits, dim=0) - torch.logsumexp(masked, dim=0)  # (B,)
    return (i2t.mean() + t2i.mean()) / 2


# --------------------------------------------------------------------------------------
#                                   Tokenizer
# --------------------------------------------------------------------------------------

def corpus() -> list[str]:
    """Every full caption of the grammar plus the prompt words, for training the BPE."""
    texts = [f"a {size} {color} {shape} in the {pos}"
             for shape, color, size, pos in itertools.product(SHAPES, COLORS, SIZES, POSITIONS)]
    texts += [f"{p}a {w}" for p in PREFIXES for w in (*SHAPES, *SHAPE_WORDS)]
    texts += ["an orange star", "an image of an object", "a photo of a {}"]
    return texts


def build_tokenizer():
    """A byte-level BPE on the caption grammar, as a real ``CLIPTokenizer``.

    The vocabulary and merges are passed as data (``vocab=``, ``merges=``): in transformers 5
    file-path arguments are ignored and every word would become end-of-text.
    """
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import CLIPTokenizer

    bpe = Tokenizer(BPE(unk_token="<|endoftext|>", continuing_subword_prefix="", end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Sequence(  # the same normalisation and split as CLIPTokenizer
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    trainer = BpeTrainer(vocab_size=1000, min_frequency=1, end_of_word_suffix="</w>",
                         continuing_subword_prefix="", show_progress=False)
    bpe.train_from_iterator(corpus(), trainer)
    merges = [tuple(pair) for pair in json.loads(bpe.to_str())["model"]["merges"]]

    from shared.actions import bytes_to_unicode  # GPT-2's byte table, the one CLIP's BPE uses too

    table = bytes_to_unicode()
    base = [table[b] for b in range(256)]  # in byte order: the first 256 vocabulary ids
    tokens = base + [c + "</w>" for c in base] + [a + b for a, b in merges] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=Config.context_length)


# --------------------------------------------------------------------------------------
#                                   Image tower from a supervised ViT
# --------------------------------------------------------------------------------------

def init_image_tower(model, vit_folder: str) -> None:
    """Copy a transformers ``ViTForImageClassification``'s encoder into ``model.vision_model``.

    LiT (Zhai et al., 2022, "LiT: Zero-Shot Transfer with Locked-image text Tuning") showed that a
    contrastive model learns far faster from a pre-trained image tower; here the tower stays trainable,
    because the supervised ViT was taught to ignore colour and position, which captions name. The two
    architectures match block for block except: ViT's patch projection has a bias (folded into the patch
    positions, as it adds the same vector to every patch token); CLIP's GELU and layer-norm epsilon are
    set to the ViT's by the caller; and CLIP normalises the embeddings once more before the encoder
    (``pre_layrnorm``, kept at its init, weight 1 and bias 0), the one change to what the copy computes.
    """
    from transformers import ViTForImageClassification

    vit = ViTForImageClassification.from_pretrained(vit_folder, use_safetensors=True)
    src = vit.state_dict()
    vm = model.vision_model
    if (vit.config.hidden_size, vit.config.patch_size, vit.config.image_size, vit.config.num_hidden_layers) != (
            vm.config.hidden_size, vm.config.patch_size, vm.config.image_size, vm.config.num_hidden_layers):
        raise ValueError(f"{vit_folder} does not match the image tower's width, patch, image size and depth")
    with torch.no_grad():
        emb = vm.embeddings
        emb.class_embedding.copy_(src["vit.embeddings.cls_token"].flatten())  # (D,)
        emb.patch_embedding.weight.copy_(src["vit.embeddings.patch_embeddings.projection.weight"])  # (D, 3, P, P)
        pos = src["vit.embeddings.position_embeddings"][0].clone()  # (1 + N, D)
        pos[1:] += src["vit.embeddings.patch_embeddings.projection.bias"]  # the patch bias, folded in
        emb.position_embedding.weight.copy_(pos)
        for i, layer in enumerate(vm.encoder.layers):
            pre = f"vit.layers.{i}."
            pairs = {"self_attn.q_proj": "attention.q_proj", "self_attn.k_proj": "attention.k_proj",
                     "self_attn.v_proj": "attention.v_proj", "self_attn.out_proj": "attention.o_proj",
                     "layer_norm1": "layernorm_before", "layer_norm2": "layernorm_after",
                     "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
            for mine, theirs in pairs.items():
                module = layer.get_submodule(mine)
                module.weight.copy_(src[pre + theirs + ".weight"])
                module.bias.copy_(src[pre + theirs + ".bias"])
        vm.post_layernorm.weight.copy_(src["vit.layernorm.weight"])
        vm.post_layernorm.bias.copy_(src["vit.layernorm.bias"])


# --------------------------------------------------------------------------------------
#                                   Training
# --------------------------------------------------------------------------------------

@torch.no_grad()
def _zero_shot_accuracy(model, tokenizer, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    text = tokenizer([OOD_PROMPT.format(s) for s in SHAPES], padding=True, return_tensors="pt")
    t = F.normalize(model.get_text_features(**text).pooler_output, dim=-1)  # (5, P)
    v = F.normalize(model.get_image_features(pixel_values=x).pooler_output, dim=-1)  # (N, P)
    return ((v @ t.T).argmax(-1) == y).float().mean().item()


def _gathered_order(batch_size: int, ranks: int, grad_accum: int) -> list[torch.Tensor]:
    """Global-batch positions in the order ``gather_with_grad`` returns them, per micro-batch:
    rank r holds positions r, r + ranks, ... (``rank_slice``), split into ``grad_accum`` chunks."""
    shares = [torch.arange(batch_size)[r::ranks].chunk(grad_accum) for r in range(ranks)]
    return [torch.cat([shares[r][j] for r in range(ranks)]) for j in range(grad_accum)]


def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
          grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    from transformers import CLIPConfig, CLIPModel

    cfg = cfg or Config()
    if steps is not None:
        cfg.steps = steps
    if grad_accum is not None:
        cfg.grad_accum = grad_accum
    acc = make_accelerator(cfg.grad_accum, cfg.batch_size)
    if cfg.outlier_weight > 0:
        check_outlier_batch(acc, cfg.outlier_batch, cfg.grad_accum)
    start = time.perf_counter()
    gen = seed_everything(seed)
    rng = np.random.default_rng(seed)
    out = Path(out_dir)

    tokenizer = build_tokenizer()
    scenes_per_batch = cfg.batch_size // len(SHAPES)
    n_scenes = min(cfg.train_scenes, cfg.steps * scenes_per_batch)  # a short run renders only what it can see
    specs = counterfactual_specs(n_scenes)  # scene g, shape k at index g * 5 + k
    images = np.stack([np.asarray(render(s, cfg.image_size)) for s in specs])  # (5G, 64, 64, 3) uint8
    easy_scenes = torch.tensor([is_easy(specs[g * len(SHAPES)]) for g in range(n_scenes)])  # (G,) bool
    captions = [s.caption for s in specs]
    attrs = [(s.shape, s.color, s.size, s.position) for s in specs]
    shape_offsets = torch.arange(len(SHAPES))  # (5,)
    val_images, val_labels, _ = ShapesDataset("val", cfg.eval_images, cfg.image_size).arrays()
    x_val, y_val = to_tensor(val_images), torch.from_numpy(val_labels)
    n_outliers = min(cfg.outlier_images, cfg.steps * cfg.outlier_batch) if cfg.outlier_weight > 0 else 0
    outliers = outlier_arrays(n_outliers, cfg.image_size) if n_outliers else None  # (O, 64, 64, 3) uint8
    shape_prompts = [OOD_PROMPT.format(s) for s in SHAPES]  # the prompts the flag scores with

    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=cfg.text_width, intermediate_size=cfg.mlp_ratio * cfg.text_width,
            num_hidden_layers=cfg.text_layers, num_attention_heads=cfg.heads,
            max_position_embeddings=cfg.context_length, projection_dim=cfg.projection_dim,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            image_size=cfg.image_size, patch_size=cfg.patch_size, hidden_size=cfg.vision_width,
            intermediate_size=cfg.mlp_ratio * cfg.vision_width, num_hidden_layers=cfg.vision_layers,
            num_attention_heads=cfg.heads, projection_dim=cfg.projection_dim,
            **({"hidden_act": "gelu", "layer_norm_eps": 1e-12} if cfg.image_tower_init else {}),  # the ViT's
        ),
        projection_dim=cfg.projection_dim,
        logit_scale_init_value=math.log(1 / 0.07),  # CLIP's initial temperature 0.07
    )
    model = CLIPModel(config)
    if cfg.image_tower_init:
        from shared.models import resolve

        init_image_tower(model, resolve(cfg.image_tower_init))
    groups = []  # weight decay on matrices only; the copied image tower at a lower learning rate
    for tower in (True, False):
        for decayed in (True, False):
            params = [p for n, p in model.named_parameters()
                      if n.startswith("vision_model.") == tower and (p.ndim >= 2 and "embedding" not in n) == decayed]
            scale = cfg.image_tower_lr_scale if tower and cfg.image_tower_init else 1.0
            groups.append({"params": params, "weight_decay": cfg.weight_decay if decayed else 0.0, "lr_scale": scale})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))
    model, opt = acc.prepare(model, opt)
    plain = acc.unwrap_model(model)  # the same parameters; DDP's wrapper only syncs gradients
    orders = _gathered_order(cfg.batch_size, acc.num_processes, cfg.grad_accum)

    bar = progress(cfg.steps, "clip-tiny-shapes", disable=not acc.is_main_process)
    batches = curriculum_batches(easy_scenes, scenes_per_batch, cfg.steps, cfg.easy_steps, cfg.ramp_end, gen)
    for step, scenes in enumerate(batches):
        idx = (scenes[:, None] * len(SHAPES) + shape_offsets).flatten()  # (B,) whole groups, same on every rank
        model.train()
        for group in opt.param_groups:
            group["lr"] = group["lr_scale"] * cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        texts, keys = [], []
        for i in idx.tolist():
            if rng.random() < cfg.full_caption_fraction:
                texts.append(captions[i])
                keys.append(attrs[i])
            else:
                text, key = describe(*attrs[i], rng)
                texts.append(text)
                keys.append(key)
        if outliers is not None:  # the same draw on every rank; rank r of micro-batch j keeps picks[j, r]
            picks = torch.randint(0, len(outliers), (cfg.outlier_batch,), generator=gen)
            picks = picks.view(cfg.grad_accum, acc.num_processes, -1)  # (accum, ranks, o)
        for j, order in enumerate(orders):  # one micro-batch each
            mine = order.view(acc.num_processes, -1)[acc.process_index]  # this rank's positions in the global batch
            b = len(mine)
            mine_texts = [texts[k] for k in mine] + (shape_prompts if outliers is not None else [])
            tokens = tokenizer(mine_texts, padding=True, truncation=True, return_tensors="pt").to(acc.device)
            pixels = to_tensor(images[idx[mine].numpy()])  # (b, 3, 64, 64)
            if outliers is not None:
                pixels = torch.cat([pixels, to_tensor(outliers[picks[j, acc.process_index].numpy()])])  # (b + o, ...)
            with acc.accumulate(model), acc.autocast():
                # One forward through DDP, both towers: images (b + o) and texts (b + 5) need not pair up.
                out_ = model(pixel_values=pixels.to(acc.device), **tokens)
                v = gather_with_grad(acc, F.normalize(out_.image_embeds[:b], dim=-1))  # (b x ranks, P)
                t = gather_with_grad(acc, F.normalize(out_.text_embeds[:b], dim=-1))  # (b x ranks, P)
                logits = plain.logit_scale.exp() * v @ t.T  # (b x ranks, b x ranks)
                pos = positives([attrs[int(idx[k])] for k in order], [keys[k] for k in order]).to(acc.device)
                loss = multi_positive_infonce(logits, pos)
                if outliers is not None:  # Outlier Exposure: the outliers' zero-shot softmax towards uniform
                    v_out = F.normalize(out_.image_embeds[b:], dim=-1)  # (o, P)
                    # The prompts and the scale are detached: OE moves the outliers' image embeddings only. With the
                    # prompts trainable, a first run won by collapsing the five "a photo of a {shape}" embeddings onto
                    # one another (cosine 0.997; 0.59 for other templates), which flattened every image's softmax.
                    t_shape = F.normalize(out_.text_embeds[b:], dim=-1).detach()  # (5, P)
                    z = plain.logit_scale.exp().detach() * v_out @ t_shape.T  # (o, 5)
                    loss = loss + cfg.outlier_weight * uniform_cross_entropy(z)
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            plain.logit_scale.clamp_(0, math.log(cfg.max_logit_scale))
        bar.update(1)
        if step % 50 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{plain.logit_scale.exp().item():.1f}")
        if ((step + 1) % 500 == 0 or step == cfg.steps - 1) and acc.is_main_process:
            val = _zero_shot_accuracy(plain, tokenizer, x_val.to(acc.device), y_val.to(acc.device))
            bar.write(f"step {step + 1}: loss {loss.item():.4f}, val zero-shot shape accuracy {val:.4f}")
    bar.close()
    if rank_weights:
        save_rank_weights(acc, model, out)
    acc.wait_for_everyone()
    metrics = _report(plain.cpu(), tokenizer, cfg, out, x_val, y_val, n_scenes, start) if acc.is_main_process else {}
    acc.wait_for_everyone()
    acc.end_training()
    return metrics


def _report(model, tokenizer, cfg: Config, out: Path, x_val: torch.Tensor, y_val: torch.Tensor, n_scenes: int,
            start: float) -> dict:
    """Save the weights and processor, evaluate on the test and shifted splits, write the model card."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    model.eval()
    model.save_pretrained(out)
    image_processor = CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": cfg.image_size}, do_center_crop=True,
        crop_size={"height": cfg.image_size, "width": cfg.image_size},
        do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)

    from shared.models import evaluate  # the same evaluation as `python -m shared.models eval`
    from shared.ood import calibrate

    calibrate(out)  # ood.safetensors: how the zero-shot page flags images unlike the shapes
    metrics = evaluate("clip-tiny-shapes", path=out)
    metrics.pop("model", None)
    metrics["val_zero_shot_shape_accuracy"] = round(_zero_shot_accuracy(model, tokenizer, x_val, y_val), 4)
    metrics["train_scenes"] = n_scenes
    metrics["data_distribution"] = "wide"  # what shared.evaluation judges it on
    metrics["logit_scale"] = round(model.logit_scale.exp().item(), 2)
    metrics["parameters"] = sum(p.numel() for p in model.parameters())
    metrics["vocab_size"] = len(tokenizer)
    metrics["train_wall_seconds"] = round(time.perf_counter() - start, 1)  # rendering + training + evaluation
    metrics["torch_threads"] = torch.get_num_threads()
    write_card(out, cfg, metrics, len(tokenizer))
    return metrics


def write_card(out: Path, cfg: Config, metrics: dict, vocab_size: int) -> None:
    """README.md (the model card) and metrics.json for weights trained with ``cfg``."""
    distance = "the Mahalanobis distance of the normalised image embedding to the nearest shape's mean (Lee et al., 2018)"
    if cfg.outlier_weight > 0:
        exposure = (f"each step also embeds {cfg.outlier_batch} of {cfg.outlier_images} non-shape images "
                    f"(`shared/data/outliers.py`, kinds in turn: {', '.join(OUTLIER_KINDS)}; the photos are crops of images "
                    f"bundled with matplotlib and gradio, none of them an evaluation image) and adds, with weight "
                    f"{cfg.outlier_weight:g}, the cross-entropy of their zero-shot softmax over the prompts '{OOD_PROMPT}' "
                    "(one per shape) to the uniform distribution; that term moves image embeddings only (prompts and logit "
                    "scale detached)")
        flag = (f"the top zero-shot probability over the prompts '{OOD_PROMPT}' (maximum softmax probability, Hendrycks & "
                f"Gimpel, 2017), its threshold set to flag {TARGET_FALSE_ALARM:.0%} of 2000 validation shapes; " + distance +
                " is calibrated to the same rate and reported, not flagged on")
    else:
        exposure = "none"
        flag = distance + f", its threshold set to flag {TARGET_FALSE_ALARM:.0%} of 2000 validation shapes"
    write_model_card(
        out, "clip-tiny-shapes",
        f"""A `transformers` `CLIPModel` trained contrastively (Radford et al., 2021; text tower from scratch, image tower
from {f"`{cfg.image_tower_init}`" if cfg.image_tower_init else "scratch"}) on
the procedural shapes dataset (`shared/data/shapes.py`, the "wide" distribution: backgrounds of any colour,
plain, gradient, noise, stripes or checker; outlines, blur and JPEG on some images) and its captions ("a small
red star in the top left"): {len(SHAPES)} shapes, {len(COLORS)} colours ({", ".join(COLORS)}), {len(SIZES)} sizes,
{len(POSITIONS)} positions, {cfg.image_size}x{cfg.image_size} pixels.

- Image tower: ViT, image {cfg.image_size}, patch {cfg.patch_size} ({(cfg.image_size // cfg.patch_size) ** 2} patches + [CLS]),
  width {cfg.vision_width}, {cfg.vision_layers} layers, {cfg.heads} heads. Text tower: width {cfg.text_width},
  {cfg.text_layers} layers, context {cfg.context_length} tokens. Joint embedding {cfg.projection_dim}-d.
- Tokenizer: byte-level BPE ({vocab_size} tokens) trained with the `tokenizers` library on the caption
  grammar and common prompt words, in CLIP's layout; loads as `CLIPTokenizer` (`AutoTokenizer`, `AutoProcessor`).
- Data: {metrics["train_scenes"]} training scenes (split seed 0), each rendered as all {len(SHAPES)} shapes with the same colour,
  size, position, angle and background ({metrics["train_scenes"] * len(SHAPES)} images); a batch holds whole scene groups, so
  captions within a group differ only by the shape word (hard negatives for shape). Validation split seed 1;
  metrics on the test split (seed 2), whose images are ordinary independent samples. Each image is paired with its full caption {cfg.full_caption_fraction:.0%} of the time, else with a random partial
  description behind a prompt prefix ("a photo of a red star"). No flips (they would swap left and right).
- Loss: symmetric InfoNCE over the (B, B) similarity matrix with a learned logit scale (initial 1/0.07,
  clipped at {cfg.max_logit_scale:g} as in the paper); a text true of several images in the batch counts them all as
  positives (multi-positive InfoNCE; with unique captions it is CLIP's loss).
- Recipe: {cfg.steps} steps of batch {cfg.batch_size}, AdamW lr {cfg.lr} (betas 0.9/0.98, warm-up {cfg.warmup}, cosine),
  weight decay {cfg.weight_decay} on matrices. Curriculum: easy scenes only (plain or gradient background, filled,
  radius at least 0.18, no degradation) for {cfg.easy_steps} steps, then a linear ramp to every scene at step {cfg.ramp_end}.
- Image tower start: {f"initialised from `{cfg.image_tower_init}` (the supervised shapes ViT; `init_image_tower`), then trained with everything else at {cfg.image_tower_lr_scale}x the learning rate (LiT, Zhai et al., 2022, locks such a tower; here it must also learn colour and position, which the classifier was taught to ignore)" if cfg.image_tower_init else "trained from scratch"}.
- Training runs through `accelerate`; with N processes each embeds its share of the batch and the loss sees every
  rank's embeddings (gathered with their gradients), so N processes train the same model as one.
- `shifted_*`: the same metrics on the `shifted` split, whose (colour, background) pairs training never saw.
- Outlier Exposure (Hendrycks et al., 2019): {exposure}.
- Out-of-distribution flag (`ood.safetensors`, used by the zero-shot and VLM pages): {flag};
  `ood` gives the false-alarm rate on the test split and the detection rate on noise and photos.
- Metrics: `zero_shot_shape_accuracy` uses prompts "a photo of a {{shape}}"; `zero_shot_color_shape_accuracy` uses
  all {len(SHAPES) * len(COLORS)} prompts "a photo of a {{color}} {{shape}}" (both must be right); `retrieval_r1` is
  image-to-caption top-1 within batches of 100 test images (a hit when the retrieved caption equals the true one).
- Config: `{asdict(cfg)}`
""",
        metrics,
        "python -m shared.training clip-tiny-shapes",
    )

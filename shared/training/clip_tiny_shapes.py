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

from shared.data.shapes import COLORS, DEFAULT_SIZE, POSITIONS, SHAPES, SIZES, ShapesDataset, ShapeSpec, render, spec_at
from shared.training.loop import cosine_lr, progress, random_batches, seed_everything, to_tensor, write_model_card


@dataclass
class Config:
    image_size: int = DEFAULT_SIZE
    # Patch 8 (4x4 = 16 patch tokens + [CLS]): a ViT learns shape only after thousands of steps
    # (colour and position come in a few hundred), and 16 tokens make each step ~4x cheaper than
    # patch 4 at about the same progress per step. Supervised shape accuracy of this tower on
    # its own: 0.42 at step 1000, 0.64 at 2000, 0.85 at 3000 (batch 64); patch 4 plus plain batches
    # reached only 0.47 zero-shot after 800 CLIP steps.
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
    batch_size: int = 125  # 25 scenes x 5 shapes
    steps: int = 9_000
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 200
    full_caption_fraction: float = 0.5  # the rest get a random partial description
    max_logit_scale: float = 100.0  # CLIP clips the learned scale at 100 (temperature 0.01)
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

def _bytes_to_unicode() -> list[str]:
    """GPT-2 / CLIP byte-to-character table, in byte order (printable bytes map to themselves)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, extra = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    table = dict(zip(bs, cs, strict=True))
    return [chr(table[b]) for b in range(256)]


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

    base = _bytes_to_unicode()
    tokens = base + [c + "</w>" for c in base] + [a + b for a, b in merges] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=Config.context_length)


# --------------------------------------------------------------------------------------
#                                   Training
# --------------------------------------------------------------------------------------

@torch.no_grad()
def _zero_shot_accuracy(model, tokenizer, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    text = tokenizer([f"a photo of a {s}" for s in SHAPES], padding=True, return_tensors="pt")
    t = F.normalize(model.get_text_features(**text).pooler_output, dim=-1)  # (5, P)
    v = F.normalize(model.get_image_features(pixel_values=x).pooler_output, dim=-1)  # (N, P)
    return ((v @ t.T).argmax(-1) == y).float().mean().item()


def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None) -> dict:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    cfg = cfg or Config()
    if steps is not None:
        cfg.steps = steps
    start = time.perf_counter()
    gen = seed_everything(seed)
    rng = np.random.default_rng(seed)
    out = Path(out_dir)

    tokenizer = build_tokenizer()
    specs = counterfactual_specs(cfg.train_scenes)  # scene g, shape k at index g * 5 + k
    images = np.stack([np.asarray(render(s, cfg.image_size)) for s in specs])  # (5G, 32, 32, 3)
    captions = [s.caption for s in specs]
    attrs = [(s.shape, s.color, s.size, s.position) for s in specs]
    x_train = to_tensor(images)  # (5G, 3, 32, 32)
    shape_offsets = torch.arange(len(SHAPES))  # (5,)
    val_images, val_labels, _ = ShapesDataset("val", cfg.eval_images, cfg.image_size).arrays()
    x_val, y_val = to_tensor(val_images), torch.from_numpy(val_labels)

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
        ),
        projection_dim=cfg.projection_dim,
        logit_scale_init_value=math.log(1 / 0.07),  # CLIP's initial temperature 0.07
    )
    model = CLIPModel(config)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))

    bar = progress(cfg.steps, "clip-tiny-shapes")
    scenes_per_batch = cfg.batch_size // len(SHAPES)
    for step, scenes in enumerate(random_batches(cfg.train_scenes, scenes_per_batch, cfg.steps, gen)):
        idx = (scenes[:, None] * len(SHAPES) + shape_offsets).flatten()  # (B,) whole groups
        model.train()
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        texts, keys = [], []
        for i in idx.tolist():
            if rng.random() < cfg.full_caption_fraction:
                texts.append(captions[i])
                keys.append(attrs[i])
            else:
                text, key = describe(*attrs[i], rng)
                texts.append(text)
                keys.append(key)
        batch_attrs = [attrs[i] for i in idx.tolist()]
        tokens = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        v = model.get_image_features(pixel_values=x_train[idx]).pooler_output  # (B, P)
        t = model.get_text_features(**tokens).pooler_output  # (B, P)
        v, t = F.normalize(v, dim=-1), F.normalize(t, dim=-1)
        logits = model.logit_scale.exp() * v @ t.T  # (B, B)
        loss = multi_positive_infonce(logits, positives(batch_attrs, keys))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(cfg.max_logit_scale))
        bar.update(1)
        if step % 50 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{model.logit_scale.exp().item():.1f}")
        if (step + 1) % 500 == 0 or step == cfg.steps - 1:
            acc = _zero_shot_accuracy(model, tokenizer, x_val, y_val)
            bar.write(f"step {step + 1}: loss {loss.item():.4f}, val zero-shot shape accuracy {acc:.4f}")
    bar.close()

    model.eval()
    model.save_pretrained(out)
    image_processor = CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": cfg.image_size}, do_center_crop=True,
        crop_size={"height": cfg.image_size, "width": cfg.image_size},
        do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)

    from shared.models import evaluate  # the same evaluation as `python -m shared.models eval`

    metrics = evaluate("clip-tiny-shapes", path=out)
    metrics.pop("model", None)
    metrics["val_zero_shot_shape_accuracy"] = round(_zero_shot_accuracy(model, tokenizer, x_val, y_val), 4)
    metrics["logit_scale"] = round(model.logit_scale.exp().item(), 2)
    metrics["parameters"] = sum(p.numel() for p in model.parameters())
    metrics["vocab_size"] = len(tokenizer)
    metrics["train_wall_seconds"] = round(time.perf_counter() - start, 1)  # rendering + training + evaluation
    metrics["torch_threads"] = torch.get_num_threads()
    write_model_card(
        out, "clip-tiny-shapes",
        f"""A `transformers` `CLIPModel` trained from scratch, contrastively (Radford et al., 2021), on
the procedural shapes dataset (`shared/data/shapes.py`) and its captions ("a small red star in the
top left"): {len(SHAPES)} shapes, {len(COLORS)} colours, {len(SIZES)} sizes, {len(POSITIONS)} positions,
{cfg.image_size}x{cfg.image_size} pixels.

- Image tower: ViT, image {cfg.image_size}, patch {cfg.patch_size} ({(cfg.image_size // cfg.patch_size) ** 2} patches + [CLS]),
  width {cfg.vision_width}, {cfg.vision_layers} layers, {cfg.heads} heads. Text tower: width {cfg.text_width},
  {cfg.text_layers} layers, context {cfg.context_length} tokens. Joint embedding {cfg.projection_dim}-d.
- Tokenizer: byte-level BPE ({len(tokenizer)} tokens) trained with the `tokenizers` library on the caption
  grammar and common prompt words, in CLIP's layout; loads as `CLIPTokenizer` (`AutoTokenizer`, `AutoProcessor`).
- Data: {cfg.train_scenes} training scenes (split seed 0), each rendered as all {len(SHAPES)} shapes with the same colour,
  size, position, angle and background ({cfg.train_scenes * len(SHAPES)} images); a batch holds whole scene groups, so
  captions within a group differ only by the shape word (hard negatives for shape). Validation split seed 1;
  metrics on the test split (seed 2), whose images are ordinary independent samples. Each image is paired with its full caption {cfg.full_caption_fraction:.0%} of the time, else with a random partial
  description behind a prompt prefix ("a photo of a red star"). No flips (they would swap left and right).
- Loss: symmetric InfoNCE over the (B, B) similarity matrix with a learned logit scale (initial 1/0.07,
  clipped at {cfg.max_logit_scale:g} as in the paper); a text true of several images in the batch counts them all as
  positives (multi-positive InfoNCE; with unique captions it is CLIP's loss).
- Recipe: {cfg.steps} steps of batch {cfg.batch_size}, AdamW lr {cfg.lr} (betas 0.9/0.98, warm-up {cfg.warmup}, cosine),
  weight decay {cfg.weight_decay} on matrices.
- Metrics: `zero_shot_shape_accuracy` uses prompts "a photo of a {{shape}}"; `zero_shot_color_shape_accuracy` uses
  all {len(SHAPES) * len(COLORS)} prompts "a photo of a {{color}} {{shape}}" (both must be right); `retrieval_r1` is
  image-to-caption top-1 within batches of 100 test images (a hit when the retrieved caption equals the true one).
- Config: `{asdict(cfg)}`
""",
        metrics,
        "python -m shared.training clip-tiny-shapes",
    )
    return metrics

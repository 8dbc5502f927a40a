"""fast-bpe-actions: the byte-level BPE of FAST (Pertsch et al., 2025), trained on generated chunks.

FAST turns an action chunk into integers (quantile-normalise to [-1, 1], DCT-II per dimension,
scale and round, flatten low frequencies first across dimensions), then lets a byte-pair
encoder merge frequent runs of those integers, mostly the long runs of zeros at high
frequencies, into single tokens. This recipe builds that BPE with the `tokenizers` library:

1. a corpus of generated 7-D chunks (``shared.actions.corpus``: 10-50 Hz, 0.5-2 s, noise 0-0.4);
2. each chunk -> rounded DCT coefficients at ``scale`` -> one character per coefficient
   (``shared.actions.chunk_text``, the same front end the space encodes with);
3. byte-level BPE with vocabulary 1024: the 256 byte symbols plus 768 learned merges.

The regular-expression splitting GPT-2 applies before byte-level BPE is off: a chunk is one
"word", so merges may span any neighbouring coefficients. Saved in Hugging Face format
(tokenizer.json + tokenizer_config.json), loadable with ``AutoTokenizer.from_pretrained``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.actions import chunk_text, corpus
from shared.training.loop import seed_everything, write_model_card


@dataclass
class Config:
    chunks: int = 20_000  # training corpus size (a chunk is one BPE "word")
    scale: float = 10.0  # FAST's default: coefficient x scale, then round
    vocab_size: int = 1024  # as FAST and LeRobot's lerobot-train-tokenizer default
    min_frequency: int = 2  # a pair must occur this often to be merged
    eval_chunks: int = 200  # held-out 50x7 chunks (50 Hz, 1 s) for the metrics
    quantile: float = 0.01  # normalise the 1st and 99th percentiles to -1 and +1


def build_tokenizer(texts, vocab_size: int, min_frequency: int):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, show_progress=True, special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: any integer stays encodable
        max_token_length=None,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=None)
    return tokenizer


def train(out_dir: str, steps: int | None = None, seed: int = 0, cfg: Config | None = None,
          grad_accum: int | None = None, rank_weights: bool = False) -> dict:
    """Train and save the BPE; ``steps`` overrides the number of corpus chunks.

    BPE merges are counted, not learned by gradient steps: there is nothing to accumulate or to
    split across processes, so under ``accelerate launch`` only the main process trains."""
    import os

    from transformers import PreTrainedTokenizerFast

    if grad_accum not in (None, 1) or rank_weights:
        raise ValueError("fast-bpe-actions trains a tokenizer (BPE merge counts): --grad-accum and "
                         "--rank-weights apply only to the gradient-trained models")
    if int(os.environ.get("RANK", "0")) != 0:
        return {}
    cfg = cfg or Config()
    if steps is not None:
        cfg.chunks = steps
    seed_everything(seed)
    start = time.perf_counter()
    out = Path(out_dir)

    texts = [chunk_text(c, cfg.scale, cfg.quantile) for c in corpus(cfg.chunks, seed=seed)]
    tokenizer = build_tokenizer(texts, cfg.vocab_size, cfg.min_frequency)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, clean_up_tokenization_spaces=False)
    wrapped.save_pretrained(out)
    (out / "fast_config.json").write_text(json.dumps({
        "scale": cfg.scale, "quantile": cfg.quantile, "dct": "scipy.fft.dct type 2, norm='ortho', per dimension",
        "order": "frequency-major: coefficient k of every dimension before coefficient k+1",
        "integer_to_character": "zig-zag (0,-1,1,-2,... -> 0,1,2,3,...), surrogates skipped",
        "vocab_size": tokenizer.get_vocab_size(),
    }, indent=2) + "\n")

    from shared.models import evaluate  # the same evaluation as `python -m shared.models eval`

    metrics = evaluate("fast-bpe-actions", path=out, n=cfg.eval_chunks, scale=cfg.scale)
    metrics.pop("model")
    metrics["corpus_chunks"] = cfg.chunks
    metrics["corpus_characters"] = sum(len(t) for t in texts)
    metrics["train_wall_seconds"] = round(time.perf_counter() - start, 1)  # corpus + merges + evaluation
    write_model_card(
        out, "fast-bpe-actions",
        f"""The byte-pair encoder of a FAST action tokenizer (Pertsch et al., 2025, arXiv:2501.09747),
trained here from scratch with the `tokenizers` library. It is not the FAST+ universal tokenizer
(`physical-intelligence/fast`, trained on 1M real robot chunks); it saw only generated chunks.

- **Input text.** A (T, D) chunk is quantile-normalised per dimension (1st and 99th percentiles of
  the chunk -> -1 and +1), transformed with a DCT-II per dimension (`scipy.fft.dct`, `norm="ortho"`),
  multiplied by scale {cfg.scale} and rounded, flattened low frequencies first (coefficient k of every
  dimension before coefficient k+1), and each integer becomes one character by a zig-zag map
  (0, -1, 1, -2, ... -> U+0000, U+0001, U+0002, U+0003, ...; surrogates skipped). FAST's reference
  code shifts by the corpus minimum instead and clamps lower values; the zig-zag map keeps every
  integer, so decoding is exact at any scale.
- **BPE.** Byte-level (`pre_tokenizers.ByteLevel(use_regex=False)`: a chunk is one word), initial
  alphabet the 256 byte symbols, vocabulary {cfg.vocab_size} (256 bytes + {cfg.vocab_size - 256} merges),
  min frequency {cfg.min_frequency}, no special tokens.
- **Corpus.** {cfg.chunks} chunks from `shared.actions.corpus` (seed {seed}): 7-D end-effector deltas
  (sums of low-frequency sinusoids) plus a binary gripper, 10-50 Hz, 0.5-2 s, relative noise 0-0.4.
- **Evaluation.** {cfg.eval_chunks} held-out 50x7 chunks (50 Hz, 1 s; noise 0, 0.05, 0.2 in turn).
  bin256 always needs T x D = 350 tokens for them.
- Config: `{asdict(cfg)}`

Load it with `transformers.AutoTokenizer.from_pretrained("shared/weights/fast-bpe-actions")`
(a `PreTrainedTokenizerFast`); the FAST front end (normalise, DCT, round, integers -> characters)
is `shared/actions.py` (`chunk_text`), and `spaces/vla_tokenizer/compute.py` decodes with it.
""",
        metrics,
        "python -m shared.training fast-bpe-actions",
    )
    return metrics

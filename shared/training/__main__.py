"""python -m shared.training NAME [--out DIR] [--from DIR] [--steps N] [--seed S] [--grad-accum K] [--rank-weights]
                               [--set K=V ...]

Single process: ``python -m shared.training vit-tiny-shapes``. Data-parallel on N GPUs, or N CPU
processes over gloo: ``accelerate launch --num_processes N -m shared.training vit-tiny-shapes``
(add ``--cpu`` to force CPU, ``--mixed_precision bf16`` for mixed precision; several machines: see
the README). Every rank trains on its slice of the same global batch, so N processes train the
same model as one.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from shared.training import RECIPES, WEIGHTS_DIR, get_phase2_recipe, get_recipe, recipe_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--out", default=None, help="output folder (default: shared/weights/NAME)")
    parser.add_argument("--from", dest="from_dir", default=None, metavar="DIR",
                        help="run only the recipe's phase 2, starting from the weights in DIR (e.g. dit-tiny-shapes)")
    parser.add_argument("--steps", type=int, default=None,
                        help="override the recipe's step count (smoke runs; with --from, phase 2's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grad-accum", type=int, default=None,
                        help="micro-batches per optimizer step; the global batch size stays the recipe's")
    parser.add_argument("--rank-weights", action="store_true",
                        help="every process also writes its final weights to OUT/ranks/rank<i>.safetensors")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a field of the recipe's Config (repeatable), e.g. --set hidden_size=192; "
                             "with --out, so the shipped weights stay the defaults' (see the README)")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    try:
        cfg = recipe_config(args.name, args.set) if args.set else None
    except ValueError as e:
        parser.error(str(e))
    out = args.out or str(WEIGHTS_DIR / args.name)
    start = time.perf_counter()
    if args.from_dir:
        try:
            recipe = get_phase2_recipe(args.name)
        except ValueError as e:
            parser.error(str(e))
        if not os.path.isdir(args.from_dir):
            parser.error(f"--from {args.from_dir}: no such folder")
        metrics = recipe(args.from_dir, out, steps=args.steps, seed=args.seed, grad_accum=args.grad_accum,
                         rank_weights=args.rank_weights, cfg=cfg)
    else:
        metrics = get_recipe(args.name)(out, steps=args.steps, seed=args.seed, grad_accum=args.grad_accum,
                                        rank_weights=args.rank_weights, cfg=cfg)
    if int(os.environ.get("RANK", "0")) == 0:  # one line, from the main process only
        metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps({"model": args.name, "out": out, **metrics}))


if __name__ == "__main__":
    main()

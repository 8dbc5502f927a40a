"""python -m shared.training NAME [--out DIR] [--steps N] [--seed S]"""

from __future__ import annotations

import argparse
import json
import time

from shared.training import RECIPES, WEIGHTS_DIR, get_recipe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.training", description=__doc__)
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--out", default=None, help="output folder (default: shared/weights/NAME)")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out or str(WEIGHTS_DIR / args.name)
    start = time.perf_counter()
    metrics = get_recipe(args.name)(out, steps=args.steps, seed=args.seed)
    metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps({"model": args.name, "out": out, **metrics}))


if __name__ == "__main__":
    main()

"""ViT anatomy: every preset at 224 px, 1000 classes, through ``compute.cost`` (the ``vit_anatomy_cost``
endpoint's code path), beside the parameter counts the papers print; and how long counting takes.

- ``presets``: per preset, counted parameters, GMACs (FlopCounterMode FLOPs / 2), tokens, activations
  (MB, fp32, batch 1 and 64), the paper's parameters (millions, where verified) and the source.
- ``count_ms``: median time of one ``cost`` call (meta-device instantiation, one counted forward, two
  saved-tensor passes) for ViT-B/16 and ViT-g/14; no weights are allocated, so the giant costs little more.

Run: ``.venv/bin/python -m bench.vit_anatomy`` (prints JSON and a table).
"""

from __future__ import annotations

import json

from bench.timing import median_ms
from spaces.vit_anatomy import compute, options


def run(runs: int = 5) -> dict:
    presets = {}
    for name in options.PRESETS:
        s = compute.cost(**compute.preset(name))
        paper = options.PAPER_PARAMS_M.get(name)
        presets[name] = {
            "params": s["params"], "params_M": round(s["params"] / 1e6, 1),
            "paper_params_M": paper[0] if paper else None,
            "paper_source": paper[1] if paper else "not verified",
            "gmacs": round(s["macs"] / 1e9, 2), "tokens": s["tokens"],
            "activation_mb_b1": round(s["activation_mb"], 1), "activation_mb_b64": round(s["activation_mb_batch64"], 1),
            "hand_formula_agrees": (s["params"], s["macs"]) == (s["hand_params"], s["hand_macs"]),
        }
    timing = {name: median_ms(lambda n=name: compute.cost(**compute.preset(n)), runs)
              for name in ("ViT-B/16", "ViT-g/14")}
    return {"presets": presets, "count_ms": timing}


def _table(result: dict) -> str:
    lines = ["| preset | params (counted) | M (paper) | GMACs (counted) | tokens | act. MB b1 | act. MB b64 |",
             "|---|---|---|---|---|---|---|"]
    for name, r in result["presets"].items():
        paper = r["paper_params_M"] if r["paper_params_M"] is not None else "—"
        lines.append(f"| {name} | {r['params']:,} | {paper} | {r['gmacs']} | {r['tokens']} | "
                     f"{r['activation_mb_b1']} | {r['activation_mb_b64']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    result = run()
    print(json.dumps(result, indent=1))
    print(_table(result))

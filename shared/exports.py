"""Files a user can download of what a page shows: tables as CSV, plots as PNG, statistics as JSON.

Pure (no gradio): ``write_downloads`` takes the values an event produced and writes one file per
table, figure or JSON-able mapping into a fresh folder, so two requests never share a file.
Folders older than ``KEEP_SECONDS`` are removed on the next call, which bounds the disk used.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(tempfile.gettempdir()) / "vitlab-downloads"
KEEP_SECONDS = 3600.0


def file_stem(label: str | None, fallback: str) -> str:
    """A safe file name from a component label: "Attention entropy (bits)" -> "attention-entropy-bits"."""
    stem = re.sub(r"[^a-z0-9]+", "-", (label or "").lower()).strip("-")
    return stem[:60] or fallback


def _json_ready(value: Any) -> Any:
    """numpy scalars and arrays, tuples and non-finite floats made JSON-safe (NaN -> null)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _prune(root: Path, now: float) -> None:
    if not root.is_dir():
        return
    for folder in root.iterdir():
        try:
            if now - folder.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # another process removed it first
            pass


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if type(value).__name__ == "Figure" and hasattr(value, "savefig"):
        return "png"
    if type(value).__name__ == "DataFrame" and hasattr(value, "to_csv"):
        return "csv"
    if isinstance(value, dict):
        return "json"
    return None


def write_downloads(named_values: Sequence[tuple[str, Any]], root: Path | None = None) -> list[str]:
    """Write each (name, value) that is a matplotlib Figure (PNG), a pandas DataFrame (CSV) or a dict
    (JSON) into a new folder; other values are skipped. Returns the paths, in input order."""
    root = root or ROOT
    now = time.time()
    _prune(root, now)
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=root))
    paths: list[str] = []
    used: set[str] = set()
    for name, value in named_values:
        kind = _kind(value)
        if kind is None:
            continue
        stem = name
        n = 2
        while stem in used:  # two outputs with the same label keep both files
            stem, n = f"{name}-{n}", n + 1
        used.add(stem)
        path = folder / f"{stem}.{kind}"
        if kind == "png":
            value.savefig(path, format="png", dpi=150, bbox_inches="tight")
        elif kind == "csv":
            value.to_csv(path, index=False)
        else:
            path.write_text(json.dumps(_json_ready(value), indent=2, allow_nan=False) + "\n")
        paths.append(str(path))
    return paths

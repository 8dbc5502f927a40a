"""Checks for values that reach compute functions from a page or an API call.

Events are wired with ``shared.ui.raw_values``, so a handler sees what a client sent: ``3.5`` for a
step count, ``"abc"`` for a seed, ``"nan"`` for a scale (JSON cannot carry NaN, so clients send text).
Each check returns the clean value or raises ``ValueError`` that names the input, says what is
allowed and shows what came; ``shared.ui.user_errors`` turns that into the message a user reads.
Pure Python: no gradio, no torch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["choice", "choices", "integer", "number"]


def _show(x: float) -> str:
    """1000000 -> "1000000" (not "1e+06"); 0.25 -> "0.25"."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _allowed(lo: float | None, hi: float | None, above: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"greater than {_show(lo)} and at most {_show(hi)}" if above else f"from {_show(lo)} to {_show(hi)}"
    if lo is not None:
        return f"greater than {_show(lo)}" if above else f"at least {_show(lo)}"
    if hi is not None:
        return f"at most {_show(hi)}"
    return ""


def integer(value: Any, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer in ``[lo, hi]``. Accepts ints, integral floats (``4.0``: JSON numbers) and digit
    strings; refuses bools, ``3.5``, ``"abc"`` and NaN."""
    allowed = _allowed(lo, hi)
    wanted = f"{name} must be an integer" + (f" {allowed}" if allowed else "")
    if isinstance(value, bool):
        raise ValueError(f"{wanted}, got {value!r}")
    if isinstance(value, numbers.Integral):
        result = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        result = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        result = int(value.strip())
    else:
        raise ValueError(f"{wanted}, got {value!r}")
    if (lo is not None and result < lo) or (hi is not None and result > hi):
        raise ValueError(f"{wanted}, got {result}")
    return result


def number(value: Any, name: str, lo: float | None = None, hi: float | None = None,
           above: bool = False) -> float:
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``above=True``). Numeric strings count, so
    ``"nan"`` and ``"inf"`` are parsed and then refused as not finite; bools are refused."""
    allowed = _allowed(lo, hi, above)
    wanted = f"{name} must be a finite number" + (f" {allowed}" if allowed else "")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{wanted}, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{wanted}, got {value!r}")
    result = float(value)
    low_ok = lo is None or (result > lo if above else result >= lo)
    if not math.isfinite(result) or not low_ok or (hi is not None and result > hi):
        raise ValueError(f"{wanted}, got {_show(result) if math.isfinite(result) else result}")
    return result


def choice(value: Any, name: str, options: Iterable[Any]) -> Any:
    """``value`` if it is one of ``options`` (a sequence, or a dict's keys), else a message listing them."""
    options = list(options)
    try:
        if value in options:
            return value
    except TypeError:  # unhashable or uncomparable input: not an option either way
        pass
    raise ValueError(f"unknown {name} {value!r}; choose one of {options}")


def choices(values: Any, name: str, options: Iterable[Any], at_least: int = 1) -> list[Any]:
    """A list of known options, duplicates removed and order kept; at least ``at_least`` of them."""
    options = list(options)
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a list of options from {options}, got {values!r}")
    unknown = [v for v in values if not _is_option(v, options)]
    if unknown:
        raise ValueError(f"unknown {name} {unknown}; choose from {options}")
    kept = list(dict.fromkeys(values))
    if len(kept) < at_least:
        raise ValueError(f"choose at least {at_least} {name} from {options}")
    return kept


def _is_option(value: Any, options: list[Any]) -> bool:
    try:
        return value in options
    except TypeError:
        return False

"""torchvision's CNN model definitions (AlexNet, VGG, ResNet) beside a CPU-only torch.

PyPI's Linux torchvision wheel is built against CUDA torch. Beside the CPU torch wheel its compiled
operator library cannot load, and ``import torchvision`` fails in ``torchvision/_meta_registrations``,
which registers shape functions for those missing operators (``torchvision::nms``...). transformers
imports torchvision whenever it can find it, so such a wheel in site-packages would break every
model. The Makefile therefore installs it into a private folder, ``<venv>/torchvision-defs``, that
is not on ``sys.path``; only this module imports it, with that one registration module replaced by
an empty stand-in (the model definitions never call those operators). Afterwards torchvision is
taken out of ``sys.modules`` and ``sys.path`` again, so whether a CNN page ran first never changes
how transformers preprocesses images elsewhere in the process. The layers are torchvision's own.

A torchvision that imports normally (a CPU build from PyTorch's index, or the CUDA pair on a GPU
machine) is used as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import types
from pathlib import Path
from typing import Any

PRIVATE_DIR = Path(os.environ.get("VTL_TORCHVISION_DIR", Path(sys.prefix) / "torchvision-defs"))
_META_REGISTRATIONS = "torchvision._meta_registrations"
_lock = threading.Lock()
_models: Any = None


def _torchvision_modules() -> list[str]:
    return [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]


def _import_private() -> Any:
    if not (PRIVATE_DIR / "torchvision" / "__init__.py").is_file():
        raise ValueError(f"torchvision is not installed (looked in site-packages and {PRIVATE_DIR}); "
                         "`make install` installs the release that matches your torch")
    sys.path.insert(0, str(PRIVATE_DIR))
    sys.modules[_META_REGISTRATIONS] = types.ModuleType(_META_REGISTRATIONS)
    try:
        return importlib.import_module("torchvision.models")
    finally:
        sys.path.remove(str(PRIVATE_DIR))
        for name in _torchvision_modules():  # the classes keep their modules alive; hide the package
            del sys.modules[name]


def installed() -> bool:
    """Whether torchvision can be imported here, from site-packages or the private folder."""
    return importlib.util.find_spec("torchvision") is not None or (PRIVATE_DIR / "torchvision").is_dir()


def torchvision_models() -> Any:
    """The ``torchvision.models`` module (imported once; thread-safe)."""
    global _models
    with _lock:
        if _models is None:
            if importlib.util.find_spec("torchvision") is not None:
                _models = importlib.import_module("torchvision.models")
            else:
                _models = _import_private()
        return _models

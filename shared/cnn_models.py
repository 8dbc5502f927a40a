"""torchvision's CNN model definitions (AlexNet, VGG, ResNet), importable beside a CPU-only torch.

PyPI's Linux torchvision wheel is built against CUDA torch. Beside the CPU torch wheel its compiled
operator library (``torchvision::nms`` and friends) cannot load, and ``import torchvision`` then
fails in ``torchvision/_meta_registrations.py``, which registers shape functions for those missing
operators. The model definitions never call them. So when, and only when, that import fails for this
reason, we import torchvision again with that one module replaced by an empty stand-in. The layers
are then torchvision's own: nothing here redefines a model.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_META_REGISTRATIONS = "torchvision._meta_registrations"


def _forget_torchvision() -> None:
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]


def torchvision_models() -> Any:
    """``torchvision.models``, working around a torchvision whose compiled operators cannot load."""
    try:
        return importlib.import_module("torchvision.models")
    except ModuleNotFoundError as err:
        raise ValueError("torchvision is not installed; `make install` installs the release that "
                         "matches your torch") from err
    except RuntimeError as err:
        if "torchvision::" not in str(err):  # some other failure: do not hide it
            raise
    _forget_torchvision()
    sys.modules[_META_REGISTRATIONS] = types.ModuleType(_META_REGISTRATIONS)
    return importlib.import_module("torchvision.models")

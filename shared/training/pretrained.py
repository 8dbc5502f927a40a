"""Save and load a plain ``torch.nn.Module`` the way Hugging Face models are shipped: ``config.json`` (the
constructor's arguments, ``self.config``) beside ``model.safetensors`` (the state dict). Used by the models this
project defines itself (VQ-VAE, action VQ, V-JEPA), so every embedded model has the same two files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self


class SafetensorsModel:
    """Mixin for an ``nn.Module`` with a JSON-able ``self.config``. ``from_config`` rebuilds the module from that
    dict; the default passes it as keyword arguments."""

    config: dict[str, Any]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)

    def save_pretrained(self, out: str | Path) -> None:
        from safetensors.torch import save_file

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(self.config, indent=2) + "\n")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                  str(out / "model.safetensors"))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Self:
        from safetensors.torch import load_file

        path = Path(path)
        model = cls.from_config(json.loads((path / "config.json").read_text()))
        model.load_state_dict(load_file(str(path / "model.safetensors")))
        return model.eval()

"""The shared layer: device selection, model registry and loading, image validation, the shapes
dataset, training recipes and the embedded weights."""

import logging

# torchao (the int8 backend of quant_latency) logs a warning on import for each CUDA-only kernel
# a CPU build cannot load, and torch logs its pytree registrations; transformers imports torchao
# whenever it builds a model. Neither says anything a user of this project can act on.
for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)

"""gandiag's reference GAN trainer: ``gandiag.training.train(variant, data, out, ...)``.

Modules: :mod:`.variants` (named configurations), :mod:`.losses`,
:mod:`.data` (training batches from the real-data sources), :mod:`.loop`
(one loop for every variant, checkpoints, resume), :mod:`.trainlog`
(``log.jsonl``), :mod:`.periodic_eval`. User docs: docs/training.md.
"""

from .loop import train
from .trainlog import read_log
from .variants import VARIANTS, Options, Variant

__all__ = ["train", "read_log", "VARIANTS", "Options", "Variant"]

"""Export a gandiag checkpoint's generator to the formats teams ship (docs/loaders-and-export.md).

:mod:`.exporters` writes ONNX, ``torch.export`` and TorchScript files and
checks each against PyTorch; :mod:`.tensorflow` rebuilds the network natively
in TensorFlow for a SavedModel.
"""

from .exporters import TARGETS, export_checkpoint

__all__ = ["TARGETS", "export_checkpoint"]

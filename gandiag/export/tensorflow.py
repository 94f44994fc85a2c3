"""gandiag's own generators rebuilt natively in TensorFlow, for ``gandiag export --to savedmodel``.

There is no maintained PyTorch → TensorFlow converter (onnx-tf is archived),
so the SavedModel is not converted from a graph: each built-in generator
architecture is written again here with TF ops, and the checkpoint's weights
are copied in, layer by layer, from the rebuilt PyTorch module. Only layers
the built-in generators use are supported (Linear, BatchNorm1d/2d in eval
mode, ConvTranspose2d, Conv2d, ReLU, LeakyReLU, Tanh); anything else is
refused with its name rather than exported wrong.

The serving signature takes ``z`` (float32, [None, latent]) and, for
conditional generators, ``labels`` (int64, [None]); it returns ``images``
(float32 NHWC in [-1, 1], TensorFlow's layout) or ``points`` (float32,
[None, D]). :func:`build_tf_module` returns the ``tf.Module``; the caller
checks it against PyTorch before saving.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

import numpy as np
import torch
from torch import nn

from ..errors import GandiagError

SUPPORTED = {"mlp-generator", "dcgan-generator"}


def import_tensorflow():
    """``import tensorflow``, made safe to mix with PyTorch in one process; raises ImportError when absent.

    Loading triton's native library (which torch.compile, torch.export and
    torchvision pull in) after TensorFlow crashes the process (seen with
    tensorflow-cpu 2.21 and triton 3.x), while the other order is fine; so
    triton is loaded first wherever it is installed.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError("No module named 'tensorflow'", name="tensorflow")
    if importlib.util.find_spec("triton") is not None:
        try:
            import triton._C.libtriton  # noqa: F401
        except Exception:  # a broken triton is torch's problem, not a reason to refuse TensorFlow
            pass
    with _native_stderr_silenced("tensorflow" not in sys.modules):
        import tensorflow as tf

    return tf


@contextlib.contextmanager
def _native_stderr_silenced(on: bool):
    """File descriptor 2 to /dev/null while TensorFlow's native code starts.

    tensorflow-cpu 2.21 logs through absl before TF_CPP_MIN_LOG_LEVEL is read
    ("All log messages before absl::InitializeLog()...", "oneDNN custom
    operations are on"), which broke gandiag's promise of one line on stderr
    for bad input. Python exceptions from the import are not affected.
    """
    saved = None
    if on:
        try:
            saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            saved = None
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _layers(tf, seq: nn.Sequential, arch: str):
    """Torch layers → a list of TF callables on NHWC / (N, D) tensors, weights as tf.Variables."""
    out, variables = [], []

    def var(a):
        v = tf.Variable(a, trainable=False)
        variables.append(v)
        return v

    for m in seq:
        if isinstance(m, nn.Linear):
            w, b = var(_np(m.weight).T), var(_np(m.bias)) if m.bias is not None else None
            out.append(lambda x, w=w, b=b: (tf.matmul(x, w) + b) if b is not None else tf.matmul(x, w))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if not m.track_running_stats or m.running_mean is None:
                raise GandiagError(f"{arch}: batch norm without running statistics cannot be exported")
            scale = _np(m.weight) / np.sqrt(_np(m.running_var) + m.eps) if m.affine else 1.0 / np.sqrt(_np(m.running_var) + m.eps)
            shift = (_np(m.bias) if m.affine else 0.0) - _np(m.running_mean) * scale
            s, t = var(scale.astype(np.float32)), var(np.asarray(shift, np.float32))
            out.append(lambda x, s=s, t=t: x * s + t)  # channels last: broadcasts over the last axis
        elif isinstance(m, nn.ConvTranspose2d):
            if (m.kernel_size, m.stride, m.padding, m.output_padding, m.dilation, m.groups) != ((4, 4), (2, 2), (1, 1), (0, 0), (1, 1), 1):
                raise GandiagError(f"{arch}: only 4x4 stride-2 padding-1 transposed convolutions are exported, not {m}")
            k = var(_np(m.weight).transpose(2, 3, 1, 0))  # (in, out, kh, kw) → (kh, kw, out, in)
            b = var(_np(m.bias)) if m.bias is not None else None
            cout = m.out_channels

            def up(x, k=k, b=b, cout=cout):
                n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
                y = tf.nn.conv2d_transpose(x, k, tf.stack([n, 2 * h, 2 * w, cout]), strides=2, padding="SAME")
                return y + b if b is not None else y

            out.append(up)
        elif isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            if m.stride != (1, 1) or m.padding != (kh // 2, kw // 2) or kh % 2 == 0 or m.dilation != (1, 1) or m.groups != 1:
                raise GandiagError(f"{arch}: only odd-kernel stride-1 'same' convolutions are exported, not {m}")
            k = var(_np(m.weight).transpose(2, 3, 1, 0))  # (out, in, kh, kw) → (kh, kw, in, out)
            b = var(_np(m.bias)) if m.bias is not None else None
            out.append(lambda x, k=k, b=b: (tf.nn.conv2d(x, k, 1, "SAME") + b) if b is not None else tf.nn.conv2d(x, k, 1, "SAME"))
        elif isinstance(m, nn.ReLU):
            out.append(tf.nn.relu)
        elif isinstance(m, nn.LeakyReLU):
            out.append(lambda x, a=float(m.negative_slope): tf.nn.leaky_relu(x, a))
        elif isinstance(m, nn.Tanh):
            out.append(tf.tanh)
        else:
            raise GandiagError(f"{arch}: layer {type(m).__name__} has no TensorFlow translation; export to onnx instead")
    return out, variables


def build_tf_module(arch: str, net: nn.Module):
    """A ``tf.Module`` computing what ``net`` computes, with a ``serve`` tf.function."""
    tf = import_tensorflow()
    if arch not in SUPPORTED:
        raise GandiagError(f"architecture {arch!r} has no TensorFlow rebuild (built-in: {', '.join(sorted(SUPPORTED))}); "
                           "export to onnx, torchscript or export instead")
    net = net.eval()
    num_classes, latent_dim = int(getattr(net, "num_classes", 0) or 0), int(net.latent_dim)

    if arch == "mlp-generator":
        body, variables = _layers(tf, net.net, arch)
        start, head = None, []
        out_name = "points"
    else:  # dcgan-generator: project (Linear, BN1d, ReLU) → (C,4,4) map → ups → to_image → tanh
        body, v1 = _layers(tf, net.project, arch)
        head, v2 = _layers(tf, nn.Sequential(*net.up, net.to_image, nn.Tanh()), arch)
        variables, start = v1 + v2, int(net.start)
        out_name = "images"

    def generate(z, labels=None):
        x = z
        if num_classes:
            x = tf.concat([z, tf.one_hot(labels, num_classes, dtype=z.dtype)], 1)
        for f in body:
            x = f(x)
        if start is not None:
            x = tf.transpose(tf.reshape(x, [-1, start, 4, 4]), [0, 2, 3, 1])  # torch's view is channels first
            for f in head:
                x = f(x)
        return x

    module = tf.Module()
    module.weights_ = variables
    z_spec = tf.TensorSpec([None, latent_dim], tf.float32, name="z")
    if num_classes:
        @tf.function(input_signature=[z_spec, tf.TensorSpec([None], tf.int64, name="labels")])
        def serve(z, labels):
            return {out_name: generate(z, labels)}
    else:
        @tf.function(input_signature=[z_spec])
        def serve(z):
            return {out_name: generate(z)}
    module.serve = serve
    return module

"""Planted translators with a known truth, for the translation diagnostics (tests/test_translation_diagnostics.py).

Each builder returns a ``torch.nn.Module``; :func:`save` writes it as a
torch.export program with its contract stored, as ``gandiag export`` writes
translators (the approach of tests/test_translation_pipeline.py). Images are
the bundled ``digits-inverted`` pair (8x8 digits -> the same digits with grey
levels inverted), taken and given in [-1, 1]; points are ``ring8-rotated``
(ring8 -> ring8 rotated by pi/8).

What each one is, and the verdicts it must get:

- ``truth``: the exact translation (negation; the rotation).
- ``noisy``: the truth plus a fixed noise pattern and a small input-dependent wobble.
- ``constant``: one target image (point) whatever the input.
- ``random_target``: a target sample drawn at random at every call, whatever the input.
- ``hashed_target``: a target sample picked by a hash of the input: deterministic, but unrelated to it.
- ``copy``: the input itself (an identity mapping).
- ``blend``: part identity, part truth: (2a - 1) x for images, the point moved only part of the way.
- ``label_flip``: each digit to the inverted image of the nearest digit of the next class (points: a rotation
  that lands every mode on the next mode of the target).
- ``some_flipped``: the label flip for 1s, 3s, 5s and 7s only, the truth for the other digits.
- ``stego`` / ``stego_decoder``: Chu et al. (2017)'s CycleGAN steganography, planted: one fixed, target-looking
  image plus a checkerboard pattern of a few grey levels per pixel that encodes the input's 17 grey levels;
  the decoder reads the pattern back, so the cycle error is nil while the output shows nothing of the input.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gandiag.generator.contract import STORED_IN_ARCHIVE, GeneratorContract, stored_text

DIGITS = GeneratorContract(latent_dim=64, latent_shape=(1, 8, 8), takes="images", input_range="-1,1",
                           output_range="-1,1", kind="images", layout="NCHW")
POINTS = GeneratorContract(latent_dim=2, takes="points", kind="points")
RING_ANGLE = math.pi / 8
STEGO_STEP = 1  # grey levels per digit level (0..16) in the stego pattern: up to 16 grey levels of amplitude


def digits_bank() -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled digits in [-1, 1] (N, 1, 8, 8) and their labels (N,)."""
    from gandiag.data.sources import DigitsSource

    s = DigitsSource().load("digits")
    return s.data.float() / 127.5 - 1.0, torch.as_tensor(np.asarray(s.labels), dtype=torch.long)


def ring_bank() -> tuple[torch.Tensor, torch.Tensor]:
    """ring8-rotated's side B (the target domain), float32 (N, 2), and its mode labels."""
    from gandiag.data import domains

    side = domains.PAIRS["ring8-rotated"].side("b")
    return side.data.float(), torch.as_tensor(np.asarray(side.labels), dtype=torch.long)


def _rotation(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, s], [-s, c]], dtype=torch.float32)  # row vectors: p @ rot rotates by +angle


class Negate(torch.nn.Module):
    def forward(self, x):
        return -x


class NoisyNegate(torch.nn.Module):
    """-x + a fixed noise pattern (σ 0.1 in [-1, 1], ~13 grey levels) + 0.05 sin(3x)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("noise", 0.1 * torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(3)))

    def forward(self, x):
        return (-x + self.noise + 0.05 * torch.sin(3 * x)).clamp(-1, 1)


class Rotate(torch.nn.Module):
    def __init__(self, angle: float = RING_ANGLE, noise: float = 0.0):
        super().__init__()
        self.register_buffer("rot", _rotation(angle))
        self.noise = noise

    def forward(self, x):
        y = x @ self.rot
        return y + self.noise * torch.sin(5 * x.flip(1)) if self.noise else y


class Constant(torch.nn.Module):
    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.register_buffer("value", value[None])

    def forward(self, x):
        return self.value.expand(x.shape[0], *self.value.shape[1:]) + 0 * x.sum()


class RandomTarget(torch.nn.Module):
    """A target sample drawn anew at every call: the output ignores the input."""

    def __init__(self, bank: torch.Tensor):
        super().__init__()
        self.register_buffer("bank", bank)

    def forward(self, x):
        idx = torch.randint(0, self.bank.shape[0], (x.shape[0],), device=x.device)
        return self.bank[idx] + 0 * x.sum()


class HashedTarget(torch.nn.Module):
    """A target sample picked by a hash of the input's values: a function of the input, with none of its content."""

    def __init__(self, bank: torch.Tensor, dim: int):
        super().__init__()
        self.register_buffer("bank", bank)
        g = torch.Generator().manual_seed(11)
        self.register_buffer("weights", torch.randint(1, 997, (dim,), generator=g))

    def forward(self, x):
        q = torch.round(x.flatten(1) * 1000).long()
        idx = torch.remainder((q * self.weights).sum(1), self.bank.shape[0])
        return self.bank[idx]


class Copy(torch.nn.Module):
    def forward(self, x):
        return x.clone()


class Blend(torch.nn.Module):
    """a·input + (1 − a)·truth: an image (point) only part of the way to the target domain."""

    def __init__(self, truth: torch.nn.Module, a: float):
        super().__init__()
        self.truth, self.a = truth, a

    def forward(self, x):
        return self.a * x + (1 - self.a) * self.truth(x)


class LabelFlip(torch.nn.Module):
    """Each digit to the inverted image of the nearest bundled digit of the next class (c -> c + 1 mod 10).

    With ``classes``, only digits of those classes; the others get the truth (their own inverted image).
    """

    def __init__(self, classes=tuple(range(10))):
        super().__init__()
        bank, labels = digits_bank()
        self.register_buffer("bank", bank.flatten(1))
        self.register_buffer("labels", labels)
        self.register_buffer("flipped", torch.tensor(sorted(classes), dtype=torch.long))

    def forward(self, x):
        f = x.flatten(1)
        d = (f * f).sum(1, keepdim=True) - 2 * f @ self.bank.T + (self.bank * self.bank).sum(1)[None]
        own = self.labels[d.argmin(1)]  # the input's class (the inputs are the bundled digits)
        other = self.labels[None, :] != torch.remainder(own + 1, 10)[:, None]
        j = (d + 1e9 * other.float()).argmin(1)
        flip = (own[:, None] == self.flipped[None, :]).any(1)
        return torch.where(flip.reshape(-1, 1, 1, 1), -self.bank[j].reshape(x.shape), -x)


def _checker() -> torch.Tensor:
    i = torch.arange(8)
    return (1 - 2 * ((i[:, None] + i[None, :]) % 2)).float()[None, None]  # ±1, a checkerboard


def stego_base() -> torch.Tensor:
    """The stego translator's one output image, in grey levels: an inverted digit, kept away from 0 and 255."""
    bank, _ = digits_bank()
    grey = (1 - bank[0]) * 127.5  # the inverted first digit, 0..255
    room = 16 * STEGO_STEP + 2
    return grey.clamp(room, 255 - room).round()


class Stego(torch.nn.Module):
    """One target-looking image + checker · STEGO_STEP · (the input's digit level, 0..16) grey levels."""

    def __init__(self):
        super().__init__()
        self.register_buffer("base", stego_base()[None])
        self.register_buffer("checker", _checker())

    def forward(self, x):
        level = torch.round((x + 1) * 127.5 * 16 / 255)  # the digits' 17 grey levels
        grey = self.base + self.checker * STEGO_STEP * level
        return grey / 127.5 - 1


class StegoDecoder(torch.nn.Module):
    """Reads the input back from the pattern: the cycle is exact, though the output showed nothing of it."""

    def __init__(self):
        super().__init__()
        self.register_buffer("base", stego_base()[None])
        self.register_buffer("checker", _checker())

    def forward(self, y):
        grey = torch.round((y + 1) * 127.5)
        level = torch.round((grey - self.base) * self.checker / STEGO_STEP).clamp(0, 16)
        return torch.round(level * 255 / 16) / 127.5 - 1


def image_translators() -> dict:
    bank, _ = digits_bank()
    target = -bank  # the inverted digits, [-1, 1]
    return {"truth": Negate(), "noisy": NoisyNegate(), "constant": Constant(target[0]),
            "random_target": RandomTarget(target), "hashed_target": HashedTarget(target, 64), "copy": Copy(),
            "blend": Blend(Negate(), 0.7), "label_flip": LabelFlip(), "some_flipped": LabelFlip((1, 3, 5, 7)), "stego": Stego(),
            "stego_decoder": StegoDecoder()}


def point_translators() -> dict:
    target, _ = ring_bank()
    return {"truth": Rotate(), "noisy": Rotate(noise=0.05), "constant": Constant(target[0]),
            "random_target": RandomTarget(target), "hashed_target": HashedTarget(target, 2), "copy": Copy(),
            "blend": Rotate(RING_ANGLE * 0.3), "label_flip": Rotate(RING_ANGLE + math.pi / 4),
            "inverse": Rotate(-RING_ANGLE)}


def save(module: torch.nn.Module, path, contract: GeneratorContract = DIGITS, example=(2, 1, 8, 8)) -> str:
    """``module`` as a torch.export program (dynamic batch) with ``contract`` stored in the archive."""
    program = torch.export.export(module.eval(), (torch.zeros(*example),),
                                  dynamic_shapes=({0: torch.export.Dim("n", min=1, max=1 << 16)},))
    torch.export.save(program, str(path), extra_files={STORED_IN_ARCHIVE: stored_text(contract)})
    return str(path)


def save_all(folder) -> dict:
    """Every planted translator saved under ``folder``: {"images": {name: path}, "points": {name: path}}."""
    from pathlib import Path

    folder = Path(folder)
    out = {"images": {}, "points": {}}
    for name, m in image_translators().items():
        out["images"][name] = save(m, folder / f"digits-{name}.pt2")
    for name, m in point_translators().items():
        out["points"][name] = save(m, folder / f"ring-{name}.pt2", POINTS, (2, 2))
    return out


# ----------------------------------------------------------------------------- runs built in-process


def canonical_call(module: torch.nn.Module, kind: str):
    """canonical samples -> the module -> canonical outputs, as the pipeline's translators are called."""

    def call(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if kind == "images":
                y = module(x.float() / 127.5 - 1.0)
                return ((y + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8)
            return module(x.float()).float()

    return call


_TARGET_FEATURES = {}


def _features(kind: str, x: torch.Tensor, key=None) -> np.ndarray:
    if key is not None and key in _TARGET_FEATURES:
        return _TARGET_FEATURES[key]
    if kind == "images":
        from gandiag.features.digits import _default_extractor

        f = _default_extractor()(x)["pool"].double().numpy()
    else:
        f = x.double().numpy()
    if key is not None:
        _TARGET_FEATURES[key] = f
    return f


def make_run(kind: str, module: torch.nn.Module, inverse=None, n: int = 200):
    """A TranslationRun as the pipeline fills one (a2b on the bundled pair), with label preservation measured
    the pipeline's way (a classifier on the target domain's real features: the digits extractor's pool, points)."""
    from gandiag.data import domains
    from gandiag.translation.measures import label_preservation
    from gandiag.translation.run import KEEP, TranslationRun

    pair = domains.PAIRS["digits-inverted" if kind == "images" else "ring8-rotated"]
    a, b = pair.side("a"), pair.side("b")
    forward = canonical_call(module, kind)
    back = canonical_call(inverse, kind) if inverse is not None else None
    x = a.data[:n]
    y = forward(x)
    run = TranslationRun("a2b", kind, f"{pair.name}:a", f"{pair.name}:b", n, forward, back, pair.a2b,
                         inputs=x[:KEEP], outputs=y[:KEEP], reconstructions=back(y[:KEEP]) if back else None,
                         input_labels=np.asarray(a.labels)[:n], target_samples=b.data[:KEEP],
                         target_labels=np.asarray(b.labels), paired=True)
    run.measures = {"label_preservation": label_preservation(
        _features(kind, y), _features(kind, b.data, key=pair.name), b.labels, run.input_labels)}
    return run

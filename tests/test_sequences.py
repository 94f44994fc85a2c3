"""The ``sequences`` sample kind and TimeGAN's sine benchmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gandiag.data.sequences import Sequences, sines_data
from gandiag.data.sources import load_real
from gandiag.errors import DataError, GeneratorOutputError
from gandiag.generator.contract import GeneratorContract, detect


def _timegan_sines(count: int, steps: int, channels: int) -> np.ndarray:
    """TimeGAN's definition (data_loading.sine_data_generation), drawing from NumPy's global generator in its
    order: for each sample, for each channel, a frequency then a phase, both uniform on [0, 0.1]."""
    rows = []
    for _ in range(count):
        per_channel = []
        for _ in range(channels):
            freq, phase = np.random.uniform(0, 0.1), np.random.uniform(0, 0.1)
            per_channel.append(np.sin(freq * np.arange(steps) + phase))
        rows.append((np.stack(per_channel, axis=1) + 1) * 0.5)
    return np.stack(rows)


def test_sines_are_drawn_exactly_as_timegan_draws_them():
    np.random.seed(7)
    want = _timegan_sines(40, 24, 5)
    got = sines_data(40, seed=7)
    assert got.shape == (40, 24, 5) and np.array_equal(got, want)
    assert 0.0 <= got.min() and got.max() <= 1.0


def test_sines_source_gives_float_sequences_not_the_generators_draws():
    s = load_real("sines", n=64, seed=0)
    assert (s.kind, tuple(s.data.shape), s.data.dtype) == ("sequences", (64, 24, 5), torch.float32)
    assert not np.allclose(s.data.numpy(), sines_data(64, seed=0))  # real draws use their own seed offset


@pytest.mark.parametrize("shape,want", [((4, 30, 1), "NTC"), ((4, 1, 30), "NCT")])
def test_layout_detected_only_when_one_axis_is_a_single_channel(shape, want):
    c = detect(GeneratorContract(latent_dim=3), torch.zeros(shape))
    assert (c.kind, c.layout, c.sample_shape) == ("sequences", want, (30, 1))


def test_ambiguous_layout_asks_for_the_flag():
    with pytest.raises(GeneratorOutputError, match="--layout NTC or NCT"):
        detect(GeneratorContract(latent_dim=3), torch.zeros(4, 24, 5))
    c = detect(GeneratorContract(latent_dim=3, layout="NCT"), torch.zeros(4, 5, 24))
    assert c.sample_shape == (24, 5)
    batch = torch.arange(2 * 5 * 24, dtype=torch.float32).view(2, 5, 24)
    assert torch.equal(Sequences().canonical(batch, c), batch.transpose(1, 2))


def test_arrays_from_files_are_checked():
    k = Sequences()
    assert k.from_array(np.zeros((3, 5, 24)), "x.npz", "NCT").shape == (3, 24, 5)
    with pytest.raises(DataError, match="NaN"):
        k.from_array(np.full((3, 24, 5), np.nan), "x.npz")
    with pytest.raises(DataError, match="numbers"):
        k.from_array(np.zeros((3, 24, 5), dtype="U2"), "x.npz")

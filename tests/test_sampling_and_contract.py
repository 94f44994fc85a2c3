"""Sampling is deterministic and shardable; the contract is detected only when unambiguous."""

from __future__ import annotations

import pytest
import torch

from gandiag.data.images import to_uint8_nchw
from gandiag.errors import AmbiguousOutput, GandiagError, GeneratorOutputError
from gandiag.generator.contract import GeneratorContract, detect, parse_range
from gandiag.generator.loading import LoadedGenerator
from gandiag.generator.sampling import BLOCK, latents, probe, shard_ranges


def test_latents_do_not_depend_on_batching():
    c = GeneratorContract(latent_dim=5)
    whole, _ = latents(c, 0, 3000, seed=7)
    parts = torch.cat([latents(c, a, b, seed=7)[0] for a, b in shard_ranges(3000, 97)])
    assert torch.equal(whole, parts)
    assert not torch.equal(whole, latents(c, 0, 3000, seed=8)[0])


def test_shards_cover_every_sample_once():
    n = 5 * BLOCK + 17
    seen = sorted(i for r in range(3) for a, b in shard_ranges(n, 100, rank=r, world=3) for i in range(a, b))
    assert seen == list(range(n))


def test_uniform_latents_and_balanced_labels():
    c = GeneratorContract(latent_dim=3, latent_dist="uniform", num_classes=10)
    z, y = latents(c, 0, 100, seed=0)
    assert z.min() >= -1 and z.max() <= 1
    assert torch.bincount(y).tolist() == [10] * 10


@pytest.mark.parametrize("shape, dtype, lo, hi, layout, rng", [
    ((4, 3, 16, 16), torch.float32, -1, 1, "NCHW", "-1,1"),
    ((4, 16, 16, 3), torch.float32, 0, 1, "NHWC", "0,1"),
    ((4, 1, 8, 8), torch.uint8, 0, 255, "NCHW", "uint8"),
    ((4, 8, 8, 1), torch.float32, 0, 255, "NHWC", "uint8"),
])
def test_detect_layout_and_range(shape, dtype, lo, hi, layout, rng):
    x = torch.linspace(lo, hi, int(torch.tensor(shape).prod())).reshape(shape).to(dtype)
    c = detect(GeneratorContract(latent_dim=4), x)
    assert (c.kind, c.layout, c.output_range) == ("images", layout, rng)
    assert c.sample_shape[0] in (1, 3)


def test_ambiguous_layout_asks_for_flag():
    with pytest.raises(GeneratorOutputError, match="--layout"):
        detect(GeneratorContract(latent_dim=4), torch.zeros(2, 3, 5, 3))
    c = detect(GeneratorContract(latent_dim=4, layout="NCHW", output_range="0,1"), torch.zeros(2, 3, 5, 3))
    assert c.sample_shape == (3, 5, 3)


@pytest.mark.parametrize("lo,hi", [(0.46, 0.52), (0.0, 0.0), (0.1, 0.99), (0.01, 0.6)])
def test_range_inside_0_1_without_both_ends_is_never_guessed(lo, hi):
    """A tanh generator whose outputs sit in [0.46, 0.52] read as [0, 1] would be 1.5x too bright: ask."""
    probe = torch.linspace(lo, hi, 2 * 3 * 4 * 4).view(2, 3, 4, 4)
    with pytest.raises(AmbiguousOutput, match="--output-range"):
        detect(GeneratorContract(latent_dim=4, layout="NCHW"), probe)


@pytest.mark.parametrize("lo,hi,want", [(-0.01, 0.02, "-1,1"), (0.0, 1.0, "0,1"), (0.01, 0.99, "0,1"),
                                        (0.0, 200.0, "uint8")])
def test_range_decided_by_unambiguous_evidence(lo, hi, want):
    probe = torch.linspace(lo, hi, 2 * 3 * 4 * 4).view(2, 3, 4, 4)
    c = detect(GeneratorContract(latent_dim=4, layout="NCHW"), probe)
    assert c.output_range == want and c.decided["output_range"] == "probe"


def test_probe_draws_more_before_asking():
    """The first 16 samples sit inside (0, 1); later ones reach both ends: decided from the larger probe."""
    calls = []

    def forward(z, labels=None):
        calls.append(len(z))
        spread = 1.0 if sum(calls) > 16 else 0.2
        return (0.5 + spread * 0.5 * torch.tanh(4 * z[:, :1])).view(-1, 1, 1, 1).expand(-1, 1, 4, 4)

    gen = LoadedGenerator(forward, None, "test", "mem")
    c = probe(gen, GeneratorContract(latent_dim=4, layout="NCHW"), seed=0, device="cpu")
    assert c.output_range == "0,1" and sum(calls) > 16
    never = LoadedGenerator(lambda z, labels=None: torch.full((len(z), 1, 4, 4), 0.5) + 0.01 * z[:, :1, None, None],
                            None, "test", "mem")
    with pytest.raises(AmbiguousOutput, match=r"over 256 samples.*--output-range"):
        probe(never, GeneratorContract(latent_dim=4, layout="NCHW"), seed=0, device="cpu")


def test_unknown_range_asks_for_flag():
    with pytest.raises(GeneratorOutputError, match="--output-range"):
        detect(GeneratorContract(latent_dim=4), torch.full((2, 3, 4, 4), 300.0))


def test_uint8_conversion_rounds_like_torch_fidelity():
    x = torch.tensor([-1.0, 0.0, 1.0, 0.5]).view(1, 1, 2, 2)
    out = to_uint8_nchw(x, GeneratorContract(latent_dim=1, layout="NCHW", output_range="-1,1"))
    assert out.flatten().tolist() == [0, 128, 255, 191]


def test_range_spellings():
    assert parse_range("[-1, 1]") == "-1,1" and parse_range("0..1") == "0,1" and parse_range("255") == "uint8"
    with pytest.raises(GandiagError):
        parse_range("[0, 2]")


def test_bad_contract_values():
    with pytest.raises(GandiagError, match="latent"):
        GeneratorContract(latent_dim=0).validate()
    with pytest.raises(GandiagError, match="distribution"):
        GeneratorContract(latent_dim=2, latent_dist="cauchy").validate()


class _Optional(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 8)

    def forward(self, z, labels=None):
        return self.fc(z)


class _Required(_Optional):
    def forward(self, z, labels):
        return self.fc(z)


class _Alone(_Optional):
    def forward(self, z):
        return self.fc(z)


@pytest.mark.parametrize("net,want", [(_Required, True), (_Optional, None), (_Alone, False)])
def test_whether_a_module_takes_labels_is_read_from_forward(net, want):
    from gandiag.generator.introspect import module_contract, takes_labels

    assert takes_labels(net()) is want
    assert takes_labels(torch.jit.script(net())) is want
    contract, _, _ = module_contract(net())
    # the first layer says the latent size only when no labels can go in beside the latent
    assert (contract is not None and contract.latent_dim == 4) == (want is not True)


def test_probe_tries_a_one_by_one_map_when_flat_latents_fail():
    """--latent-dim 8 on a network that takes (N, 8, 1, 1): the probe finds the shape and says it decided it."""
    weight = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(0))

    def conv(z, labels=None):
        if z.ndim != 4:
            raise GeneratorOutputError("the generator failed on a batch: expected 4-d input")
        return torch.tanh(torch.nn.functional.conv_transpose2d(z, weight))

    gen = LoadedGenerator(conv, None, "test", "mem")
    c = probe(gen, GeneratorContract(latent_dim=8).merged(latent_dim=8), seed=0, device="cpu")
    assert c.latent_shape == (8, 1, 1) and c.decided["latent_shape"] == "probe"
    squeezed = LoadedGenerator(lambda z, labels=None: conv(z[:, :, 0]), None, "t", "m")  # fails on every shape
    with pytest.raises(GeneratorOutputError, match=r"called with latents \(N, 8, 1, 1\)") as err:
        probe(squeezed, GeneratorContract(latent_dim=8).merged(latent_shape=(8, 1, 1)), seed=0, device="cpu")
    assert "--latent-shape" not in str(err.value)  # the flag said the shape: it is kept, not second-guessed
    with pytest.raises(GeneratorOutputError, match=r"--latent-shape if it takes latents shaped otherwise"):
        probe(LoadedGenerator(lambda z, labels=None: conv(z[None]), None, "t", "m"),
              GeneratorContract(latent_dim=8).merged(latent_dim=8), seed=0, device="cpu")

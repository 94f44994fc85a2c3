"""Drawing samples from a generator: deterministic, batched, shardable by seed.

Latents come in fixed blocks of ``BLOCK`` rows, block ``b`` drawn from a CPU
``torch.Generator`` seeded with ``(seed, b)``. Sample ``i`` therefore gets the
same latent whatever the batch size, the device, or how the blocks are split
across ``torchrun`` ranks (rank r of w takes blocks r, r+w, ...): the same
seed always evaluates the same samples. Conditional generators get labels
``i mod num_classes``, a balanced design.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Optional

import torch

from ..errors import AmbiguousOutput, GeneratorOutputError, NonFiniteOutput
from .contract import GeneratorContract, detect
from .loading import LoadedGenerator

BLOCK = 1024
BLOCK_SEED_STRIDE = 1_000_003  # a prime: block seeds seed*stride + b never collide between seeds for b < stride


def draw_latents(contract: GeneratorContract, n: int, g: torch.Generator) -> torch.Tensor:
    """n latents from the contract's distribution (normal, or uniform on [-1, 1]), on the CPU."""
    if contract.latent_dist == "uniform":
        return torch.rand(n, contract.latent_dim, generator=g) * 2 - 1
    return torch.randn(n, contract.latent_dim, generator=g)


def _block_latents(contract: GeneratorContract, seed: int, block: int) -> torch.Tensor:
    return draw_latents(contract, BLOCK, torch.Generator().manual_seed((int(seed) * BLOCK_SEED_STRIDE + block) % (2**63)))


def latents(contract: GeneratorContract, start: int, stop: int, seed: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Latents (and labels) of samples ``start..stop-1`` (CPU tensors)."""
    blocks = range(start // BLOCK, (stop - 1) // BLOCK + 1)
    z = torch.cat([_block_latents(contract, seed, b) for b in blocks])
    off = blocks[0] * BLOCK
    z = z[start - off : stop - off]
    labels = torch.arange(start, stop) % contract.num_classes if contract.num_classes else None
    return z, labels


def shard_ranges(n: int, batch_size: int, rank: int = 0, world: int = 1) -> list[tuple[int, int]]:
    """Batches of this rank: whole BLOCKs are dealt round-robin, then cut to batch_size."""
    out = []
    for b in range(rank, (n + BLOCK - 1) // BLOCK, world):
        lo, hi = b * BLOCK, min((b + 1) * BLOCK, n)
        out.extend((s, min(s + batch_size, hi)) for s in range(lo, hi, batch_size))
    return out


def generator_inputs(z: torch.Tensor, labels, contract: Optional[GeneratorContract]):
    """Flat latents and class indices as the generator takes them: its latent shape, its label format."""
    if contract is None:
        return z, labels
    if z.ndim == 2 and contract.latent_shape and tuple(contract.latent_shape) != (z.shape[1],):
        z = z.reshape(z.shape[0], *contract.latent_shape)
    if labels is not None and contract.label_format == "onehot":
        labels = torch.nn.functional.one_hot(labels.long(), contract.num_classes).float()
    return z, labels


def run_generator(gen: LoadedGenerator, z: torch.Tensor, labels, device: str,
                  contract: Optional[GeneratorContract] = None) -> torch.Tensor:
    """The one generator call: inputs shaped by the contract, no gradients, one output checked for its batch size.

    Latents are always drawn flat, (N, latent_dim), and reshaped here, so a
    network taking (N, 100, 1, 1) and a wrapper taking (N, 100) see the same
    numbers and give the same metrics.
    """
    z, labels = generator_inputs(z, labels, contract)
    z = z.to(device)
    labels = labels.to(device) if labels is not None else None
    with torch.no_grad():
        out = gen.forward(z, labels)
    if isinstance(out, (tuple, list)):
        out = out[0]
    out = torch.as_tensor(out)
    if out.shape[0] != z.shape[0]:
        raise GeneratorOutputError(f"generator returned {out.shape[0]} samples for a batch of {z.shape[0]} latents")
    return out


PROBE = 16  # samples in the probe batch that detects the output's kind, layout and range
PROBE_MORE = 256  # samples drawn when the first probe cannot decide (an output range inside [0, 1], say)


def model_inputs(contract: GeneratorContract, start: int, stop: int, seed: int, inputs=None):
    """(inputs, labels) of samples ``start..stop-1``: drawn latents, or a translator's inputs read in order."""
    if contract.is_translator:
        if inputs is None:
            raise GeneratorOutputError("a translator needs inputs: pass --inputs DIR|NPZ|bundled side")
        return inputs.batch(contract, start, stop), None
    return latents(contract, start, stop, seed)


def probe(gen: LoadedGenerator, contract: GeneratorContract, seed: int, device: str,
          inputs=None) -> GeneratorContract:
    """Run a small batch to detect the output kind, layout and range; a larger one when that cannot decide.

    Undecided after the larger probe, the error asks for the flag: a guessed range shifts every metric.
    A generator that fails on flat latents whose shape nothing decided is tried once more with the
    convolutional generators' ``(latent_dim, 1, 1)``; the contract records that the probe decided it.
    """
    first = min(PROBE, inputs.n) if inputs is not None and contract.is_translator else PROBE
    try:
        out = _probe_batch(gen, contract, first, seed, device, inputs=inputs)
    except (AmbiguousOutput, NonFiniteOutput):  # it ran: NaN is the model's, not a latent shape to try again
        raise
    except GeneratorOutputError as exc:
        if contract.is_translator:
            raise GeneratorOutputError(f"{exc} (the translator was given inputs shaped "
                                       f"{(first,) + tuple(contract.shape)})") from None
        contract, out = _as_a_map(gen, contract, seed, device, exc)
    try:
        return detect(contract, out)
    except AmbiguousOutput:
        last = min(PROBE_MORE, inputs.n) if inputs is not None and contract.is_translator else PROBE_MORE
        more = torch.cat([out] + [_probe_batch(gen, contract, min(PROBE, last - start), seed, device, start, inputs)
                                  for start in range(first, last, PROBE)])
        return detect(contract, more)


def _as_a_map(gen, contract: GeneratorContract, seed: int, device: str, failure: GeneratorOutputError):
    """(contract, probe batch) with latents shaped (latent_dim, 1, 1), or the first failure with a hint."""
    if contract.decided.get("latent_shape") is None and not contract.latent_shape:
        mapped = replace(contract, latent_shape=(contract.latent_dim, 1, 1),
                         decided={**contract.decided, "latent_shape": "probe"})
        try:
            return mapped, _probe_batch(gen, mapped, PROBE, seed, device)
        except GeneratorOutputError:
            pass
    raise GeneratorOutputError(f"{failure}{_probe_hint(contract)}") from None


def _probe_hint(contract: GeneratorContract) -> str:
    """What to try when the first call of a generator fails: the contract fields that were not read from anywhere."""
    hints = []
    if contract.decided.get("latent_shape") is None and not contract.latent_shape:
        hints.append(f"--latent-shape if it takes latents shaped otherwise than ({contract.latent_dim},) "
                     f"(the PyTorch DCGAN tutorial's: {contract.latent_dim},1,1)")
    if not contract.num_classes:
        hints.append("--num-classes if it is conditional")
    return ("; called with latents (N, " + ", ".join(map(str, contract.shape)) + ")"
            + (" and labels" if contract.num_classes else "") + ": pass " + ", or ".join(hints)) if hints else ""


def _probe_batch(gen, contract, n: int, seed: int, device: str, start: int = 0, inputs=None) -> torch.Tensor:
    z, labels = model_inputs(contract, start, start + n, seed, inputs)
    out = run_generator(gen, z, labels, device, contract)
    _check_finite(out)
    return out.detach().cpu()


def _check_finite(out: torch.Tensor) -> None:
    if out.is_floating_point() and not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).sum())
        raise NonFiniteOutput(f"generator output contains NaN or Inf ({bad} values in one batch)")


def sample_batches(
    gen: LoadedGenerator, contract: GeneratorContract, n: int, seed: int, batch_size: int, device: str,
    rank: int = 0, world: int = 1, inputs=None,
) -> Iterator[tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """Yield (samples, labels): each batch validated and in its sample kind's canonical form.

    ``inputs``: a translator's (:class:`gandiag.translation.inputs.TranslatorInputs`), read in sample order.
    """
    from ..data.kinds import by_name

    kind = by_name(contract.kind)
    for start, stop in shard_ranges(n, batch_size, rank, world):
        z, labels = model_inputs(contract, start, stop, seed, inputs)
        out = run_generator(gen, z, labels, device, contract)
        _check_finite(out)
        yield kind.canonical(out, contract), labels

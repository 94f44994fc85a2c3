"""The pipeline's translator stages: open the inputs and the other direction, translate once, measure.

A translator is evaluated like a latent generator (its outputs against the
target domain's real data: FID, KID, PRDC on the shared features) with what
only translation has on top, all from the same pass:

1. :func:`open_translator`: its inputs (``--inputs``, else the side of the
   bundled pair its checkpoint names), its contract completed from them, its
   other direction (``--inverse``, else the one its checkpoint holds);
2. :func:`translation_stream`: inputs in order through the translator; each
   batch's outputs go on to the feature extractors, and the cycle
   (inverse of the output) and the paired truth are measured on the way;
3. :func:`finish_direction`: identity error (target samples through the
   translator), label preservation, and the :class:`TranslationRun` the
   diagnostics and the report read;
4. :func:`other_direction`: the same evaluation B -> A with the roles swapped,
   its keys suffixed ``:b2a``.

Translations go back through the inverse as 8-bit images, as saved images would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import torch

from ..data import domains, kinds
from ..errors import DataError, GandiagError
from ..generator.contract import GeneratorContract
from ..generator.loading import LoadedGenerator, LoadOptions, load_generator
from ..generator.sampling import probe, run_generator, sample_batches, shard_ranges
from .inputs import TranslatorInputs, complete_contract, to_generator_input
from .run import KEEP, TranslationRun

IDENTITY_N = 1024  # target-domain samples sent through the translator for the identity error


@dataclass
class Translator:
    """A translator target's setup: where its inputs come from, its truth, its other direction."""

    direction: str  # "a2b" or "b2a"
    inputs: TranslatorInputs
    pair: Optional[domains.DomainPair] = None  # the bundled pair it was trained on
    inverse: Optional[LoadedGenerator] = None
    inverse_contract: Optional[GeneratorContract] = None  # completed by a probe once the target data is known
    paired: bool = False  # --paired: the real data's sample i is input i's true translation
    inverse_from: Optional[str] = None  # "checkpoint" or the --inverse path
    run: Optional[TranslationRun] = None
    measures: object = None
    truth_direction: Optional[str] = None  # the pair's direction these inputs and targets go, when bundled

    def truth(self) -> Optional[Callable]:
        if self.pair is None:
            return None
        return self.pair.truth(self.truth_direction or self.direction)


def pair_of_file(gen: LoadedGenerator) -> Optional[domains.DomainPair]:
    parsed = domains.parse(gen.real_source)
    return parsed[0] if parsed else None


def open_translator(gen: LoadedGenerator, contract: GeneratorContract, opts) -> tuple:
    """(completed contract, :class:`Translator`) of a translator, or (contract, None) for a latent generator."""
    if not contract.is_translator and not opts.inputs:
        _refuse_image_latent(gen, contract)
        given = [flag for flag, value in (("--inverse", opts.inverse), ("--paired", opts.paired)) if value]
        if given:  # a translator's flags on a generator of latents would be silently ignored
            raise GandiagError(f"{' and '.join(given)}: {gen.path} is a generator of latents, not a translator "
                               "(these flags apply to image-to-image translators)")
        return contract, None
    if not contract.is_translator and contract.decided.get("takes") == "file":
        raise GandiagError(f"--inputs: {gen.path} is a generator of latents, not a translator")
    pair = pair_of_file(gen)
    spec = opts.inputs or (f"{pair.name}:a" if pair else None)
    if spec is None:
        raise GandiagError(f"{gen.path} is a translator ({contract.takes} in): pass --inputs DIR|NPZ|bundled side "
                           f"(one of {', '.join(s.name for s in domains.sources())}) with the samples to translate")
    inputs = open_inputs(spec, opts, contract.takes if contract.is_translator else None)
    how = "flag" if opts.inputs else "file"
    contract = complete_contract(contract, inputs, how).merged(input_range=opts.input_range)
    if contract.takes == "images" and contract.input_range is None:
        raise GandiagError(f"{gen.path}: the range the translator takes its input images in is not stored in the "
                           "file: pass --input-range [-1,1], [0,1] or uint8 (CycleGAN's is [-1,1])")
    if opts.num_samples is not None and opts.num_samples > inputs.n:
        raise DataError(f"-n {opts.num_samples}: the inputs {spec!r} hold only {inputs.n} samples")
    inverse, inverse_from = gen.inverse, ("checkpoint" if gen.inverse is not None else None)
    if opts.inverse:
        inverse, inverse_from = load_generator(Path(opts.inverse), LoadOptions.from_options(opts)), opts.inverse
    t = Translator("a2b", inputs, None, inverse, None, bool(opts.paired), inverse_from)
    t.pair, t.truth_direction = bundled_truth(pair, spec, opts.real)
    return contract, t


def bundled_truth(file_pair, inputs_spec: str, real_spec: Optional[str]) -> tuple:
    """(pair, direction) when the inputs and the target are the two sides of one bundled pair, whose truth is known.

    The checkpoint's own pair with no --inputs and no --real: A -> B. Named sides, ``--inputs digits-inverted:b
    --real digits-inverted:a``: B -> A. Anything else (a folder, sides of different pairs): no truth.
    """
    if file_pair is not None and real_spec is None and inputs_spec == f"{file_pair.name}:a":
        return file_pair, "a2b"
    got, want = domains.parse(inputs_spec), domains.parse(real_spec or "")
    if got and want and got[0] is want[0] and got[1] and want[1] and got[1] != want[1]:
        return got[0], f"{got[1]}2{want[1]}"
    return None, None



def _refuse_image_latent(gen: LoadedGenerator, contract: GeneratorContract) -> None:
    """An input shaped like an image, on a file that does not say what it is: never guessed a latent or a translator."""
    from ..generator.contract import image_like

    if image_like(contract.latent_shape) and contract.decided.get("takes") is None \
            and contract.decided.get("latent_shape") != "flag":
        shape = ",".join(map(str, contract.latent_shape))
        raise GandiagError(f"{gen.path} takes inputs shaped (N, {shape}), like images: if it is a translator "
                           "(image-to-image), pass --inputs DIR|NPZ|bundled side with the images to translate "
                           f"(and --input-range); if it generates from noise maps of that shape, pass --latent-shape "
                           f"{shape}")


def open_inputs(spec: str, opts, kind: Optional[str]) -> TranslatorInputs:
    from ..data.sources import load_real

    samples = load_real(spec, None, opts.seed, opts.recursive, hint=kind or "images")
    if not hasattr(samples, "kind"):
        raise DataError(f"--inputs {spec!r} holds FID statistics, not samples to translate")
    return TranslatorInputs(samples, spec, opts.num_samples)


def probe_inverse(t: Translator, forward: GeneratorContract, target, opts) -> None:
    """The inverse's contract, completed on the target domain's samples (its inputs)."""
    inv = t.inverse
    base = inv.contract
    if base is None:
        known = {k: v for k, (v, _) in inv.known.items() if k in ("kind", "layout", "output_range")}
        base = GeneratorContract(latent_dim=1, takes=forward.kind, input_range=forward.input_range, **known,
                                 decided={"input_range": "forward translator"})
    samples = TranslatorInputs(target, "the target domain", None)
    contract = complete_contract(replace(base, takes=forward.kind), samples, "flag")
    if contract.takes == "images" and contract.input_range is None:
        contract = replace(contract, input_range=forward.input_range)
    t.inverse_contract = probe(inv, contract, opts.seed, opts.device, inputs=samples)


def canonical_call(gen: LoadedGenerator, contract: GeneratorContract, device: str, batch_size: int) -> Callable:
    """canonical samples -> the translator's canonical outputs, in batches (for the cycle and the diagnostics)."""
    kind = kinds.by_name(contract.kind)

    def call(x: torch.Tensor) -> torch.Tensor:
        outs = []
        for i in range(0, x.shape[0], batch_size):
            raw = run_generator(gen, to_generator_input(x[i:i + batch_size], contract), None, device, contract)
            if raw.is_floating_point() and not torch.isfinite(raw).all():
                from ..errors import NonFiniteOutput

                raise NonFiniteOutput(f"{gen.path}: translator output contains NaN or Inf")
            outs.append(kind.canonical(raw, contract).cpu())
        return torch.cat(outs) if outs else x[:0]

    return call


def translation_stream(tgt, real, opts, timings):
    """(outputs, None) batches for the feature pass; records the cycle, the truth and the kept samples."""
    from .measures import Measures

    t: Translator = tgt.translator
    run = new_run(tgt, real, opts)
    t.run, t.measures = run, Measures(tgt.kind)
    paired_targets = _paired_targets(t, real, tgt.n)
    batches = sample_batches(tgt.generator, tgt.contract, tgt.n, opts.seed, opts.batch_size, opts.device,
                             inputs=t.inputs)
    kept_x, kept_y, kept_rec = [], [], []
    for (start, stop), (y, _) in zip(shard_ranges(tgt.n, opts.batch_size), batches):
        x = t.inputs.canonical(start, stop)
        rec = run.inverse(y) if run.inverse is not None else None
        truth = paired_targets[start:stop] if paired_targets is not None else (
            run.truth(x) if run.truth is not None else None)
        t.measures.update(x, y, rec, truth)
        if start < KEEP:
            kept_x.append(x[:KEEP - start]), kept_y.append(y[:KEEP - start].cpu())
            if rec is not None:
                kept_rec.append(rec[:KEEP - start])
        yield y, None
    run.inputs, run.outputs = torch.cat(kept_x), torch.cat(kept_y)
    run.reconstructions = torch.cat(kept_rec) if kept_rec else None


def new_run(tgt, real, opts) -> TranslationRun:
    t: Translator = tgt.translator
    forward = canonical_call(tgt.generator, tgt.contract, opts.device, opts.batch_size)
    inverse = None
    if t.inverse is not None:
        inverse = canonical_call(t.inverse, t.inverse_contract, opts.device, opts.batch_size)
    target = real.samples if real is not None else None
    return TranslationRun(
        t.direction, tgt.kind, t.inputs.spec, real.spec if real is not None else None, tgt.n, forward, inverse,
        t.truth(), input_labels=t.inputs.labels[:tgt.n] if t.inputs.labels is not None else None,
        target_samples=_first(target, KEEP) if target is not None else None,
        target_labels=None if target is None or target.labels is None else target.labels,
        paired=t.paired or t.truth() is not None)


def _first(samples, n: int) -> torch.Tensor:
    data = getattr(samples, "data", None)
    if isinstance(data, torch.Tensor):
        return data[:n]
    return TranslatorInputs(samples, "target", n).data


def _paired_targets(t: Translator, real, n: int) -> Optional[torch.Tensor]:
    """--paired: the real data in order, input i's true translation at row i."""
    if not t.paired:
        return None
    if real is None or real.samples is None:
        raise GandiagError("--paired needs --real samples (the true translations, in the inputs' order)")
    targets = TranslatorInputs(real.samples, real.spec, n).data
    if targets.shape[0] < n:
        raise DataError(f"--paired: {real.spec!r} holds {targets.shape[0]} samples for {n} inputs; paired data "
                        "needs one true translation per input, in the same order")
    return targets


def finish_direction(ctx, tgt, real, opts) -> dict:
    """This direction's translation metrics (keys plain for a2b, suffixed for b2a); fills ``ctx.translation``."""
    from ..results import metric_key
    from .measures import label_preservation

    t: Translator = tgt.translator
    run = t.run
    if real is not None and real.samples is not None:
        y = _first(real.samples, IDENTITY_N)
        if tuple(y.shape[1:]) == tuple(t.inputs.sample_shape):
            t.measures.update_identity(y, run.forward(y))
    entries = dict(t.measures.result())
    if run.input_labels is not None and run.target_labels is not None and ctx.real is not None \
            and "pool" in ctx.real.roles:
        entries["label_preservation"] = label_preservation(
            ctx.fake.features("pool").double().numpy(), ctx.real.features("pool").double().numpy(),
            real.samples.labels, run.input_labels)
    run.measures = entries
    ctx.translation = run
    return {metric_key(name, None, run.suffix): value for name, value in entries.items()}


def other_direction(tgt, real, opts):
    """(target, real) of the B -> A evaluation: the inverse fed the target domain, judged against the inputs."""
    from ..inputs import Real, Target

    t: Translator = tgt.translator
    if real is None or real.samples is None:
        raise GandiagError("the other direction (B -> A) needs the target domain's samples: pass --real")
    inputs = TranslatorInputs(real.samples, real.spec, opts.num_samples)
    back = Translator("b2a", inputs, t.pair, tgt.generator, tgt.contract, t.paired, "forward",
                      truth_direction=_reverse(t.truth_direction))
    info = {"path": str(tgt.path), "direction": "b2a", "inverse_of": tgt.info.get("path"),
            "inverse_from": t.inverse_from}
    n = min(opts.num_samples or inputs.n, inputs.n)
    other = Target(tgt.path, tgt.kind, n, info, generator=t.inverse, contract=t.inverse_contract, translator=back)
    source = t.inputs.samples
    return other, Real(t.inputs.spec, source, source.content_hash())


def _reverse(direction: Optional[str]) -> Optional[str]:
    return f"{direction[-1]}2{direction[0]}" if direction else None


def inputs_info(t: Translator) -> dict:
    """What results.generator records of a translator's inputs: gates compare runs on the same inputs only."""
    s = t.inputs.samples
    return {"source": t.inputs.spec, "n": t.inputs.n, "description": t.inputs.description,
            "content_sha256": s.content_hash() if hasattr(s, "content_hash") else None,
            "paired": t.paired or t.truth() is not None, "inverse": t.inverse_from,
            "pair": t.pair.name if t.pair is not None else None}


def check_world(world: int) -> None:
    if world > 1:
        raise GandiagError("translators are evaluated by one process for now; run without torchrun")


__all__ = ["Translator", "open_translator", "translation_stream", "finish_direction", "other_direction"]

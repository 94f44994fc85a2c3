"""``gandiag diagnose CKPT``: the mode-collapse and gradient-health verdicts, with their reasons.

The same pipeline as ``gandiag evaluate`` (same options, same seed, same
samples), with the metrics cut to FID unless ``--metrics`` asks for more, and
a printout built for the question "is it collapsing, is it training
healthily?". The exit code is 0 whatever the verdicts: gating is
``gandiag evaluate --gate``'s job. A generator whose output is NaN/Inf cannot
be sampled; diagnose then still runs the gradient-health checks on it and
reports mode collapse as severe (no usable sample).
"""

from __future__ import annotations

import click

from ..hookspecs import hookimpl
from ..safety.text import clean

LEVEL_MARK = {"severe": "!!", "unhealthy": "!!", "partial": "! ", "warning": "! ", "info": "  "}


def _csv(ctx, param, value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def format_diagnosis(results) -> str:
    """The verdicts, every reason (level, message), and the headline numbers."""
    lines = [f"gandiag diagnose: {results.generator.get('path', '?')} ({results.generator.get('format', '?')})"
             + (f" vs {results.real['source']}" if results.real else "")]
    p = results.provenance or {}
    if p:
        lines.append(f"  {p.get('num_samples')} samples, seed {p.get('seed')}, features {(p.get('extractor') or {}).get('name')}")
    others = [n for n in results.diagnostics if n not in ("mode_collapse", "gradient_health")]  # temporal_health...
    for name in ["mode_collapse", "gradient_health"] + others:
        d = results.diagnostics.get(name)
        if not isinstance(d, dict):
            lines.append(f"{name}: not run (does not apply)")
            continue
        lines.append(f"{name}: {d.get('verdict')}")
        if name == "mode_collapse" and d.get("modes_total"):
            extra = f", {d['high_quality_fraction']:.1%} high quality" if d.get("high_quality_fraction") is not None else ""
            lines.append(f"   modes captured {d.get('modes_captured')}/{d.get('modes_total')}{extra}; "
                         f"missing {d.get('missing_modes') or 'none'}")
        for r in d.get("reasons", []):
            lines.append(f"  {LEVEL_MARK.get(r.get('level'), '  ')}[{r.get('signal')}] {r.get('level')}: {r.get('message')}")
        if not d.get("reasons"):
            lines.append("     no signal fired")
        for part, err in (d.get("errors") or {}).items():
            lines.append(f"     ({part} could not run: {err})")
    for w in results.warnings:
        lines.append(f"  warning: {w}")
    return "\n".join(clean(line) for line in lines)  # data never sends control sequences to a terminal


def diagnose_unsampleable(target, opts, error) -> "object":
    """Results for a generator whose output cannot be sampled (NaN/Inf): gradient health only."""
    from ..diagnostics import reason
    from ..diagnostics.gradient_health import check
    from ..generator.loading import LoadOptions, load_generator
    from ..options import check as check_options
    from ..results import Results

    opts = check_options(opts)
    gen = load_generator(target, LoadOptions.from_options(opts))
    contract = gen.contract
    if contract is not None and opts.latent_dim:
        contract = contract.merged(latent_dim=opts.latent_dim)
    health = check(gen, contract, opts.seed, opts.device, None, opts.real)
    collapse = {"verdict": "severe", "missing_modes": None, "modes_captured": 0, "modes_total": None, "signals": {},
                "reasons": [reason("output", "severe", f"no usable sample: {error}", None, None)]}
    return Results(metrics={}, generator={"path": str(target), "format": gen.format, "loader": gen.loader, **gen.meta},
                   contract=contract.to_json() if contract else None, real=None,
                   provenance={"seed": opts.seed, "device": opts.device},
                   diagnostics={"mode_collapse": collapse, "gradient_health": health},
                   warnings=[f"sampling failed ({error}); only gradient health could be measured"])


@hookimpl(trylast=True)
def register_commands(cli):
    from ..cli import evaluation_options, run_evaluation

    @cli.command()
    @click.argument("target", type=click.Path())
    @evaluation_options
    @click.option("--metrics", callback=_csv, metavar="LIST",
                  help="Metrics to compute alongside [default: fid, or what applies without real data].")
    def diagnose(target, metrics, **kw):
        """Mode-collapse and gradient-health verdicts for a generator (exit 0 whatever they say)."""
        from dataclasses import replace

        from ..distributed import rank
        from ..errors import GandiagError, NonFiniteOutput
        from ..options import from_click
        from ..outputs import finish, plan_outputs, run_inputs

        json_path = kw.pop("json_path")
        opts = replace(from_click(kw), diagnostics=True)
        outputs = plan_outputs(json=json_path, reads=run_inputs(target, opts))  # refused before any work
        try:
            try:
                results = run_evaluation(target, replace(opts, metrics=metrics or ["fid"]))
            except GandiagError as exc:
                if metrics or "needs real data" not in str(exc):
                    raise
                results = run_evaluation(target, replace(opts, metrics=None))
        except NonFiniteOutput as exc:  # a diverged generator is a diagnosis; a wrong flag or shape is bad usage
            results = diagnose_unsampleable(target, opts, exc)
        finish(results, outputs=outputs)  # under torchrun: rank 0 writes and prints
        if rank() == 0:
            click.echo(format_diagnosis(results))

"""The ``mode_collapse`` diagnostic: one verdict over every signal that applies.

Design: one registered diagnostic calling signal modules, rather than one
plugin per signal, so the verdict always sees every signal's numbers and the
results JSON keeps one place to read (``diagnostics.mode_collapse``). A
signal is any object with ``SIGNAL`` (its key), ``applies(ctx)`` and
``compute(ctx) -> dict`` whose dict carries ``reasons``; :data:`SIGNALS`
lists the built-in ones, and a plugin that wants another signal registers its
own ``mode_collapse`` diagnostic (first registration wins) built with
``ModeCollapse(signals=SIGNALS + (mine,))``.

Output (top level, the keys the issue and the gates name): ``verdict``
(``none`` / ``partial`` / ``severe``: the worst level among the reasons),
``reasons`` (which signals fired, values, thresholds), ``missing_modes``
(labels where modes are known: mixture mode indices, or classes),
``modes_captured``, ``modes_total``, ``high_quality_fraction`` (2D only),
``reverse_kl`` (2D), ``kl_to_real`` (classes), then ``signals``: each
signal's own numbers, and ``errors`` for a signal that failed. A failed
signal does not stop the others, but makes the verdict ``error`` (fail
closed: a check that crashed has not shown the model healthy).
"""

from __future__ import annotations

from . import (INFO, MODE_LEVELS, NOT_APPLICABLE, classifier_modes, duplicates, error_reasons, latent_sensitivity,
               mixture_modes, ndb, reason, run_parts, sequence_modes, verdict)

# sequences: their own duplicates (raw sequences, same key; the feature-space one stands aside) and shapes
SIGNALS = (mixture_modes, classifier_modes, ndb, duplicates, sequence_modes.DUPLICATES, sequence_modes.SHAPES,
           latent_sensitivity)


# Signals that can add evidence of a collapse but cannot, alone, show its absence (the latent check sees a
# generator that ignores its input, not one that draws three digits of ten): "none" from them alone is no verdict.
SUPPORTING = (latent_sensitivity.SIGNAL,)


class ModeCollapse:
    name = "mode_collapse"
    levels = MODE_LEVELS  # its verdict words, best first, worst last (readers tone verdicts by them)
    description = ("mode collapse: mixture modes, classifier classes, NDB, near-duplicates, sequence shapes, latent "
                   "sensitivity → none/partial/severe")

    def __init__(self, signals=SIGNALS):
        self.signals = tuple(signals)

    def applies(self, ctx) -> bool:
        if getattr(ctx, "translation", None) is not None:  # a translator's collapse is input_ignored's to judge
            return False
        return any(s.applies(ctx) for s in self.signals) or bool(self.skipped(ctx))

    def run(self, ctx) -> dict:
        out = summarise(*run_parts((s.SIGNAL, lambda s=s: s.compute(ctx)) for s in self.signals if s.applies(ctx)))
        skipped = self.skipped(ctx)
        if skipped:  # said, not silently left out; and "none" would claim what the skipped signals were to judge
            names = ", ".join(skipped)
            out["reasons"].append(reason("skipped", INFO, f"{names} skipped: they need the real samples' features, and "
                                         f"--real {ctx.real_statistics.name} holds FID statistics (mean, covariance) only"))
            out["skipped"] = skipped
            if out["verdict"] == "none":  # the signals that ran found no collapse; the ones that judge it did not run
                out["verdict"] = NOT_APPLICABLE
        elif out["verdict"] == "none" and out["signals"] and set(out["signals"]) <= set(SUPPORTING):
            out["reasons"].append(reason("supporting_only", INFO, f"only the {', '.join(out['signals'])} check ran (nothing to "
                                         "compare the samples with: no real data, or none that names its modes); "
                                         "finding no collapse there does not show that the modes are all drawn"))
            out["verdict"] = NOT_APPLICABLE
        return out

    def skipped(self, ctx) -> dict:
        """Signals left out because --real gave FID statistics, not samples: {signal: what of the real data it needs}.

        A signal says what it reads with ``REAL_FEATURES_USE = (role, what)``; it is listed when the
        generated features have that role (so it could have run on real features).
        """
        if getattr(ctx, "real_statistics", None) is None or getattr(ctx, "real", None) is not None:
            return {}
        return {s.SIGNAL: s.REAL_FEATURES_USE[1] for s in self.signals
                if getattr(s, "REAL_FEATURES_USE", None) and s.REAL_FEATURES_USE[0] in ctx.fake.roles}


def summarise(signals: dict, errors: dict | None = None, seconds: dict | None = None) -> dict:
    reasons = error_reasons(errors or {}) + [r for sig in signals.values() for r in sig.get("reasons", [])]
    order = {lvl: i for i, lvl in enumerate(("error", "severe", "partial", "info"))}
    reasons.sort(key=lambda r: order.get(r["level"], 9))
    out = {"verdict": verdict(reasons, MODE_LEVELS), "reasons": reasons,
           "missing_modes": None, "modes_captured": None, "modes_total": None}
    mix, cls = signals.get("mixture"), signals.get("classes")
    if mix is not None:
        out.update(missing_modes=mix["missing_modes"], starved_modes=mix["starved_modes"],
                   modes_captured=mix["modes_captured"], modes_total=mix["modes_total"],
                   high_quality_fraction=mix["high_quality_fraction"], reverse_kl=mix["reverse_kl"])
    elif cls is not None:
        out.update(missing_modes=cls["missing_classes"], absent_modes=cls["absent_classes"],
                   modes_captured=cls["classes_covered"], modes_total=cls["classes_total"],
                   kl_to_real=cls["kl_to_real"])
    out["signals"] = signals
    if errors:
        out["errors"] = errors
    if seconds:
        out["seconds"] = seconds
    return out

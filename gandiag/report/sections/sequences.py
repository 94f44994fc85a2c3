"""Sequence sections (kind ``sequences`` only): trajectories, temporal health with its autocorrelation curves,
and the sequences that differ only by a shift or a scale.

They appear only in runs of sequences (``kinds``); image and point reports
never show them. Everything judged is the diagnostics' own call
(``temporal_health``, the ``shapes`` and ``duplicates`` signals of
``mode_collapse``, docs/diagnostics.md); the trajectories are pictures, not a
verdict.
"""

from __future__ import annotations

import numpy as np

from .. import figures
from .common import Section, find_signal, fmt, reasons_block, scalars, verdict_block

KINDS = ("sequences",)


class Trajectories(Section):
    """Real and generated sequences drawn per channel, a row per class when labels exist."""

    name, title, order, kinds = "trajectories", "Trajectories: real vs generated", 20, KINDS
    PER_ROW = 8  # sequences of each set drawn in a panel

    def render(self, view):
        a = view.artifacts
        fake, real = a.get("fake_samples"), a.get("real_samples")
        if fake is None or np.ndim(fake) != 3:
            return view.empty(f"No sequences kept: {view.artifacts_note or 'none in these results'}.")
        real = real if real is not None and np.ndim(real) == 3 and real.shape[1:] == fake.shape[1:] else None
        k = self.PER_ROW
        rows = [("all", None if real is None else real[:k], fake[:k])]
        fl, rl = a.get("fake_labels"), a.get("real_labels")
        per_class = fl is not None and len(fl) == len(fake)
        if per_class:
            classes = sorted(set(int(c) for c in fl) | (set(int(c) for c in rl) if rl is not None else set()))
            rows = [(f"class {c}", real[np.asarray(rl) == c][:k] if real is not None and rl is not None
                     and len(rl) == len(real) else None, fake[np.asarray(fl) == c][:k]) for c in classes]
        channels = fake.shape[2]
        uri = figures.trajectories(rows, channels, "Real (blue) and generated (red) sequences")
        cap = (f"Up to {k} real and {k} generated sequences per panel, raw values, step on the x axis"
               + ("; one row per class (the conditional label or the classifier's prediction for generated "
                  "sequences, the real data's label)" if per_class else "")
               + (f"; the first {figures.MAX_PANELS} of {channels} channels" if channels > figures.MAX_PANELS else "")
               + ".")
        return view.render("{{ figure(uri, cap, 'sequence trajectories') }}", uri=uri, cap=cap)


class TemporalHealthSection(Section):
    """The temporal_health verdict, its autocorrelation curves and per-channel evidence."""

    name, title, order, kinds = "temporal_health", "Temporal health: variation and autocorrelation", 45, KINDS

    def render(self, view):
        d = view.diagnostic("temporal_health")
        if d is None:
            return view.empty("No temporal-health diagnostic in these results.")
        parts = [verdict_block(view, "temporal health", "temporal_health", d)]
        ac = d.get("autocorrelation") if isinstance(d.get("autocorrelation"), dict) else {}
        if isinstance(ac.get("acf_real"), list) and isinstance(ac.get("acf_fake"), list) and ac["acf_real"]:
            uri = figures.acf_curves(ac["acf_real"], ac["acf_fake"], "Autocorrelation per channel")
            parts.append(view.render("{{ figure(uri, cap, 'autocorrelation curves') }}", uri=uri, cap=(
                f"Mean autocorrelation per channel, lags 0–{fmt(ac.get('max_lag'))}, each sequence centred on its "
                f"own mean; the verdict reads their mean absolute gap ({fmt(ac.get('acf_distance'))}).")))
        rows = channel_rows(d)
        if rows:
            parts.append(view.render("{{ table(header, rows) }}", header=[
                "channel", "roughness real", "roughness generated", "ratio", "|Δx| ratio", "ACF gap",
                "range ratio (99th pct)"], rows=rows))
        summary = [(f"{part}.{k}", v) for part in ("frozen", "variation", "autocorrelation", "magnitude")
                   if isinstance(d.get(part), dict) for k, v in scalars(d[part])]
        if summary:
            parts.append(view.render("{{ kv_table(rows) }}{{ note(n) }}", rows=summary, n=(
                "Gates read these as temporal_health.<part>.<key>; the verdict as temporal_health = "
                "{ allow = [\"healthy\"] }.")))
        return "".join(parts)


def channel_rows(d: dict) -> list:
    v = d.get("variation") if isinstance(d.get("variation"), dict) else {}
    ac = d.get("autocorrelation") if isinstance(d.get("autocorrelation"), dict) else {}
    mg = d.get("magnitude") if isinstance(d.get("magnitude"), dict) else {}
    cols = [v.get("roughness_real"), v.get("roughness_fake"), v.get("roughness_ratio"), v.get("diff_ratio"),
            ac.get("acf_distance_per_channel"), mg.get("range_ratio_per_channel")]
    n = max((len(c) for c in cols if isinstance(c, list)), default=0)
    return [[c] + [fmt(col[c], 3) if isinstance(col, list) and c < len(col) else "—" for col in cols]
            for c in range(n)]


class SequenceShapes(Section):
    """The ``shapes`` signal: generated sequences that are copies of each other up to a shift, a scale or an offset."""

    name, title, order, kinds = "shapes", "Sequences that differ only by a shift or a scale", 62, KINDS
    SHOW_PAIRS = 4

    def render(self, view):
        owner, d = find_signal(view, "shapes")
        if d is None:
            return view.empty("No shapes signal in these results (it needs real sequences).")
        parts = [reasons_block(view, owner, d), view.render("{{ kv_table(rows) }}", rows=scalars(d))]
        pairs = [p for p in d.get("closest_pairs") or [] if isinstance(p, dict)]
        if pairs:
            parts.append(view.render("{{ table(['generated i', 'generated j', 'shape distance', 'lag', 'shift'], "
                                     "rows) }}",
                                     rows=[(p.get("i"), p.get("j"), fmt(p.get("distance")), fmt(p.get("lag")),
                                            "circular" if p.get("circular") else "linear") for p in pairs]))
        a = view.artifacts
        if "shape_pair_a" in a and "shape_pair_b" in a:
            k = min(self.SHOW_PAIRS, len(a["shape_pair_a"]))
            idx = a.get("shape_pair_index")
            labels = [f"{int(idx[r][0])} vs {int(idx[r][1])}" if idx is not None else f"pair {r}" for r in range(k)]
            uri = figures.aligned_pairs(a["shape_pair_a"][:k], a["shape_pair_b"][:k], a["shape_pair_lag"][:k],
                                        a["shape_pair_circular"][:k], labels)
            parts.append(view.render("{{ figure(uri, cap, 'closest shape pairs') }}", uri=uri, cap=(
                "The closest pairs, each channel z-scored, the second moved by the lag that aligns it: a pair drawn "
                "on top of each other is one sequence shifted and rescaled.")))
        return "".join(parts)

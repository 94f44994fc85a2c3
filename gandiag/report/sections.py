"""The built-in report sections, one class per section, registered as a default plugin.

Each reads what it needs from a :class:`~gandiag.report.RunView` (results,
diagnostics, artifacts) and tolerates anything missing: diagnostics written
by other plugins are read by the documented keys, with a few spellings
accepted, and a section with nothing to show says why in one line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from . import figures

GOOD_VERDICTS = {"none", "ok", "healthy", "pass", "passed", "good", "no_collapse", "no-collapse", "fine"}
BAD_WORDS = ("error", "severe", "unhealthy", "collapse", "diverg", "fail", "memoris", "memoriz", "vanish", "explod", "dead", "nan")


def tone(verdict) -> str:
    v = str(verdict or "").lower()
    if v in GOOD_VERDICTS:
        return "good"
    if any(w in v for w in BAD_WORDS) and not v.startswith("no"):
        return "bad"
    return "warn"


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            return str(v)
        return f"{v:.{digits}g}"
    return str(v)


def reasons(d: dict) -> list:
    out = []
    for r in d.get("reasons") or []:
        out.append(r if isinstance(r, str) else str(r.get("message", r)) if isinstance(r, dict) else str(r))
    return out


def first(d: Optional[dict], *keys):
    if not isinstance(d, dict):
        return None
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def scalars(d: dict, skip: Iterable = ()) -> list:
    """(key, formatted value) for the numbers, strings and short lists of numbers of a dict."""
    skip = set(skip) | {"verdict", "reasons"}
    out = []
    for k, v in d.items():
        if k in skip:
            continue
        if isinstance(v, (int, float, str, np.number)) or v is None:
            out.append((k, fmt(v)))
        elif isinstance(v, (list, tuple)) and len(v) <= 25 and all(
                isinstance(x, (int, float, str)) or x is None for x in v):
            out.append((k, ", ".join(fmt(x) for x in v) or "none"))
    return out


def find_diag(view, name: str) -> Optional[dict]:
    """``diagnostics[name]``, else ``diagnostics[*][name]`` or ``diagnostics[*]["signals"][name]``
    (NDB and duplicates are signals inside ``mode_collapse``)."""
    d = view.diagnostic(name)
    if d is not None:
        return d
    for other in (view.results.diagnostics or {}).values():
        if not isinstance(other, dict):
            continue
        for holder in (other, other.get("signals")):
            if isinstance(holder, dict) and isinstance(holder.get(name), dict):
                return holder[name]
    return None


def number_list(v) -> Optional[np.ndarray]:
    if isinstance(v, dict):
        v = list(v.values())
    if not isinstance(v, (list, tuple, np.ndarray)) or not len(v):
        return None
    try:
        a = np.asarray([np.nan if x is None else x for x in v], dtype=float)
    except (TypeError, ValueError):
        return None
    return a if a.ndim == 1 else None


class Section:
    name = "section"
    title = "Section"
    order = 500
    scope = "run"

    def render(self, view):  # pragma: no cover - interface
        raise NotImplementedError


# --------------------------------------------------------------------------- summary


class Summary(Section):
    name, title, order = "summary", "Summary", 10

    def render(self, view):
        r = view.results
        rows = []
        from ..results import METRIC_ORDER

        for name in sorted(r.metrics, key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else 99, k)):
            m = r.metrics[name] if isinstance(r.metrics[name], dict) else {}
            unc = "—"
            if isinstance(m.get("ci95"), (list, tuple)) and len(m["ci95"]) == 2:
                unc = f"95% CI {fmt(m['ci95'][0])} – {fmt(m['ci95'][1])}" + (f" ({m['bootstrap']} resamples)" if m.get("bootstrap") else "")
            elif m.get("std") is not None:
                unc = f"± {fmt(m['std'], 3)} (std)"
            hib = m.get("higher_is_better")
            rows.append((m.get("label", name), fmt(m.get("value")), unc, "↑" if hib else "↓" if hib is False else ""))
        diags = [(n, d, tone(d.get("verdict"))) for n, d in (r.diagnostics or {}).items()
                 if isinstance(d, dict) and "verdict" in d]
        diag_views = [(n, {"verdict": d.get("verdict"), "reasons": reasons(d)}, t) for n, d, t in diags]
        g = r.generator or {}
        facts = [("generator", g.get("path")), ("format", g.get("format")),
                 ("real data", (r.real or {}).get("description") or (r.real or {}).get("source")),
                 ("samples", (r.provenance or {}).get("num_samples")),
                 ("features", ((r.provenance or {}).get("extractor") or {}).get("name"))]
        return view.render("""
{{ kv_table(facts) }}
{% if rows %}{{ table(["metric", "value", "uncertainty", "better"], rows) }}{% else %}{{ note("No metrics in these results.") }}{% endif %}
{% for n, d, t in diags %}{{ verdict(n, d, t) }}{% endfor %}
{% if not diags %}{{ note("No diagnostics verdicts in these results.") }}{% endif %}
{% if gates %}<h4>Quality gates</h4>{{ table(["gate", "result", "detail"], gates) }}{% endif %}
{% if warnings %}<h4>Warnings</h4><ul>{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul>{% endif %}
""", facts=[(k, fmt(v)) for k, v in facts if v is not None], rows=rows, diags=diag_views, warnings=r.warnings or [],
           gates=[(g.get("name"), "pass" if g.get("passed") else "FAIL", g.get("message")) for g in (r.gates or [])])


# --------------------------------------------------------------------------- samples


class SampleGrid(Section):
    name, title, order = "samples", "Samples", 20
    PER_CLASS = 8

    def render(self, view):
        a = view.artifacts
        if "fake_samples" not in a:
            return view.empty(f"No samples kept: {view.artifacts_note or 'none in these results'}.")
        if str(a.get("kind")) == "points":
            return view.empty("The samples are 2-D points: see the mixture scatter under “Modes”.")
        fake = a["fake_samples"]
        labels = a.get("fake_labels")
        figs = []
        if labels is not None and len(labels) == len(fake):
            rows = []
            classes = sorted(set(int(c) for c in labels))
            for c in classes:
                sel = fake[labels == c][: self.PER_CLASS]
                pad = np.full((self.PER_CLASS - len(sel),) + fake.shape[1:], 255, np.uint8)
                rows.append(np.concatenate([sel, pad]))
            grid = figures.image_grid(np.concatenate(rows), ncol=self.PER_CLASS)
            figs.append((grid, f"Generated samples, one row per class ({', '.join(map(str, classes))}; "
                               "conditional label or the classifier's prediction)"))
        else:
            figs.append((figures.image_grid(fake), f"{len(fake)} generated samples"))
        if "real_samples" in a:
            figs.append((figures.image_grid(a["real_samples"][: len(fake)]), "Real samples, for comparison"))
        return view.render('<div class="row">{% for uri, cap in figs %}{{ figure(uri, cap, "samples", "fig grid") }}{% endfor %}</div>',
                           figs=figs)


# --------------------------------------------------------------------------- feature space


class FeatureSpace(Section):
    name, title, order = "feature_space", "Real vs generated in feature space", 30

    def render(self, view):
        a = view.artifacts
        if "pca_real" not in a or "pca_fake" not in a:
            return view.empty(f"No feature projection: {view.artifacts_note or 'no real data or pool features'}.")
        ex = a.get("pca_explained")
        feats = ((view.results.provenance or {}).get("extractor") or {}).get("name", "features")
        if str(a.get("kind")) == "points" and a["pca_real"].shape[1] == 2 and (ex is None or np.allclose(ex, 1)):
            xl, yl, cap = "x − mean", "y − mean", "The features of 2-D points are the points (centred on the real mean)."
        else:
            xl = f"PC1 ({100 * float(ex[0]):.1f}% of real variance)" if ex is not None and len(ex) > 0 else "PC1"
            yl = f"PC2 ({100 * float(ex[1]):.1f}%)" if ex is not None and len(ex) > 1 else "PC2"
            cap = (f"PCA of {feats} features fitted on the real set; up to 2,000 points per set. Generated points "
                   "outside the real cloud are off-manifold samples; real regions with no generated points are missed modes.")
        uri = figures.scatter(a["pca_real"], a["pca_fake"], f"{feats} features, 2-D projection", xl, yl)
        return view.render("{{ figure(uri, cap, 'feature space') }}", uri=uri, cap=cap)


# --------------------------------------------------------------------------- modes


class Modes(Section):
    name, title, order = "modes", "Modes", 40

    def render(self, view):
        from ..data.mixtures import MIXTURES

        d = view.diagnostic("mode_collapse")
        a = view.artifacts
        parts = []
        if d:
            parts.append(view.render("{{ verdict('mode collapse', d, t) }}{{ kv_table(rows) }}",
                                     d={"verdict": d.get("verdict"), "reasons": reasons(d)}, t=tone(d.get("verdict")),
                                     rows=scalars(d)))
        source = (view.results.real or {}).get("source")
        mixture = MIXTURES.get(source) if isinstance(source, str) else None
        if mixture is not None and str(a.get("kind")) == "points" and "fake_samples" in a:
            from ..data.mixtures import HQ_SIGMAS, mixture_mode_stats

            stats = mixture_mode_stats(a["fake_samples"], mixture)
            sig = find_diag(view, "mixture") or d
            counts = number_list(first(sig, "counts", "counts_per_mode", "mode_counts"))
            if counts is None or len(counts) != mixture.num_modes:
                counts = np.asarray(stats["counts"], float)
            captured = counts > 0
            uri = figures.scatter(a.get("real_samples"), a["fake_samples"], f"{mixture.name}: samples and modes",
                                  modes=mixture.means, mode_radius=HQ_SIGMAS * mixture.std, captured=captured)
            hist = figures.bars({"high-quality samples": counts}, [str(i) for i in range(len(counts))],
                                "Samples per mode", "count", highlight=~captured, highlight_label="missed mode")
            parts.append(view.render(
                '<div class="row">{{ figure(u1, c1, "mixture scatter") }}{{ figure(u2, c2, "mode histogram") }}</div>',
                u1=uri, c1=f"Crosses mark the {mixture.num_modes} modes, dashed circles the {HQ_SIGMAS:g}σ high-quality "
                           f"radius; black = missed. {stats['modes_captured']}/{mixture.num_modes} modes captured, "
                           f"{100 * stats['high_quality_fraction']:.1f}% high quality (kept samples).",
                u2=hist, c2="High-quality generated samples per mode (PacGAN/VEEGAN protocol)."))
        else:
            cls = find_diag(view, "classes") or d
            shares_f = number_list(first(cls, "share", "class_shares", "shares", "per_class_shares"))
            shares_r = number_list(first(cls, "real_share", "real_class_shares", "real_shares"))
            cf, cr = a.get("class_counts_fake"), a.get("class_counts_real")
            groups = {}
            if shares_r is not None:
                groups["real"] = shares_r
            elif cr is not None and np.sum(cr) > 0:
                groups["real"] = np.asarray(cr, float) / np.sum(cr)
            if shares_f is not None:
                groups["generated"] = shares_f
            elif cf is not None and np.sum(cf) > 0:
                groups["generated"] = np.asarray(cf, float) / np.sum(cf)
            if "generated" in groups:
                k = max(len(v) for v in groups.values())
                groups = {n: np.pad(v, (0, k - len(v))) for n, v in groups.items()}
                missing = groups["generated"] < 0.1 / k
                uri = figures.bars(groups, [str(i) for i in range(k)], "Share of samples per class", "share",
                                   highlight=missing, highlight_label="under 10% of its uniform share")
                parts.append(view.render("{{ figure(uri, cap, 'class histogram') }}", uri=uri,
                                         cap="Classes by the feature extractor's classifier (or the conditional label)."))
        if not parts:
            return view.empty("No mode information: no mode-collapse diagnostic, no mixture points and no class histogram.")
        return "".join(parts)


# --------------------------------------------------------------------------- NDB


class NDBBins(Section):
    name, title, order = "ndb", "Number of statistically different bins (NDB)", 50

    def render(self, view):
        d = find_diag(view, "ndb")
        if d is None:
            return view.empty("No NDB diagnostic in these results.")
        parts = []
        if "verdict" in d:
            parts.append(view.render("{{ verdict('NDB', dd, t) }}", dd={"verdict": d["verdict"], "reasons": reasons(d)},
                                     t=tone(d["verdict"])))
        elif reasons(d):
            parts.append(view.render('<ul class="reasons">{% for r in rs %}<li>{{ r }}</li>{% endfor %}</ul>', rs=reasons(d)))
        parts.append(view.render("{{ kv_table(rows) }}", rows=scalars(d)))
        # Full bin proportions when given; else the list of bins that differ (dicts with real_share/fake_share).
        p_real = number_list(first(d, "proportions_real", "real_proportions", "p_real", "real_shares"))
        p_fake = number_list(first(d, "proportions_fake", "fake_proportions", "p_fake", "fake_shares"))
        diff = first(d, "different_bins", "differing_bins", "bins_that_differ", "significant")
        if p_real is not None and p_fake is not None and len(p_real) == len(p_fake):
            k = len(p_real)
            marks = np.zeros(k, bool)
            for b in diff if isinstance(diff, list) else []:
                i = b.get("bin") if isinstance(b, dict) else b
                if isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < k:
                    marks[int(i)] = True
            uri = figures.bars({"real": p_real, "generated": p_fake}, [str(i) for i in range(k)],
                               "Bin proportions (k-means cells of the real data)", "share", highlight=marks,
                               highlight_label="differs (p < alpha)")
            parts.append(view.render("{{ figure(uri, cap, 'NDB bins') }}", uri=uri,
                                     cap="Each bin is a k-means cell of the real data; marked bins differ by a two-proportion z-test."))
        bins = [b for b in diff if isinstance(b, dict)] if isinstance(diff, list) else []
        if bins:
            if p_real is None:
                labels = [str(b.get("bin", "?")) for b in bins]
                uri = figures.bars({"real": [float(b.get("real_share") or 0) for b in bins],
                                    "generated": [float(b.get("fake_share") or 0) for b in bins]},
                                   labels, "Bins that differ most (by p-value)", "share")
                parts.append(view.render("{{ figure(uri, cap, 'NDB bins') }}", uri=uri,
                                         cap="Share of real and generated samples in each bin that differs significantly."))
            rows = [(fmt(b.get("bin")), fmt(b.get("real_share")), fmt(b.get("fake_share")), fmt(b.get("z"), 3),
                     fmt(b.get("p"), 3), fmt(b.get("direction")), fmt(b.get("real_majority_label"))) for b in bins]
            parts.append(view.render("{{ table(['bin', 'real share', 'generated share', 'z', 'p', 'generated is', "
                                     "'real majority label'], rows) }}", rows=rows))
        elif isinstance(diff, list) and diff and p_real is None:
            parts.append(view.render("<p>Bins that differ: {{ b }}</p>", b=", ".join(map(fmt, diff))))
        elif isinstance(diff, list) and not diff:
            parts.append(view.empty("No bin differs significantly."))
        return "".join(parts)


# --------------------------------------------------------------------------- duplicates


def _pairs(v) -> list:
    """[(i, j, distance or None)] from a list of pairs in any of a few spellings."""
    out = []
    for p in v if isinstance(v, (list, tuple)) else []:
        if isinstance(p, dict):
            ij = p.get("indices") or [first(p, "i", "a", "index_a", "first"), first(p, "j", "b", "index_b", "second")]
            dist = first(p, "distance", "dist", "d")
        elif isinstance(p, (list, tuple)) and len(p) >= 2:
            ij, dist = p[:2], (p[2] if len(p) > 2 else None)
        else:
            continue
        try:
            out.append((int(ij[0]), int(ij[1]), None if dist is None else float(dist)))
        except (TypeError, ValueError, IndexError):
            continue
    return out


class Duplicates(Section):
    name, title, order = "duplicates", "Closest generated pairs (duplicates)", 60

    def render(self, view):
        d = find_diag(view, "duplicates")
        if d is None:
            return view.empty("No duplicates diagnostic in these results.")
        pairs = _pairs(first(d, "closest_pairs", "pairs", "closest", "closest_pair_indices"))
        parts = []
        if "verdict" in d:
            parts.append(view.render("{{ verdict('duplicates', dd, t) }}", dd={"verdict": d["verdict"], "reasons": reasons(d)},
                                     t=tone(d["verdict"])))
        parts.append(view.render("{{ kv_table(rows) }}", rows=scalars(d)))
        if pairs:
            parts.append(view.render("{{ table(['generated i', 'generated j', 'distance'], rows) }}",
                                     rows=[(i, j, fmt(dist)) for i, j, dist in pairs[:20]]))
            fake = view.artifacts.get("fake_samples")
            if fake is not None and str(view.artifacts.get("kind")) == "images":
                shown = [(i, j) for i, j, _ in pairs if i < len(fake) and j < len(fake)][:12]
                if shown:
                    uri = figures.pair_rows(fake[[i for i, _ in shown]], fake[[j for _, j in shown]])
                    parts.append(view.render("{{ figure(uri, cap, 'duplicate pairs', 'fig grid') }}", uri=uri,
                                             cap="Pairs among the kept samples: one pair per column."))
        return "".join(parts)


# --------------------------------------------------------------------------- memorisation


class NearestReal(Section):
    name, title, order = "memorisation", "Nearest real neighbour of generated samples (memorisation check)", 70
    COPY_RATIO = 0.1

    def render(self, view):
        a = view.artifacts
        d = find_diag(view, "memorisation") or find_diag(view, "memorization")
        parts = []
        if d:
            if "verdict" in d:
                parts.append(view.render("{{ verdict('memorisation', dd, t) }}",
                                         dd={"verdict": d["verdict"], "reasons": reasons(d)}, t=tone(d["verdict"])))
            parts.append(view.render("{{ kv_table(rows) }}", rows=scalars(d)))
        if "nn_real_samples" in a and "fake_samples" in a:
            idx = a["nn_fake_index"].astype(int)
            dist = a["nn_distance"].astype(float)
            scale = float(a.get("nn_real_scale", np.nan))
            ratio = dist / scale if math.isfinite(scale) and scale > 0 else np.full_like(dist, np.nan)
            copies = int(np.sum(ratio < self.COPY_RATIO))
            uri = figures.pair_rows(a["fake_samples"][idx], a["nn_real_samples"])
            parts.append(view.render("""
{{ figure(uri, cap, 'nearest real neighbours', 'fig grid') }}
<p>{{ copies }} of {{ n }} generated samples lie closer to a real sample than {{ r }}× the typical distance between
neighbouring real samples ({{ scale }}): {% if copies %}<strong>possible copies of training data</strong>{% else %}no sign of copying{% endif %}.</p>
{{ table(["generated", "distance to nearest real", "÷ real NN distance"], rows) }}""",
                uri=uri, cap="Top row: generated samples; bottom row: the nearest real sample in feature space.",
                copies=copies, n=len(idx), r=self.COPY_RATIO, scale=fmt(scale),
                rows=[(int(i), fmt(x), fmt(q, 3)) for i, x, q in zip(idx, dist, ratio)]))
        elif not d:
            return view.empty("No nearest-neighbour data: " + (view.artifacts_note or "needs image samples and real data") + ".")
        return "".join(parts)


# --------------------------------------------------------------------------- gradients


def _layer_maps(obj, path: str = "") -> dict:
    """{"<path> G": {layer: value}, ...}: every dict of per-layer numbers inside a diagnostic."""
    out = {}
    if not isinstance(obj, dict):
        return out
    vals = list(obj.values())
    if vals and all(isinstance(v, (int, float)) or v is None for v in vals) and len(vals) >= 1 and path:
        if any(isinstance(k, str) and ("." in k or "weight" in k or "layer" in k or "bias" in k) for k in obj):
            return {path: {k: (np.nan if v is None else float(v)) for k, v in obj.items()}}
    for k, v in obj.items():
        if isinstance(v, dict):
            out.update(_layer_maps(v, f"{path} {k}".strip()))
    return out


class GradientNorms(Section):
    name, title, order = "gradients", "Gradient norms per layer", 80

    def render(self, view):
        d = view.diagnostic("gradient_health")
        parts = []
        maps = {}
        if d:
            parts.append(view.render("{{ verdict('gradient health', dd, t) }}{{ kv_table(rows) }}",
                                     dd={"verdict": d.get("verdict"), "reasons": reasons(d)}, t=tone(d.get("verdict")),
                                     rows=scalars(d)))
            maps = _layer_maps(d)
        source = "the gradient-health diagnostic"
        if not maps:
            log = read_training_log(view)
            last = next((r for r in reversed(log or []) if isinstance(r.get("grad_norm"), dict)), None)
            if last:
                maps = {f"grad_norm {k}": v for k, v in last["grad_norm"].items() if isinstance(v, dict) and v}
                maps.update({f"sigma_max {k}": v for k, v in (last.get("sigma_max") or {}).items() if isinstance(v, dict) and v})
                source = f"log.jsonl, step {last.get('step')}"
        if maps:
            grads = {k: v for k, v in maps.items() if "sigma" not in k.lower() and "spectral" not in k.lower()}
            spec = {k: v for k, v in maps.items() if k not in grads}
            for title, group, xl in (("Gradient L2 norm", grads, "‖∇‖ (log scale)"), ("Top singular value", spec, "σ_max")):
                if group:
                    uri = figures.hbars({k: {n: (np.nan if x is None else x) for n, x in v.items()} for k, v in group.items()},
                                        title, xl)
                    parts.append(view.render("{{ figure(uri, cap, 'per-layer norms') }}", uri=uri,
                                             cap=f"{title} per layer, from {source}."))
        if not parts:
            return view.empty("No gradient information: no gradient-health diagnostic and no log.jsonl with gradient norms.")
        return "".join(parts)


# --------------------------------------------------------------------------- training curves


def training_log_path(view) -> Optional[Path]:
    g = view.results.generator or {}
    p = g.get("path")
    if not p or g.get("format") == "samples":
        return None
    candidates = [Path(p).parent / "log.jsonl"]
    if view.json_path is not None and not Path(p).is_absolute():
        candidates.append(view.json_path.parent / Path(p).parent / "log.jsonl")
    from ..safety.files import is_regular_file

    return next((c for c in candidates if is_regular_file(c)), None)


def read_training_log(view) -> Optional[list]:
    path = training_log_path(view)
    if path is None:
        return None
    from ..errors import GandiagError
    from ..training.trainlog import read_log

    try:
        return read_log(path)
    except GandiagError:
        return None  # unreadable: the section says there is no log to show


SKIP_CURVES = {"step", "time", "eval_seconds", "lr_g", "lr_d"}


def curve_series(records: list, limit: int = 15) -> dict:
    series: dict = {}

    def add(name, step, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return
        series.setdefault(name, ([], []))
        series[name][0].append(step)
        series[name][1].append(float(v))

    for rec in records:
        step = rec.get("step")
        if not isinstance(step, (int, float)) or rec.get("event"):
            continue
        for k, v in rec.items():
            if k in SKIP_CURVES:
                continue
            if isinstance(v, dict) and k in ("grad_norm_total", "eval"):
                for k2, v2 in v.items():
                    add(f"{k}.{k2}", step, v2)
            else:
                add(k, step, v)
    series = {k: v for k, v in series.items() if len(v[0]) >= 1}
    return dict(list(series.items())[:limit])


class TrainingCurves(Section):
    name, title, order = "training", "Training curves", 90

    def render(self, view):
        records = read_training_log(view)
        if records is None:
            return view.empty("No training log: log.jsonl sits beside a gandiag checkpoint, and these results are not of one.")
        events = [r for r in records if r.get("event")]
        series = curve_series(records)
        if not series:
            return view.empty("log.jsonl holds no numeric records.")
        uri = figures.curves(series)
        return view.render("""{{ figure(uri, cap, 'training curves') }}
{% for e in events %}<p class="error">step {{ e.step }}: {{ e.event }}</p>{% endfor %}""",
                           uri=uri, cap=f"{len(records)} records from {training_log_path(view)}.", events=events)


# --------------------------------------------------------------------------- provenance


def flatten(obj, prefix: str = "", out: Optional[list] = None, limit: int = 200) -> list:
    out = [] if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out, limit)
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(x, (dict, list)) for x in obj):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}[{i}]", out, limit)
    elif len(out) < limit:
        out.append((prefix, fmt(obj) if not isinstance(obj, (list, tuple)) else ", ".join(fmt(x) for x in obj)))
    return out


class Provenance(Section):
    name, title, order = "provenance", "Provenance", 100

    def render(self, view):
        r = view.results
        rows = flatten({"generator": r.generator, "real": r.real, "contract": r.contract, "provenance": r.provenance})
        return view.render("{{ kv_table(rows) }}", rows=rows)


# --------------------------------------------------------------------------- comparison


class Comparison(Section):
    name, title, order, scope = "comparison", "Runs side by side", 5, "comparison"

    def render(self, cview):
        from ..results import METRIC_ORDER

        runs = cview.runs
        names = []
        for v in runs:
            for k in v.results.metrics:
                if k not in names:
                    names.append(k)
        names.sort(key=lambda k: (METRIC_ORDER.index(k) if k in METRIC_ORDER else 99, k))
        rows, series = [], {}
        for k in names:
            vals, lo, hi, cells, label = [], [], [], [], k
            for v in runs:
                m = v.results.metrics.get(k) if isinstance(v.results.metrics.get(k), dict) else {}
                label = m.get("label", label)
                val = m.get("value")
                vals.append(val if isinstance(val, (int, float)) else np.nan)
                ci = m.get("ci95") if isinstance(m.get("ci95"), (list, tuple)) and len(m.get("ci95")) == 2 else None
                lo.append(ci[0] if ci and ci[0] is not None else np.nan)
                hi.append(ci[1] if ci and ci[1] is not None else np.nan)
                text = fmt(val) if m else "—"
                if ci:
                    text += f" [{fmt(ci[0], 3)}, {fmt(ci[1], 3)}]"
                elif m.get("std") is not None:
                    text += f" ± {fmt(m['std'], 3)}"
                cells.append(text)
            rows.append([label] + cells)
            series[label] = (vals, lo, hi)
        diag_names = []
        for v in runs:
            for n, d in (v.results.diagnostics or {}).items():
                if isinstance(d, dict) and "verdict" in d and n not in diag_names:
                    diag_names.append(n)
        for n in diag_names:
            rows.append([n] + [fmt((v.diagnostic(n) or {}).get("verdict")) for v in runs])
        header = ["metric"] + [v.label for v in runs]
        trend = figures.trends(series, [str(v.index + 1) for v in runs]) if series and len(runs) > 1 else None
        return cview.render("""{{ table(header, rows) }}
{% if trend %}{{ figure(trend, "Metric trends across runs, in the order given (shaded: 95% bootstrap interval where computed).", "metric trends") }}{% endif %}""",
                            header=header, rows=rows, trend=trend)


BUILTIN_SECTIONS = (Summary, SampleGrid, FeatureSpace, Modes, NDBBins, Duplicates, NearestReal, GradientNorms,
                    TrainingCurves, Provenance, Comparison)

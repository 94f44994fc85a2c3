"""Translation: what a translator did to its inputs, in each direction it was evaluated.

A translator (image to image, point to point) is judged like any generator
by the other sections (its outputs against the target domain's real data);
this section shows what only a translation has, once for A→B and once for
B→A when the inverse was evaluated too (results keys suffixed ``:b2a``):

- the first inputs, their translations and their way back through the
  inverse, one labelled row each (images), or a scatter of inputs, outputs,
  reconstructions and the target domain's real samples with the first
  inputs linked to their outputs (2-D points); from the artifacts
  (``translation_<d>_*``, :mod:`gandiag.report.artifacts`);
- the translation measures as ``results.metrics`` holds them (cycle,
  identity, paired L1, PSNR, SSIM, change), with their std and count;
- label preservation: the share of outputs a target-domain classifier labels
  as their inputs were, its ceiling (the classifier's accuracy on real target
  data) and the share per class of the inputs;
- the translation diagnostics' verdicts (``input_ignored``,
  ``identity_mapping``, ``content_preservation``, ``steganographic_cycle``)
  with their reasons and the numbers they wrote.

Everything is read from the results and the artifacts, so a report made later
from a saved JSON shows the same; nothing is judged here.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from markupsafe import Markup

from .. import figures, render_fragment
from .common import Section, fmt, verdict_block
from .provenance import flatten
from .summary import direction_title

DIRECTIONS = ("a2b", "b2a")
MEASURES = (  # name, fallback label, what it measures
    ("cycle_l1", "Cycle L1", "|F(G(x)) − x|: how far the way back through the inverse lands from the input"),
    ("identity_l1", "Identity L1", "|G(y) − y| on real target-domain samples: what it does to what needs no change"),
    ("paired_l1", "Paired L1", "|G(x) − truth|: distance to the true translation (paired data or a known truth)"),
    ("psnr", "PSNR (dB)", "peak signal-to-noise ratio against the true translation, per image"),
    ("ssim", "SSIM", "structural similarity with the true translation, per image"),
    ("change_l1", "Change L1", "|G(x) − x|: how much the translator changes its input"),
)
LABEL_PRESERVATION = "label_preservation"
TRANSLATION_DIAGNOSTICS = ("input_ignored", "identity_mapping", "content_preservation", "steganographic_cycle")
MEASURE_NAMES = tuple(m[0] for m in MEASURES) + (LABEL_PRESERVATION,)
LINKS = 16  # points: inputs joined to their outputs by a line
INPUT_COLOUR, RECON_COLOUR = "#8c959f", "#9467bd"


def key(name: str, direction: str) -> str:
    """The results key of a measure or diagnostic of ``direction``: plain for A→B, suffixed for B→A."""
    return name if direction == "a2b" else f"{name}:{direction}"


def _metrics(view) -> dict:
    m = getattr(view.results, "metrics", None)
    return m if isinstance(m, dict) else {}


def _generator(view) -> dict:
    g = getattr(view.results, "generator", None)
    return g if isinstance(g, dict) else {}


def _base_and_direction(k) -> tuple:
    rest, _, direction = str(k).partition(":")
    return rest.partition("@")[0], direction or None


def is_translator(view) -> bool:
    """Whether the run is a translator's: results.generator says so, else its context, artifacts or measures."""
    g = _generator(view)
    if isinstance(g.get("inputs"), dict) or g.get("direction") in DIRECTIONS:
        return True
    ctx = view.context
    if ctx is not None and getattr(ctx, "translation", None) is not None:
        return True
    if any(str(k).startswith("translation_") for k in (view.artifacts or {})):
        return True
    return any(_base_and_direction(k)[0] in MEASURE_NAMES for k in _metrics(view))


def directions(view) -> list:
    """["a2b"], plus "b2a" when the inverse direction left anything in the results or artifacts."""
    keys = list(_metrics(view)) + list((view.results.diagnostics or {}) if isinstance(view.results.diagnostics,
                                                                                       dict) else [])
    ctx = view.context
    back = getattr(ctx, "other_direction", None) if ctx is not None else None
    if any(_base_and_direction(k)[1] == "b2a" for k in keys) or back is not None \
            or any(str(k).startswith("translation_b2a_") for k in (view.artifacts or {})):
        return ["a2b", "b2a"]
    return ["a2b"]


def sides(view, direction: str) -> tuple:
    """(input domain, target domain) as the results name them, in this direction."""
    inputs = _generator(view).get("inputs")
    src = inputs.get("source") if isinstance(inputs, dict) else None
    real = view.results.real if isinstance(getattr(view.results, "real", None), dict) else {}
    tgt = real.get("source")
    return (src, tgt) if direction == "a2b" else (tgt, src)


# ----------------------------------------------------------------------------- pieces


def measure_rows(view, direction: str) -> list:
    """One row per translation measure present: label, what it measures, value, ± std, n, which way is better."""
    rows = []
    metrics = _metrics(view)
    for name, label, what in MEASURES:
        m = metrics.get(key(name, direction))
        if not isinstance(m, dict):
            continue
        if m.get("not_applicable"):
            value = f"not applicable: {m['not_applicable']}"
        elif m.get("error"):
            value = f"could not be computed: {m['error']}"
        else:
            value = fmt(m.get("value"))
        hib = m.get("higher_is_better")
        rows.append((m.get("label") or label, what, value,
                     f"± {fmt(m['std'], 3)}" if m.get("std") is not None else "—", fmt(m.get("n")),
                     "↑" if hib else "↓" if hib is False else ""))
    return rows


def _class_order(k):
    try:
        return (0, float(k), str(k))
    except (TypeError, ValueError):
        return (1, 0.0, str(k))


def label_preservation_parts(view, direction: str) -> tuple:
    """(summary rows, per-class rows, note) of the label preservation entry of ``direction``."""
    m = _metrics(view).get(key(LABEL_PRESERVATION, direction))
    if not isinstance(m, dict):
        return [], [], None
    if m.get("not_applicable") or m.get("error"):
        why = m.get("not_applicable") or m.get("error")
        return [], [], f"Label preservation not measured: {why}."
    value, ceiling = m.get("value"), m.get("ceiling")
    rows = [("outputs labelled as their inputs were", fmt(value)),
            ("ceiling (classifier's cross-validated accuracy on real target data)", fmt(ceiling))]
    if isinstance(value, (int, float)) and isinstance(ceiling, (int, float)) and ceiling > 0:
        rows.append(("share of the ceiling", fmt(value / ceiling)))
    if m.get("n") is not None:
        rows.append(("outputs classified", fmt(m.get("n"))))
    if m.get("classifier"):
        rows.append(("classifier", str(m.get("classifier"))))
    per_class = m.get("per_class")
    classes = []
    if isinstance(per_class, dict):
        for c in sorted(per_class, key=_class_order):
            e = per_class[c]
            if isinstance(e, dict):
                classes.append((str(c), fmt(e.get("n")), fmt(e.get("accuracy")), fmt(e.get("ceiling"))))
            elif isinstance(e, (int, float)):
                classes.append((str(c), "—", fmt(e), "—"))
    return rows, classes, None


EVIDENCE_SKIP = ("verdict", "reasons", "levels", "seconds", "errors")
EVIDENCE_ROWS = 40
EVIDENCE_CHARS = 160


def evidence_rows(d: dict) -> list:
    """The numbers a diagnostic wrote beside its verdict, one dotted key per row (``diversity.ratio``)."""
    rows = flatten({k: v for k, v in d.items() if k not in EVIDENCE_SKIP}, limit=EVIDENCE_ROWS)
    return [(k, v if len(v) <= EVIDENCE_CHARS else v[:EVIDENCE_CHARS] + "…") for k, v in rows]


def verdict_blocks(view, direction: str) -> list:
    """The translation diagnostics of ``direction``: verdict and reasons, then the numbers they wrote."""
    out = []
    for name in TRANSLATION_DIAGNOSTICS:
        d = view.diagnostic(key(name, direction))
        if d is None:
            continue
        evidence = evidence_rows(d)
        block = verdict_block(view, name, name, d)
        if evidence:
            block += view.render('<details><summary>{{ name }}: evidence</summary>{{ kv_table(rows) }}</details>',
                                 name=name, rows=evidence)
        out.append(block)
    return out


def image_rows(a: dict, direction: str) -> Optional[list]:
    """[(row label, grid URI)] of the kept triples: inputs, outputs, reconstructions."""
    p = f"translation_{direction}_"
    x, y = a.get(p + "inputs"), a.get(p + "outputs")
    if x is None or y is None or not len(x) or not len(y):
        return None
    src, dst = direction[0].upper(), direction[-1].upper()
    n = min(len(x), len(y))
    rows = [(f"input ({src})", figures.image_grid(np.asarray(x[:n]), ncol=n, min_cell=40)),
            (f"output ({dst})", figures.image_grid(np.asarray(y[:n]), ncol=n, min_cell=40))]
    rec = a.get(p + "reconstructions")
    if rec is not None and len(rec) >= n:
        rows.append((f"reconstruction ({src})", figures.image_grid(np.asarray(rec[:n]), ncol=n, min_cell=40)))
    return rows


def points_figure(a: dict, direction: str) -> Optional[str]:
    """Scatter of the target domain's real points, the inputs, their outputs and reconstructions, first inputs linked."""
    import matplotlib.pyplot as plt

    p = f"translation_{direction}_"
    x, y = a.get(p + "inputs"), a.get(p + "outputs")
    if x is None or y is None or np.ndim(x) != 2 or np.ndim(y) != 2 or x.shape[1] < 2 or y.shape[1] < 2:
        return None
    src, dst = direction[0].upper(), direction[-1].upper()
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    t = a.get(p + "targets")
    if t is not None and np.ndim(t) == 2 and len(t) and t.shape[1] >= 2:
        ax.scatter(t[:, 0], t[:, 1], s=5, alpha=0.35, c=figures.REAL_COLOUR, linewidths=0,
                   label=f"target domain {dst}, real ({len(t)})")
    ax.scatter(x[:, 0], x[:, 1], s=5, alpha=0.45, c=INPUT_COLOUR, linewidths=0, label=f"inputs {src} ({len(x)})")
    ax.scatter(y[:, 0], y[:, 1], s=5, alpha=0.6, c=figures.FAKE_COLOUR, linewidths=0, label=f"outputs ({len(y)})")
    rec = a.get(p + "reconstructions")
    if rec is not None and np.ndim(rec) == 2 and len(rec) and rec.shape[1] >= 2:
        ax.scatter(rec[:, 0], rec[:, 1], s=10, alpha=0.6, c=RECON_COLOUR, marker="x", linewidths=0.7,
                   label=f"reconstructions ({len(rec)})")
    k = min(LINKS, len(x), len(y))
    for i in range(k):
        ax.plot([x[i, 0], y[i, 0]], [x[i, 1], y[i, 1]], color="black", lw=0.6, alpha=0.5)
    if k:
        ax.plot([], [], color="black", lw=0.6, label=f"input → output (first {k})")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"{direction_title(direction)}: inputs, outputs and the target domain")
    ax.legend(loc="best", markerscale=2, fontsize=7)
    return figures.fig_uri(fig)


TRIPLES = """<table class="triples">
{% for label, uri in rows %}<tr><th>{{ label }}</th><td><img class="fig grid" src="{{ uri }}" alt="{{ label }}"></td></tr>
{% endfor %}</table>
<p class="note">Each column is one input, its translation{% if rows|length > 2 %} and its way back through the inverse{% endif %}, in the order the inputs were read.{% if classes %} Input classes, left to right: {{ classes }}.{% endif %}</p>
"""

DIRECTION = """<h3 id="{{ anchor }}">Translation {{ title }}{% if src or dst %}: {{ src or "?" }} → {{ dst or "?" }}{% endif %}</h3>
{{ pictures }}
<h4>Measures</h4>
{% if measures %}{{ table(["measure", "what it measures", "value", "std", "n", "better"], measures, num_from=2) }}
<p class="note">{% if kind == "points" %}Distances are Euclidean, between points{% elif kind == "images" %}L1: the mean absolute difference of grey levels per image, in [0, 1] units{% else %}L1: images, the mean absolute difference of grey levels in [0, 1] units; points, the Euclidean distance{% endif %}; each value is the mean over samples. Paired L1{% if kind != "points" %}, PSNR and SSIM{% endif %} need the true translations (paired data, or a bundled pair's known truth).</p>
{% else %}{{ note("No translation measures for this direction in these results.") }}{% endif %}
<h4>Label preservation</h4>
{% if lp_note %}{{ note(lp_note) }}{% elif lp %}{{ kv_table(lp) }}
{% if classes %}{{ table(["input class", "inputs", "outputs labelled as their input", "held-out real samples labelled as theirs (the class's ceiling)"], classes) }}{% endif %}
{% else %}{{ note("Not measured: it needs labelled inputs and labelled real target data.") }}{% endif %}
<h4>Translation verdicts</h4>
{% for v in verdicts %}{{ v }}{% endfor %}
{% if not verdicts %}{{ note("No translation diagnostics in these results for this direction.") }}{% endif %}
"""


class Translation(Section):
    name, title, order = "translation", "Translation", 15
    kinds = ("images", "points")

    def applies(self, view) -> bool:
        """Only a translator's runs have this section."""
        return is_translator(view)

    def render(self, view):
        if not is_translator(view):
            return view.empty("Not a translator: nothing was translated in this run.")
        return Markup("".join(self.direction(view, d) for d in directions(view)))

    def direction(self, view, direction: str) -> Markup:
        src, dst = sides(view, direction)
        lp, classes, lp_note = label_preservation_parts(view, direction)
        return render_fragment(DIRECTION, anchor=f"translation-{direction}-{view.index + 1}",
                               title=direction_title(direction), src=src, dst=dst,
                               pictures=self.pictures(view, direction), measures=measure_rows(view, direction),
                               lp=lp, classes=classes, lp_note=lp_note, verdicts=verdict_blocks(view, direction),
                               kind=view.kind)

    def pictures(self, view, direction: str) -> Markup:
        a = view.artifacts or {}
        p = f"translation_{direction}_"
        if p + "inputs" not in a:
            why = view.artifacts_note or "these results' artifacts hold no translated samples"
            return view.empty(f"No translated samples to show: {why}.")
        x = np.asarray(a[p + "inputs"])
        if x.ndim == 2:
            uri = points_figure(a, direction)
            if uri is None:
                return view.empty("The translated points cannot be drawn in 2-D.")
            return view.render('{{ figure(uri, cap, "translated points") }}', uri=uri,
                               cap="Inputs (grey), their translations (red), their way back (purple crosses) and "
                                   "real samples of the target domain (blue); lines join the first inputs to "
                                   "their outputs.")
        rows = image_rows(a, direction)
        if rows is None:
            return view.empty("No translated samples to show.")
        labels = a.get(p + "input_labels")
        classes = ", ".join(str(int(c)) for c in labels[: len(x)]) if labels is not None else ""
        return view.render(TRIPLES, rows=rows, classes=classes)

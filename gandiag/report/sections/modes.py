"""Mode sections: which modes or classes the generator draws, and the NDB bins that differ.

Everything judged here is the ``mode_collapse`` verdict's own call, read from
its signals (docs/diagnostics.md): the mixture's HQ counts and
``mode_status`` over the samples the verdict judged (2,500 points, not the
2,000 the artifacts keep for the scatter), the classifier's confident shares
and ``class_status`` (missing below 40% of the real share), NDB's
``emptied_labels``. Where no verdict ran, the pictures are shown and said to
be unjudged, never judged again with a rule of the report's own.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import figures
from ..severity import verdict_tone
from .common import (Section, call_badge, find_signal, first, fmt, int_list, number_list, reasons_block, scalars,
                     verdict_block, word_list)


class Modes(Section):
    name, title, order = "modes", "Modes", 40

    def render(self, view):
        d = view.diagnostic("mode_collapse")
        parts = []
        if d:
            parts.append(verdict_block(view, "mode collapse", "mode_collapse", d))
            parts.append(view.render("{{ kv_table(rows) }}{{ note(n) }}", rows=scalars(d),
                                     n="Gates read these as mode_collapse.<key> (e.g. mode_collapse.modes_captured)."))
        t = verdict_tone("mode_collapse", d) if d else "unknown"
        _, mix = find_signal(view, "mixture")
        mixture = mixture_of(view, mix)
        if mixture is not None:
            parts += mixture_parts(view, mixture, mix, t)
        else:
            _, cls = find_signal(view, "classes")
            parts += class_parts(view, cls, t)
        if not parts:
            return view.empty("No mode information: no mode-collapse diagnostic, no mixture points and no class histogram.")
        return "".join(parts)


# --------------------------------------------------------------------------- 2-D mixtures


def mixture_of(view, sig: Optional[dict]):
    """The bundled mixture the verdict judged (its ``mixture`` field), else the real data's, else None."""
    from ...data.mixtures import MIXTURES

    name = sig.get("mixture") if isinstance(sig, dict) else None
    if not isinstance(name, str):
        name = (view.results.real or {}).get("source")
    return MIXTURES.get(name) if isinstance(name, str) else None


def mode_calls(sig: dict, k: int) -> Optional[list]:
    """The verdict's call per mode: ``mode_status``, else rebuilt from its own missing/starved lists."""
    calls = word_list(sig.get("mode_status"), k)
    if calls is not None:
        return calls
    if not isinstance(sig.get("missing_modes"), list):
        return None
    missing, starved = set(int_list(sig.get("missing_modes"))), set(int_list(sig.get("starved_modes")))
    return ["missing" if i in missing else "starved" if i in starved else "captured" for i in range(k)]


def mixture_parts(view, mixture, sig: Optional[dict], verdict_t: str) -> list:
    a = view.artifacts
    points = a.get("fake_samples") if str(a.get("kind")) == "points" else None
    k = mixture.num_modes
    calls = mode_calls(sig, k) if isinstance(sig, dict) else None
    counts = number_list(sig.get("counts")) if calls is not None else None
    if calls is None or counts is None or len(counts) != k:
        if points is None:
            return []
        return [mixture_scatter(view, mixture, points, None, "No mode-collapse verdict in these results: the modes "
                                "are marked, not judged (evaluate with diagnostics to judge them).")]
    missing = np.array([c == "missing" for c in calls])
    starved = np.array([c == "starved" for c in calls])
    parts = []
    if points is not None:
        parts.append(mixture_scatter(view, mixture, points, ~missing, mixture_caption(sig, k, len(points))))
    else:
        parts.append(view.render("<p>{{ c }}</p>", c=mixture_caption(sig, k, None)))
    hist = figures.bars({"high-quality samples": counts}, [str(i) for i in range(k)], "Samples per mode (the verdict's)",
                        "count", highlight={"missing mode": missing, "starved mode": starved})
    below = sig.get("starved_below")
    cap = ("High-quality generated samples per mode (PacGAN/VEEGAN protocol), as the verdict counted them"
           + (f"; a captured mode with under {fmt(below, 3)} is starved." if isinstance(below, (int, float)) else "."))
    parts.append(view.render("{{ figure(u, c, 'mode histogram') }}", u=hist, c=cap))
    parts.append(mode_table(view, sig, calls, verdict_t))
    return parts


def mixture_caption(sig: dict, k: int, shown: Optional[int]) -> str:
    n, hq = sig.get("n"), sig.get("high_quality_fraction")
    text = f"{fmt(sig.get('modes_captured'))}/{k} modes captured"
    if isinstance(hq, (int, float)):
        text += f", {100 * hq:.1f}% high quality"
    if isinstance(n, int):
        text += f", of the {n:,} samples the verdict judged"
    if shown is not None and isinstance(n, int) and shown < n:
        text += f" (the scatter shows {shown:,} of them)"
    missing = int_list(sig.get("missing_modes"))
    return text + (f"; missing modes {missing}." if missing else ".")


def mixture_scatter(view, mixture, points, captured, caption: str) -> str:
    from ...data.mixtures import HQ_SIGMAS

    uri = figures.scatter(view.artifacts.get("real_samples"), points, f"{mixture.name}: samples and modes",
                          modes=mixture.means, mode_radius=HQ_SIGMAS * mixture.std, captured=captured)
    lead = (f"Crosses mark the {mixture.num_modes} modes, dashed circles the {HQ_SIGMAS:g}σ high-quality radius"
            + ("; black = missed. " if captured is not None else ". "))
    return view.render('{{ figure(u, c, "mixture scatter") }}', u=uri, c=lead + caption)


def mode_table(view, sig: dict, calls: list, verdict_t: str) -> str:
    counts = sig.get("counts") or []
    nearest = sig.get("nearest_counts") if isinstance(sig.get("nearest_counts"), list) else []
    rows = [(i, fmt(counts[i]) if i < len(counts) else "—", fmt(nearest[i]) if i < len(nearest) else "—",
             call_badge(c, verdict_t)) for i, c in enumerate(calls)]
    return view.render("{{ table(['mode', 'high-quality samples', 'nearest to it (all samples)', 'verdict'], rows) }}",
                       rows=rows)


# --------------------------------------------------------------------------- classes


def class_calls(cls: dict, k: int) -> Optional[list]:
    """The verdict's call per class: ``class_status``, else rebuilt from its own missing/absent lists."""
    calls = word_list(cls.get("class_status"), k)
    if calls is not None:
        return calls
    if not isinstance(cls.get("missing_classes"), list):
        return None
    missing, absent = set(int_list(cls.get("missing_classes"))), set(int_list(cls.get("absent_classes")))
    real = number_list(cls.get("real_share"))
    return ["absent" if c in absent else "missing" if c in missing
            else "covered" if real is not None and c < len(real) and real[c] > 0 else "not_in_real" for c in range(k)]


def class_parts(view, cls: Optional[dict], verdict_t: str) -> list:
    share, real = (number_list(cls.get("share")), number_list(cls.get("real_share"))) if cls else (None, None)
    calls = class_calls(cls, len(share)) if share is not None else None
    if share is None or real is None or len(real) != len(share) or calls is None:
        return unjudged_classes(view)
    k = len(share)
    missing = [c for c in range(k) if calls[c] in ("missing", "absent")]
    uri = figures.bars({"real": real, "generated": share}, [str(i) for i in range(k)],
                       "Confidently classified samples per class (the verdict's shares)", "share",
                       highlight={f"missing (< {fmt(cls.get('missing_ratio'), 2)} of the real share)":
                                  [c == "missing" for c in calls],
                                  f"absent (< {fmt(cls.get('absent_ratio'), 2)})": [c == "absent" for c in calls]})
    cap = (f"Share of confidently classified samples (softmax ≥ {fmt(cls.get('confident'), 2)}) per class, generated vs "
           f"real: the shares the verdict compares. {fmt(cls.get('classes_covered'))}/{fmt(cls.get('classes_total'))} "
           f"classes covered" + (f"; the verdict calls {missing} missing." if missing else "."))
    return [view.render("{{ figure(uri, cap, 'class histogram') }}", uri=uri, cap=cap),
            class_table(view, cls, calls, verdict_t)]


def class_table(view, cls: dict, calls: list, verdict_t: str) -> str:
    """Per class: generated and real share, their ratio and the verdict's call (+ conditional diversity)."""
    share, real, ratio = cls.get("share"), cls.get("real_share"), cls.get("share_ratio")
    per = cls["conditional"].get("per_class") if isinstance(cls.get("conditional"), dict) else None
    per = per if isinstance(per, dict) else {}
    header = ["class", "generated share", "real share", "ratio", "verdict"]
    if per:
        header += ["agreement", "diversity ratio", "within the class"]
    rows = []
    for c, call in enumerate(calls):
        row = [c] + [fmt(v[c]) if isinstance(v, list) and c < len(v) else "—" for v in (share, real, ratio)]
        row.append(call_badge(call, verdict_t))
        if per:
            pc = per.get(c) or per.get(str(c))
            pc = pc if isinstance(pc, dict) else {}
            row += [fmt(pc.get("agreement")), fmt(pc.get("diversity_ratio")),
                    call_badge("collapsed", verdict_t) if pc.get("collapsed") else "—" if not pc else "ok"]
        rows.append(row)
    return view.render("{{ table(header, rows) }}", header=header, rows=rows)


def unjudged_classes(view) -> list:
    """Without a class verdict: the artifacts' class histogram (plain argmax), marked as not judged."""
    a = view.artifacts
    groups = {}
    for name, key in (("real", "class_counts_real"), ("generated", "class_counts_fake")):
        c = a.get(key)
        if c is not None and np.sum(c) > 0:
            groups[name] = np.asarray(c, float) / np.sum(c)
    if "generated" not in groups:
        return []
    k = max(len(v) for v in groups.values())
    groups = {n: np.pad(v, (0, k - len(v))) for n, v in groups.items()}
    uri = figures.bars(groups, [str(i) for i in range(k)], "Share of samples per class", "share")
    return [view.render("{{ figure(uri, cap, 'class histogram') }}", uri=uri, cap=(
        "Classes by the feature extractor's classifier (or the conditional label). No class verdict in these "
        "results: the classes are shown, not judged."))]


# --------------------------------------------------------------------------- NDB


def bin_marks(diff, k: int) -> np.ndarray:
    """Which of ``k`` bins the NDB signal lists as different (entries are dicts with ``bin``, or indices)."""
    marks = np.zeros(k, bool)
    for b in diff if isinstance(diff, list) else []:
        i = b.get("bin") if isinstance(b, dict) else b
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < k:
            marks[int(i)] = True
    return marks


class NDBBins(Section):
    name, title, order = "ndb", "Number of statistically different bins (NDB)", 50

    def render(self, view):
        owner, d = find_signal(view, "ndb")
        if d is None:
            return view.empty("No NDB diagnostic in these results.")
        parts = [verdict_block(view, "NDB", owner, d) if "verdict" in d else reasons_block(view, owner, d),
                 view.render("{{ kv_table(rows) }}", rows=scalars(d))]
        # Full bin proportions when given; else the list of bins that differ (dicts with real_share/fake_share).
        p_real = number_list(first(d, "proportions_real", "real_proportions", "p_real", "real_shares"))
        p_fake = number_list(first(d, "proportions_fake", "fake_proportions", "p_fake", "fake_shares"))
        diff = first(d, "different_bins", "differing_bins", "bins_that_differ", "significant")
        full = p_real is not None and p_fake is not None and len(p_real) == len(p_fake)
        if full:
            parts.append(self.proportions(view, p_real, p_fake, diff))
        parts.append(self.differing(view, diff, full))
        parts.append(self.emptied(view, d))
        return "".join(parts)

    def proportions(self, view, p_real, p_fake, diff) -> str:
        k = len(p_real)
        uri = figures.bars({"real": p_real, "generated": p_fake}, [str(i) for i in range(k)],
                           "Bin proportions (k-means cells of the real data)", "share", highlight=bin_marks(diff, k),
                           highlight_label="differs (p < alpha)")
        return view.render("{{ figure(uri, cap, 'NDB bins') }}", uri=uri,
                           cap="Each bin is a k-means cell of the real data; marked bins differ by a two-proportion z-test.")

    def differing(self, view, diff, full: bool) -> str:
        """The bins the signal lists as different: a figure of their shares (without full proportions) and a table."""
        bins = [b for b in diff if isinstance(b, dict)] if isinstance(diff, list) else []
        if not bins:
            if isinstance(diff, list) and diff and not full:
                return view.render("<p>Bins that differ: {{ b }}</p>", b=", ".join(map(fmt, diff)))
            return view.empty("No bin differs significantly.") if isinstance(diff, list) and not diff else ""
        out = ""
        if not full:
            uri = figures.bars({"real": [float(b.get("real_share") or 0) for b in bins],
                                "generated": [float(b.get("fake_share") or 0) for b in bins]},
                               [str(b.get("bin", "?")) for b in bins], "Bins that differ most (by p-value)", "share")
            out += view.render("{{ figure(uri, cap, 'NDB bins') }}", uri=uri,
                               cap="Share of real and generated samples in each bin that differs significantly.")
        rows = [(fmt(b.get("bin")), fmt(b.get("real_share")), fmt(b.get("fake_share")), fmt(b.get("z"), 3),
                 fmt(b.get("p"), 3), fmt(b.get("direction")), fmt(b.get("real_majority_label"))) for b in bins]
        return out + view.render("{{ table(['bin', 'real share', 'generated share', 'z', 'p', 'generated is', "
                                 "'real majority label'], rows) }}", rows=rows)

    def emptied(self, view, d: dict) -> str:
        """Per real label, the share of its samples in bins the generator under-fills; the labels the reason names."""
        by_label = d.get("emptied_by_label")
        if not isinstance(by_label, dict) or not by_label:
            return ""
        named = set(int_list(d.get("emptied_labels")))
        rows = [(lab, fmt(v, 3), "named by the reason" if _int_key(lab) in named else "")
                for lab, v in by_label.items()]
        return view.render("<h4>Real labels in emptied bins</h4>{{ table(['real label', 'share in emptied bins', ''], rows) }}",
                           rows=rows)


def _int_key(k):
    try:
        return int(k)
    except (TypeError, ValueError):
        return None

"""Feature-space sections: the real/generated projection and near-duplicate pairs.

Metrics and the NDB/duplicates signals all live in the extractor's feature
space; these sections let a reader see that space: where generated samples
sit against the real cloud and which generated samples repeat (the duplicates
signal's own closest pairs). Whether samples sit on top of training ones is
:mod:`.memorization`'s.
"""

from __future__ import annotations

import numpy as np

from .. import figures
from .common import Section, find_signal, first, fmt, reasons_block, scalars, verdict_block


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


# --------------------------------------------------------------------------- duplicates


def pairs_of(v) -> list:
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
    SHOW_PAIRS = 12

    def render(self, view):
        owner, d = find_signal(view, "duplicates")
        if d is None:
            return view.empty("No duplicates diagnostic in these results.")
        parts = [verdict_block(view, "duplicates", owner, d) if "verdict" in d else reasons_block(view, owner, d),
                 view.render("{{ kv_table(rows) }}", rows=scalars(d))]
        pairs = pairs_of(first(d, "closest_pairs", "pairs", "closest", "closest_pair_indices"))
        if pairs:
            parts.append(view.render("{{ table(['generated i', 'generated j', 'distance'], rows) }}",
                                     rows=[(i, j, fmt(dist)) for i, j, dist in pairs[:20]]))
            parts.append(self.pair_images(view, pairs))
        return "".join(parts)

    def pair_images(self, view, pairs) -> str:
        """The pairs whose samples are both among the kept images, one pair per column."""
        fake = view.artifacts.get("fake_samples")
        if fake is None or str(view.artifacts.get("kind")) != "images":
            return ""
        shown = [(i, j) for i, j, _ in pairs if 0 <= i < len(fake) and 0 <= j < len(fake)][: self.SHOW_PAIRS]
        if not shown:
            return ""
        uri = figures.pair_rows(fake[[i for i, _ in shown]], fake[[j for _, j in shown]])
        return view.render("{{ figure(uri, cap, 'duplicate pairs', 'fig grid') }}", uri=uri,
                           cap="Pairs among the kept samples: one pair per column.")

"""The sample grid: what the generator draws, next to real samples.

Looking at samples is the first check anyone makes, and a row per class makes
a dropped or blurred class visible at a glance (the conditional label, else
the classifier's prediction). 2-D points are drawn in the Modes section's
scatter instead.
"""

from __future__ import annotations

import numpy as np

from .. import figures
from .common import Section


def per_class_grid(fake: np.ndarray, labels: np.ndarray, per_class: int) -> tuple[str, list]:
    """(grid URI, classes): up to ``per_class`` samples per class, one row each, padded with white."""
    rows = []
    classes = sorted(set(int(c) for c in labels))
    for c in classes:
        sel = fake[labels == c][:per_class]
        pad = np.full((per_class - len(sel),) + fake.shape[1:], 255, np.uint8)
        rows.append(np.concatenate([sel, pad]))
    return figures.image_grid(np.concatenate(rows), ncol=per_class), classes


class SampleGrid(Section):
    name, title, order = "samples", "Samples", 20
    kinds = ("images", "points")  # sequences: the Trajectories section
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
            grid, classes = per_class_grid(fake, labels, self.PER_CLASS)
            figs.append((grid, f"Generated samples, one row per class ({', '.join(map(str, classes))}; "
                               "conditional label or the classifier's prediction)"))
        else:
            figs.append((figures.image_grid(fake), f"{len(fake)} generated samples"))
        if "real_samples" in a:
            figs.append((figures.image_grid(a["real_samples"][: len(fake)]), "Real samples, for comparison"))
        return view.render('<div class="row">{% for uri, cap in figs %}{{ figure(uri, cap, "samples", "fig grid") }}{% endfor %}</div>',
                           figs=figs)

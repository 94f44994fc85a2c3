"""Figures for the HTML report, as ``data:`` URIs so the page needs no other file.

matplotlib runs on the Agg backend (no display, no GUI toolkit); sample grids
are composed with numpy and encoded by Pillow, which is faster than drawing
64 tiny images with matplotlib and keeps pixels sharp (nearest-neighbour
upscaling, so an 8×8 digit stays an 8×8 digit).
"""

from __future__ import annotations

import base64
import functools
import io
import math
from typing import Optional, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

REAL_COLOUR, FAKE_COLOUR, MARK_COLOUR = "#1f77b4", "#d62728", "#2ca02c"
plt.rcParams.update({"figure.dpi": 96, "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def fig_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return png_uri(buf.getvalue())


def literal_text(draw):
    """Draw with matplotlib's mathtext off: titles, labels and legends come from results, logs and trend files,
    which may come from anywhere, and ``$x^$`` in one would raise while the figure is drawn (a report section
    lost, a watch's trend report not redrawn). Every text is shown as written."""
    @functools.wraps(draw)
    def wrapped(*args, **kwargs):
        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)
    return wrapped


def _to_hwc(img: np.ndarray) -> np.ndarray:
    """One CHW (artifacts' layout) or HW image → HWC RGB uint8."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = img.transpose(1, 2, 0)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return img


def image_grid(images: np.ndarray, ncol: Optional[int] = None, min_cell: int = 48, pad: int = 2) -> str:
    """uint8 images (N,C,H,W) → one PNG grid data URI, each cell upscaled to ≥ ``min_cell`` px."""
    imgs = [_to_hwc(im) for im in images]
    if not imgs:
        raise ValueError("no images")
    h, w = imgs[0].shape[:2]
    scale = max(1, math.ceil(min_cell / max(h, w)))
    n = len(imgs)
    ncol = ncol or min(n, 8)
    nrow = math.ceil(n / ncol)
    ch, cw = h * scale, w * scale
    canvas = np.full((nrow * (ch + pad) + pad, ncol * (cw + pad) + pad, 3), 255, np.uint8)
    for i, im in enumerate(imgs):
        r, c = divmod(i, ncol)
        big = im.repeat(scale, 0).repeat(scale, 1)
        y, x = pad + r * (ch + pad), pad + c * (cw + pad)
        canvas[y : y + ch, x : x + cw] = big
    return _encode(canvas)


def pair_rows(left: np.ndarray, right: np.ndarray, min_cell: int = 48) -> str:
    """Pairs side by side, one pair per column: row 1 ``left``, row 2 ``right``."""
    n = min(len(left), len(right))
    return image_grid(np.concatenate([np.asarray(left[:n]), np.asarray(right[:n])]), ncol=n, min_cell=min_cell)


def _encode(canvas: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG", optimize=True)
    return png_uri(buf.getvalue())


@literal_text
def scatter(real: Optional[np.ndarray], fake: Optional[np.ndarray], title: str, xlabel: str = "", ylabel: str = "",
            modes: Optional[np.ndarray] = None, mode_radius: Optional[float] = None,
            captured: Optional[Sequence[bool]] = None) -> str:
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    if real is not None and len(real):
        ax.scatter(real[:, 0], real[:, 1], s=4, alpha=0.35, c=REAL_COLOUR, label=f"real ({len(real)})", linewidths=0)
    if fake is not None and len(fake):
        ax.scatter(fake[:, 0], fake[:, 1], s=4, alpha=0.35, c=FAKE_COLOUR, label=f"generated ({len(fake)})", linewidths=0)
    if modes is not None:
        _mark_modes(ax, modes, mode_radius, captured)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", markerscale=2, fontsize=8)
    return fig_uri(fig)


def _mark_modes(ax, modes, radius, captured) -> None:
    """Crosses (and dashed HQ circles) at the modes: green captured, black missed, grey when nobody judged them."""
    judged = captured is not None
    cap = list(captured) if judged else [True] * len(modes)
    ok_colour = MARK_COLOUR if judged else "#8c959f"
    for (mx, my), ok in zip(modes, cap):
        ax.plot(mx, my, marker="x", ms=8, mew=2, color=ok_colour if ok else "black")
        if radius:
            ax.add_patch(plt.Circle((mx, my), radius, fill=False, ls="--", lw=0.8, color=ok_colour if ok else "black"))
    ax.plot([], [], "x", color=ok_colour, label="mode (captured)" if judged else "mode (not judged)")
    if not all(cap):
        ax.plot([], [], "x", color="black", label="mode (missed)")
    ax.set_aspect("equal", adjustable="datalim")


MARKERS = ("v", "x", "*", "d")


@literal_text
def bars(groups: dict, labels: Sequence[str], title: str, ylabel: str = "", highlight=None,
         highlight_label: str = "") -> str:
    """Grouped bars: ``groups`` = {series name: values}, one bar group per label.

    ``highlight``: a bool per label (legend ``highlight_label``), or {legend label: bools per label}
    for several kinds of marks (missing / starved), each with its own marker.
    """
    n = len(labels)
    fig, ax = plt.subplots(figsize=(min(11, 2.5 + 0.28 * n * max(1, len(groups))), 3.4))
    x = np.arange(n)
    width = 0.8 / max(1, len(groups))
    colours = [REAL_COLOUR, FAKE_COLOUR, "#9467bd", "#8c564b"]
    for i, (name, vals) in enumerate(groups.items()):
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, vals, width, label=name, color=colours[i % len(colours)])
    marks = highlight if isinstance(highlight, dict) else {highlight_label or "marked": highlight}
    top = max((max(v) for v in groups.values() if len(v)), default=1) or 1
    for j, (label, mask) in enumerate((k, m) for k, m in marks.items() if m is not None and any(m)):
        for xi, h in zip(x, mask):
            if h:
                ax.plot(xi, top * 1.05, marker=MARKERS[j % len(MARKERS)], color="black", ms=5)
        ax.plot([], [], MARKERS[j % len(MARKERS)], color="black", label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=90 if n > 20 else 0, fontsize=7 if n > 20 else 9)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig_uri(fig)


HBAR_PANELS, HBAR_LAYERS = 4, 60  # a figure's size is bounded whatever a results file lists (a drawing budget)


def _extreme_layers(layers: dict, keep: int) -> tuple[dict, int]:
    """At most ``keep`` layers, in their order: the largest and the smallest values (and any NaN/Inf), which are
    what a reader looks for; (layers kept, how many there were)."""
    if len(layers) <= keep:
        return layers, len(layers)
    vals = np.array([float(v) for v in layers.values()], dtype=float)
    bad = np.flatnonzero(~np.isfinite(vals))[:keep]
    order = np.argsort(np.where(np.isfinite(vals), vals, 0.0))
    half = max(0, (keep - len(bad)) // 2)
    chosen = set(bad) | set(order[:half]) | set(order[len(order) - (keep - len(bad) - half):])
    names = list(layers)
    return {names[i]: layers[names[i]] for i in sorted(chosen)}, len(layers)


@literal_text
def hbars(series: dict, title: str, xlabel: str, log: bool = True) -> str:
    """Horizontal bars per layer (gradient or spectral norms), one panel per network (at most ``HBAR_PANELS``
    networks and ``HBAR_LAYERS`` layers each: the largest and smallest)."""
    panels = []
    for k, v in list((k, v) for k, v in series.items() if v)[:HBAR_PANELS]:
        kept, total = _extreme_layers(v, HBAR_LAYERS)
        panels.append((k, kept, "" if total == len(kept) else f" ({len(kept)} of {total} layers)"))
    nmax = max(len(v) for _, v, _ in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 0.8 + 0.22 * nmax), squeeze=False)
    for ax, (name, layers, part) in zip(axes[0], panels):
        names = list(layers)
        vals = np.array([layers[n] for n in names], dtype=float)
        finite = np.isfinite(vals)
        y = np.arange(len(names))
        shown = np.where(finite, vals, np.nan)
        ax.barh(y[finite], shown[finite], color=REAL_COLOUR if name.split()[-1].upper().startswith("D") else FAKE_COLOUR)
        for yi in y[~finite]:
            ax.text(0, yi, " NaN/Inf", va="center", color="black", fontsize=7)
        ax.set_yticks(y)
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        if log and finite.any() and (shown[finite] > 0).all():
            ax.set_xscale("log")
        ax.set_title(f"{title}: {name}{part}")
        ax.set_xlabel(xlabel)
    return fig_uri(fig)


@literal_text
def curves(series: dict, title: str = "", ncols: int = 3) -> str:
    """Small multiples: {name: (steps, values)}."""
    names = list(series)
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 2.4 * nrows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        steps, vals = series[name]
        ax.plot(steps, vals, lw=1.2, color=FAKE_COLOUR, marker="." if len(steps) < 30 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        if len(vals) and np.nanmin(vals) > 0 and np.nanmax(vals) / max(np.nanmin(vals), 1e-300) > 1e3:
            ax.set_yscale("log")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig_uri(fig)


@literal_text
def trends(series: dict, run_labels: Sequence[str], ncols: int = 3) -> str:
    """Metric trends over runs: {metric label: (values, ci_lo, ci_hi)}, NaN for missing."""
    names = list(series)
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 2.6 * nrows), squeeze=False)
    x = np.arange(len(run_labels))
    for ax, name in zip(axes.ravel(), names):
        vals, lo, hi = (np.asarray(a, dtype=float) for a in series[name])
        ax.plot(x, vals, marker="o", color=FAKE_COLOUR, lw=1.2)
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.fill_between(x, np.where(ok, lo, vals), np.where(ok, hi, vals), color=FAKE_COLOUR, alpha=0.18,
                            label="95% CI")
            ax.legend(fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels([str(r) for r in run_labels], rotation=30, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig_uri(fig)


MAX_PANELS = 8  # channels drawn per row of a sequence figure


@literal_text
def trajectories(rows: list, channels: int, title: str = "") -> str:
    """Sequence trajectories: one row of panels per group, one panel per channel (at most ``MAX_PANELS``).

    ``rows``: [(row label, real (n, T, C) or None, generated (m, T, C) or None)]; real in blue, generated in red.
    """
    shown = min(channels, MAX_PANELS)
    fig, axes = plt.subplots(len(rows), shown, figsize=(2.3 * shown + 0.6, 1.7 * len(rows) + 0.5), squeeze=False,
                             sharex=True)
    for r, (label, real, fake) in enumerate(rows):
        for c in range(shown):
            ax = axes[r][c]
            for x, colour in ((real, REAL_COLOUR), (fake, FAKE_COLOUR)):
                if x is not None and len(x):
                    ax.plot(np.arange(x.shape[1]), np.asarray(x[:, :, c]).T, color=colour, lw=0.8, alpha=0.55)
            if r == 0:
                ax.set_title(f"channel {c}", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].plot([], [], color=REAL_COLOUR, label="real")
    axes[0][0].plot([], [], color=FAKE_COLOUR, label="generated")
    axes[0][0].legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig_uri(fig)


@literal_text
def acf_curves(real: list, fake: list, title: str = "") -> str:
    """Autocorrelation per channel (lists of ACF values from lag 0), real vs generated, one panel per channel."""
    n = min(max(len(real), len(fake)), MAX_PANELS)
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n + 0.6, 2.3), squeeze=False, sharey=True)
    for c in range(n):
        ax = axes[0][c]
        for series, colour, name in ((real, REAL_COLOUR, "real"), (fake, FAKE_COLOUR, "generated")):
            if c < len(series) and series[c] is not None:
                v = np.asarray([np.nan if x is None else x for x in series[c]], dtype=float)
                ax.plot(np.arange(len(v)), v, marker=".", ms=3, lw=1.2, color=colour, label=name)
        ax.axhline(0, color="#8c959f", lw=0.6)
        ax.set_title(f"channel {c}", fontsize=8)
        ax.set_xlabel("lag", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("autocorrelation", fontsize=8)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig_uri(fig)


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else x - x.mean()


@literal_text
def aligned_pairs(a: np.ndarray, b: np.ndarray, lags: Sequence[int], circular: Sequence[bool],
                  labels: Sequence[str]) -> str:
    """Pairs of sequences, one row per pair (first channels), each channel z-scored, b moved by the lag that aligns it.

    Lag ℓ (linear): b's step k sits under a's step k + ℓ; circular: b rolled by ℓ steps.
    """
    n, steps = len(a), a.shape[1]
    shown = min(a.shape[2], 4)
    fig, axes = plt.subplots(n, shown, figsize=(2.3 * shown + 0.6, 1.4 * n + 0.5), squeeze=False)
    t = np.arange(steps)
    for r in range(n):
        lag, circ = int(lags[r]), bool(circular[r])
        for c in range(shown):
            ax = axes[r][c]
            ax.plot(t, _z(a[r, :, c]), color=REAL_COLOUR, lw=1.1, label="sample i")
            yb = _z(b[r, :, c])
            ax.plot(t, np.roll(yb, lag), color=FAKE_COLOUR, lw=1.1, ls="--", label="sample j, aligned") if circ else \
                ax.plot(t + lag, yb, color=FAKE_COLOUR, lw=1.1, ls="--", label="sample j, aligned")
            if r == 0:
                ax.set_title(f"channel {c} (z-scored)", fontsize=8)
            if c == 0:
                ax.set_ylabel(labels[r], fontsize=7)
            ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    return fig_uri(fig)

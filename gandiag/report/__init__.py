"""A self-contained HTML report of one evaluation, or of several side by side.

The page is assembled from *report sections*, which are plugins
(``register_report_sections``): an object with ``name``, ``title``,
``order``, optionally ``scope`` (``"run"``, the default: rendered once per
evaluated checkpoint; ``"comparison"``: once, only when several runs are
compared), optionally ``kinds`` (the sample kinds it applies to, e.g.
``("sequences",)``; a section of another kind does not appear at all) and
``render(view)``, returning an HTML fragment, or ``None`` when it has nothing
to show (the report then says so in one line). Built-in
sections render through Jinja2 with autoescaping, since checkpoint names and
metadata are untrusted; a plugin's fragment is inserted as it is, so a
plugin must escape what it did not write (``view.render(template, ...)``
does it for them).

Figures are PNG ``data:`` URIs, the CSS is inline and the page carries a
Content-Security-Policy that allows nothing else, so the file opens from a
CI artifact with no network access and runs no script.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from markupsafe import Markup

from ..atomic import write_text
from ..safety.text import unsurrogated

DEFAULT_DIR = "reports"


@dataclass
class RunView:
    """What a section sees of one run: results, artifacts and helpers."""

    results: object  # gandiag.results.Results
    label: str
    index: int = 0
    artifacts: dict = field(default_factory=dict)
    artifacts_note: Optional[str] = None  # why there are no artifacts, when there are none
    json_path: Optional[Path] = None

    @property
    def context(self):
        """The in-process EvalContext, or None for results read from JSON."""
        return self.results.extras.get("context")

    @property
    def kind(self) -> Optional[str]:
        """The run's sample kind: the artifacts', else the contract's, else ``sequences`` when a sequence
        diagnostic ran; None when nothing says (results of image and point runs read without their artifacts)."""
        k = self.artifacts.get("kind") if isinstance(self.artifacts, dict) else None
        if k is not None and str(k):
            return str(k)
        contract = self.results.contract if isinstance(getattr(self.results, "contract", None), dict) else {}
        if isinstance(contract.get("kind"), str):
            return contract["kind"]
        return "sequences" if self.diagnostic("temporal_health") is not None else None

    def diagnostic(self, name: str) -> Optional[dict]:
        d = self.results.diagnostics.get(name) if isinstance(self.results.diagnostics, dict) else None
        return d if isinstance(d, dict) else None

    def render(self, template: str, **values) -> Markup:
        return render_fragment(template, view=self, **values)

    def empty(self, reason: str) -> Markup:
        return render_fragment('{{ note(reason) }}', reason=reason)


@dataclass
class ComparisonView:
    runs: list

    def render(self, template: str, **values) -> Markup:
        return render_fragment(template, view=self, **values)

    def empty(self, reason: str) -> Markup:
        return render_fragment('{{ note(reason) }}', reason=reason)


_env = None


def environment():
    global _env
    if _env is None:
        import jinja2

        _env = jinja2.Environment(loader=jinja2.PackageLoader("gandiag.report", "templates"), autoescape=True,
                                  undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    return _env


def render_fragment(template: str, **values) -> Markup:
    """Render a template string with the shared macros (note, figure, table, kv_table, verdict, badge, reason_item)."""
    env = environment()
    src = '{% from "parts.html" import note, figure, table, kv_table, verdict, badge, reason_item %}' + template
    return Markup(env.from_string(src).render(**values))


def run_label(results, index: Optional[int] = None) -> str:
    g = results.generator or {}
    name = Path(str(g.get("path", "?"))).name or str(g.get("path", "?"))
    if g.get("step") is not None:
        name += f" (step {g['step']})"
    return f"{index + 1}. {name}" if index is not None else name


def _artifacts_for(results) -> tuple[dict, Optional[str]]:
    from .artifacts import collect, load_artifacts

    if "artifacts" in results.extras:
        return results.extras["artifacts"], results.extras.get("artifacts_note")
    if results.extras.get("context") is not None:
        return collect(results), None
    jp = results.extras.get("json_path")
    if jp:
        return load_artifacts(jp, results.to_json())
    return {}, "no samples or features at hand (results read without their artifacts file)"


def _sections():
    from ..plugins import registry

    return sorted(registry("report section").values(), key=lambda s: (getattr(s, "order", 500), s.name))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def shown(section, view) -> bool:
    """Whether a run's section appears at all: a section declaring ``kinds`` appears only for runs of those kinds,
    and one with ``applies(view)`` only where it says yes (the translation section only for translators).

    A run whose kind nothing records (older results, read without artifacts) is an image or point run, so it
    gets the sections that declare ``images``.
    """
    kinds = getattr(section, "kinds", None)
    if kinds and not (view.kind in kinds if view.kind is not None else "images" in kinds):
        return False
    applies = getattr(section, "applies", None)
    if applies is None:
        return True
    try:
        return bool(applies(view))
    except Exception:  # a plugin's broken test: show the section, whose render says what failed
        return True


def _render_section(section, view) -> Markup:
    try:
        html = section.render(view)
    except Exception as exc:  # a broken section must not take the report down with it
        return render_fragment('<p class="error">This section failed: {{ e }}</p>', e=f"{type(exc).__name__}: {exc}")
    if html is None or (isinstance(html, str) and not html.strip()):
        return view.empty(f"Nothing to show for {section.title.lower()} in these results.")
    return Markup(html)


def build_views(results_list: Sequence) -> list:
    views = []
    many = len(results_list) > 1
    for i, r in enumerate(results_list):
        arts, note = _artifacts_for(r)
        jp = r.extras.get("json_path")
        views.append(RunView(r, run_label(r, i if many else None), i, arts, note, Path(jp) if jp else None))
    return views


def render_html(results_list: Sequence, title: Optional[str] = None) -> str:
    from .. import __version__

    if not results_list:
        raise ValueError("render_report needs at least one result")
    views = build_views(results_list)
    sections = _sections()
    blocks = []
    if len(views) > 1:
        cview = ComparisonView(views)
        for s in sections:
            if getattr(s, "scope", "run") == "comparison":
                blocks.append({"id": _slug(s.name), "title": s.title, "html": _render_section(s, cview)})
        runs = []
        for v in views:
            runs.append({"label": v.label, "open": v is views[-1], "sections": [
                {"id": f"run{v.index + 1}-{_slug(s.name)}", "title": s.title, "html": _render_section(s, v)}
                for s in sections if getattr(s, "scope", "run") == "run" and shown(s, v)]})
        blocks.append({"id": "runs", "title": "Each run", "runs": runs})
        title = title or f"gandiag comparison of {len(views)} runs"
        subtitle = " → ".join(v.label for v in views)
    else:
        v = views[0]
        for s in sections:
            if getattr(s, "scope", "run") == "run" and shown(s, v):
                blocks.append({"id": _slug(s.name), "title": s.title, "html": _render_section(s, v)})
        title = title or f"gandiag report: {v.label}"
        real = (v.results.real or {}).get("source")
        subtitle = f"vs {real}" if real else ""
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    page = environment().get_template("report.html").render(
        title=title, subtitle=subtitle, blocks=blocks, version=__version__, created=created)
    # lone surrogates (a non-UTF-8 file name, a "\ud800" in a results file) shown as escapes: UTF-8 cannot hold them
    return unsurrogated(page)


def default_report_path(results) -> Path:
    return report_path_for(str((results.generator or {}).get("path", "report")))


GENERIC_STEMS = {"checkpoint", "model", "generator", "netg", "g", "last", "best", "latest", "final", "weights",
                 "saved_model"}  # names every run's file has: the folder tells the runs apart


def report_path_for(target: str) -> Path:
    """reports/<name>.html for an evaluated path (``--report`` given alone): the file's stem, with its folder's
    name in front when the stem is one every run has (runs/dcgan/checkpoint.pt -> reports/dcgan-checkpoint.html),
    so two runs' reports do not replace each other."""
    p = Path(target)
    stem = p.stem or "report"
    if stem.lower() in GENERIC_STEMS and p.parent.name not in ("", ".", ".."):
        stem = f"{p.parent.name}-{stem}"
    return Path(DEFAULT_DIR) / f"{_slug(stem)}.html"


def render_report(results_list: Sequence, path=None, title: Optional[str] = None) -> Path:
    """Write the HTML report of one run (a single report) or several (a comparison); returns its path."""
    results_list = list(results_list)
    path = Path(path) if path else default_report_path(results_list[-1])
    write_text(path, render_html(results_list, title), "report")
    return path

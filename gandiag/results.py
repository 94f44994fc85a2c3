"""The results of an evaluation and their versioned JSON form.

The JSON schema is documented in docs/results-schema.md; ``schema_version``
changes whenever a field changes meaning or disappears (adding fields does
not). Reports, gates and comparisons read only this JSON, so a saved result
can be re-reported or re-gated without re-running anything.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .atomic import write_text
from .errors import DataError
from .safety.text import clean

SCHEMA = "gandiag.results"
SCHEMA_VERSION = 1
METRIC_ORDER = ("fid", "kid", "is", "precision", "recall", "density", "coverage",
                "disc_score", "pred_score", "acf_distance", "marginal_w1")
HUMAN_FEATURES = "inception-v3"  # metrics on other features are labelled, e.g. "FID [digits]"


@dataclass
class Results:
    metrics: dict  # name -> {"value", "label", "features", "std"?, "ci95"?, ...}
    generator: dict
    contract: Optional[dict]
    real: Optional[dict]
    provenance: dict
    diagnostics: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    # Not serialised: a few samples and the feature sets, for reports and diagnostics in-process.
    extras: dict = field(default_factory=dict, repr=False)
    gates: Optional[list] = None  # [{name, passed, message, value}] when quality gates were checked

    def value(self, name: str) -> float:
        return self.metrics[name]["value"]

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "metrics": self.metrics,
            "generator": self.generator,
            "contract": self.contract,
            "real": self.real,
            "diagnostics": self.diagnostics,
            "warnings": self.warnings,
            **({"gates": self.gates} if self.gates is not None else {}),
            "provenance": self.provenance,
        }

    def to_text(self) -> str:
        """The JSON document, NaN/Inf as null."""
        return json.dumps(_json_safe(self.to_json()), indent=2, allow_nan=False) + "\n"

    def save(self, path) -> None:
        write_text(Path(path), self.to_text(), "results")

    @classmethod
    def from_json(cls, d: dict, where: str = "results") -> "Results":
        """Results from a parsed JSON document, every field's type checked (DataError names the first bad one)."""
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise DataError(f"{where}: not a gandiag results file (no \"schema\": \"{SCHEMA}\" object)")
        v = d.get("schema_version")
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= SCHEMA_VERSION:
            raise DataError(f"{where}: results schema version {clean(repr(v))} is not one this gandiag reads "
                            f"(1..{SCHEMA_VERSION})")
        _check_fields(d, where)
        return cls(d.get("metrics") or {}, d.get("generator") or {}, d.get("contract"), d.get("real"),
                   d.get("provenance") or {}, d.get("diagnostics") or {}, d.get("warnings") or [], gates=d.get("gates"))

    @classmethod
    def load(cls, path) -> "Results":
        from .safety.files import read_text_limited
        from .safety.jsonfile import parse_json

        text = read_text_limited(path, "a results file", error=DataError)
        return cls.from_json(parse_json(text, str(path), unique_keys=True), str(path))

    def summary(self) -> str:
        """A few lines for a terminal or a CI log; any value read from a file is shown, never trusted to format."""
        g, p = self.generator, self.provenance
        lines = [f"gandiag: {g.get('path', '?')} ({g.get('format', '?')})"
                 + (f" vs {self.real.get('source', '?')}" if self.real else ""),
                 f"  {p.get('num_samples')} samples, seed {p.get('seed')}, device {p.get('device')}, "
                 f"features {_feature_names(p)}"]
        for name in metric_order(self.metrics):
            lines.append(_metric_line(name, self.metrics[name]))
        for name, diag in self.diagnostics.items():
            if isinstance(diag, dict) and "verdict" in diag:
                lines.append(_diagnostic_line(name, diag))
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(clean(line) for line in lines)  # data never sends control sequences to a terminal


def _feature_names(provenance: dict) -> str:
    many = provenance.get("extractors")
    if isinstance(many, list) and many:
        return ", ".join(str(e.get("name", "?")) if isinstance(e, dict) else "?" for e in many)
    one = provenance.get("extractor")
    return str(one.get("name", "?")) if isinstance(one, dict) else "?"


def _metric_line(name: str, m: dict) -> str:
    text = _num(m.get("value"), ".6g")
    if m.get("std") is not None:
        text += f" ± {_num(m['std'], '.3g')}"
    ci = m.get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        text += f"  (95% CI {_num(ci[0], '.4g')}–{_num(ci[1], '.4g')})"
    if isinstance(m.get("ceiling"), (int, float)):  # label preservation: the classifier's own held-out accuracy
        text += f"  (ceiling {_num(m['ceiling'], '.3g')})"
    if m.get("error"):
        text += f"  (could not be computed: {m['error']})"
    if m.get("not_applicable"):
        text = f"not applicable: {m['not_applicable']}"
    direction = parse_metric_key(name)[2]
    label = str(m.get("label", name)) + (f" ({direction_label(direction)})" if direction else "")
    return f"  {label:<26} {text}"


def direction_label(direction: str) -> str:
    """'b2a' -> 'B->A': a translator's direction as people read it."""
    a, sep, b = str(direction).partition("2")
    return f"{a.upper()}->{b.upper()}" if sep else str(direction)


def _diagnostic_line(name: str, diag: dict) -> str:
    judged = diag.get("verdict") != "not_applicable"  # nothing judged: the info reasons say why
    reasons = "; ".join(r if isinstance(r, str) else str(r.get("message", r)) if isinstance(r, dict) else str(r)
                        for r in (diag.get("reasons") or [])[:6]
                        if not (judged and isinstance(r, dict) and r.get("level") == "info"))
    skipped = diag.get("skipped")
    if judged and isinstance(skipped, dict) and skipped:  # parts left out (e.g. no real features): named
        reasons += ("; " if reasons else "") + f"skipped: {', '.join(map(str, skipped))[:200]}"
    facts = ""
    if diag.get("modes_total"):
        facts = f" ({diag.get('modes_captured')}/{diag['modes_total']} modes"
        if diag.get("high_quality_fraction") is not None:
            facts += f", {_num(diag['high_quality_fraction'], '.1%')} high quality"
        facts += ")"
    return f"  {name:<24} {diag['verdict']}{facts}" + (f" — {reasons[:500]}" if reasons else "")


_FIELD_TYPES = {"metrics": dict, "generator": dict, "contract": (dict, type(None)), "real": (dict, type(None)),
                "provenance": dict, "diagnostics": dict, "warnings": list, "gates": (list, type(None))}


def _number_or_null(v) -> bool:
    if v is None:
        return True
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        float(v)  # an integer of 400 digits is JSON, not a number anything downstream can use
    except OverflowError:
        return False
    return True


def _check_fields(d: dict, where: str) -> None:
    for key, types in _FIELD_TYPES.items():
        if key in d and not isinstance(d[key], types):
            raise DataError(f"{where}: field {key!r} is a {type(d[key]).__name__}, not what the schema says "
                            "(docs/results-schema.md)")
    for name, m in (d.get("metrics") or {}).items():
        if not isinstance(m, dict) or not _number_or_null(m.get("value")):
            raise DataError(f"{where}: metrics.{clean(name)} must be an object with a numeric \"value\"")
        if not _number_or_null(m.get("std")) or not isinstance(m.get("label", ""), str):
            raise DataError(f"{where}: metrics.{clean(name)} has a non-numeric std or a non-text label")
        for key in ("error", "not_applicable"):  # present means "no value to trust": the reason, never "" or false
            if key in m and not (isinstance(m[key], str) and m[key].strip()):
                raise DataError(f"{where}: metrics.{clean(name)}.{key} must be non-empty text (the reason), "
                                f"got {clean(repr(m[key]))[:40]}")
        ci = m.get("ci95")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(_number_or_null(c) for c in ci)):
            raise DataError(f"{where}: metrics.{clean(name)}.ci95 must be [low, high]")
    prov = d.get("provenance") or {}  # the summary, the report and the baseline comparison read these as objects
    if not isinstance(prov.get("extractor"), (dict, type(None))):
        raise DataError(f"{where}: provenance.extractor must be an object (name, weights_sha256, preprocessing), "
                        f"got a {type(prov['extractor']).__name__}")
    extractors = prov.get("extractors")
    if extractors is not None and not (isinstance(extractors, list) and all(isinstance(e, dict) for e in extractors)):
        raise DataError(f"{where}: provenance.extractors must be a list of objects like provenance.extractor")
    for i, g in enumerate(d.get("gates") or []):  # shown by the summary and the report as pass / FAIL
        if not (isinstance(g, dict) and isinstance(g.get("name"), str) and isinstance(g.get("passed"), bool)
                and isinstance(g.get("message"), str) and _number_or_null(g.get("value"))):
            raise DataError(f"{where}: gates[{i}] must be an object with a text name, passed true or false, a text "
                            f"message and a numeric (or null) value, got {clean(repr(g))[:60]}")
    for name, diag in (d.get("diagnostics") or {}).items():
        if not isinstance(diag, dict) or not isinstance(diag.get("verdict", ""), (str, type(None))):
            raise DataError(f"{where}: diagnostics.{clean(name)} must be an object whose verdict is text")
        if not isinstance(diag.get("reasons", []), list):
            raise DataError(f"{where}: diagnostics.{clean(name)}.reasons must be a list")


def metric_label(label: str, extractor: str) -> str:
    return label if extractor == HUMAN_FEATURES else f"{label} [{extractor}]"


# The key grammar of ``results.metrics`` (docs/results-schema.md): NAME[@FEATURES][:DIRECTION].
# A run's primary (first) feature extractor gives plain keys (``fid``); every other extractor's metrics carry
# its name (``fid@digits``); a metric of one direction of a translator carries it (``fid:b2a``, ``fid@dinov2:b2a``).
# Gates, the summary and the report all read keys through these two functions.


def metric_key(name: str, features: Optional[str] = None, direction: Optional[str] = None) -> str:
    return name + (f"@{features}" if features else "") + (f":{direction}" if direction else "")


def parse_metric_key(key: str) -> tuple:
    """(name, features or None, direction or None) of a results.metrics key."""
    rest, _, direction = key.partition(":")
    name, _, features = rest.partition("@")
    return name, features or None, direction or None


def metric_order(keys) -> list:
    """Keys in the order people read metrics: by metric (FID, KID, IS, precision...), then feature space."""
    def rank(key):
        name, features, direction = parse_metric_key(key)
        return (METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER), name,
                features or "", direction or "")

    return sorted(keys, key=rank)


def format_number(v, digits: int = 6, missing: str = "n/a", percent: bool = False) -> str:
    """A number as gandiag prints it everywhere (summary, gates, diagnostics' messages, report):
    ``digits`` significant digits (or a percentage with one decimal), ``missing`` for None, yes/no for
    booleans, and anything that is not a finite-formattable number shown as short text (a file said it)."""
    if v is None:
        return missing
    if isinstance(v, bool):
        return "yes" if v else "no"
    if not isinstance(v, numbers.Real):  # numpy scalars are numbers.Real too
        return str(v)[:40]
    if isinstance(v, numbers.Integral) and not percent:
        text = str(int(v))
        return text if len(text) <= 20 else text[:20] + "…"
    try:
        return format(float(v), ".1%" if percent else f".{digits}g")
    except (OverflowError, ValueError, TypeError):
        return str(v)[:40]


def _num(v, spec: str) -> str:
    """Summary formatting: ``spec`` is ".Ng" or ".1%"."""
    return format_number(v, percent=True) if spec.endswith("%") else format_number(v, int(spec[1:-1]))


def _json_safe(obj: Any) -> Any:
    """Numbers that JSON cannot hold (NaN, Inf) become null: a reader sees 'no value', never a fake one."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _json_safe(obj.item())
    return obj

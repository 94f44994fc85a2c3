"""Translation diagnostics on planted translators whose truth is known (tests/translators.py).

Each planted translator is built so that one failure is present and the
others are not: the exact inversion (digits) or rotation (ring8) is healthy
on every count; a constant, a random target sample or one picked by a hash
of the input ignore the input; a copy changes nothing; a label flip keeps
the look of the target domain but changes the digit; the steganographic
pair hides the input in a checkerboard of a few grey levels. The verdicts
below are the diagnostics' truth table; the evidence numbers are checked
where their value is known exactly (0 for a deterministic translator's
re-translation, 1 for the amplification of an honest inverse).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import gandiag
import translators as T
from conftest import gandiag_in_process
from gandiag.diagnostics.steganography import AMP_BAD, steganographic_cycle
from gandiag.diagnostics.translation import content_preservation, identity_mapping, input_ignored

DIAGNOSTICS = {"input_ignored": input_ignored, "identity_mapping": identity_mapping,
               "content_preservation": content_preservation, "steganographic_cycle": steganographic_cycle}

# (kind, planted translator): the verdicts it must get (a diagnostic left out is not part of the planted truth).
TRUTH_TABLE = {
    ("images", "truth"): dict(input_ignored="none", identity_mapping="none", content_preservation="preserved",
                              steganographic_cycle="none"),
    ("images", "noisy"): dict(input_ignored="none", identity_mapping="none", content_preservation="preserved",
                              steganographic_cycle="none"),
    ("images", "constant"): dict(input_ignored="collapsed", content_preservation="lost", steganographic_cycle="none"),
    ("images", "random_target"): dict(input_ignored="collapsed", content_preservation="lost"),
    ("images", "hashed_target"): dict(input_ignored="collapsed", content_preservation="lost"),
    ("images", "copy"): dict(input_ignored="none", identity_mapping="identity"),
    ("images", "blend"): dict(identity_mapping="partial"),
    ("images", "label_flip"): dict(input_ignored="none", identity_mapping="none", content_preservation="lost",
                                   steganographic_cycle="none"),
    ("images", "some_flipped"): dict(input_ignored="none", content_preservation="partial"),
    ("images", "stego"): dict(steganographic_cycle="steganographic", content_preservation="lost"),
    ("points", "truth"): dict(input_ignored="none", identity_mapping="none", content_preservation="preserved",
                              steganographic_cycle="none"),
    ("points", "noisy"): dict(input_ignored="none", identity_mapping="none", content_preservation="preserved"),
    ("points", "constant"): dict(input_ignored="collapsed", content_preservation="lost"),
    ("points", "random_target"): dict(input_ignored="collapsed", content_preservation="lost"),
    ("points", "hashed_target"): dict(input_ignored="collapsed", content_preservation="lost"),
    ("points", "copy"): dict(input_ignored="none", identity_mapping="identity"),
    ("points", "blend"): dict(input_ignored="none", identity_mapping="partial"),
    ("points", "label_flip"): dict(input_ignored="none", identity_mapping="none", content_preservation="lost"),
}


def planted_run(kind: str, name: str, n: int = 200):
    mods = T.image_translators() if kind == "images" else T.point_translators()
    inverse = mods["stego_decoder"] if name == "stego" else (T.Negate() if kind == "images" else mods["inverse"])
    return T.make_run(kind, mods[name], inverse=inverse, n=n)


@pytest.mark.parametrize("kind,name", list(TRUTH_TABLE))
def test_planted_translators_get_their_verdicts(kind, name):
    run = planted_run(kind, name)
    got = {d: DIAGNOSTICS[d](run)["verdict"] for d in TRUTH_TABLE[(kind, name)]}
    assert got == TRUTH_TABLE[(kind, name)]


def test_evidence_of_the_exact_translation():
    run = planted_run("images", "truth")
    ignored = input_ignored(run)
    assert ignored["consistency"]["retranslation_distance"] == 0  # deterministic and batch-independent
    assert ignored["dependence"]["rho"] > 0.99  # negation keeps every L1 distance between inputs
    assert ignored["diversity"]["ratio"] == pytest.approx(1.0, abs=0.05)  # as diverse as the inverted digits
    stego = steganographic_cycle(run)
    for what in ("noise", "blur"):  # the negation's inverse moves exactly as much as its input moved
        assert stego["perturbation"][what]["amplification"] == pytest.approx(1.0, abs=0.02)
    assert stego["cycle_error"] == 0
    # all 1,797 digits: 20 inputs of a class are too few to say which classes changed (the first 20 twos are
    # labelled 2 half as often as held-out twos are, by the exact translation)
    content = content_preservation(planted_run("images", "truth", n=1797))
    assert content["labels"]["score"] > 0.95 and content["labels"]["flipped_classes"] == []


def test_evidence_of_the_failures():
    rnd = input_ignored(planted_run("images", "random_target"))
    assert rnd["consistency"]["ratio"] > 0.8  # a new draw is about as far as another input's output
    hashed = input_ignored(planted_run("images", "hashed_target"))
    assert hashed["consistency"]["retranslation_distance"] == 0  # deterministic ...
    assert abs(hashed["dependence"]["rho"]) < 0.1  # ... and unrelated to the input: the Mantel test says so
    stego = steganographic_cycle(planted_run("images", "stego"))
    assert stego["cycle_error"] == 0 and stego["perturbation"]["amplification"] >= AMP_BAD
    assert stego["visibility"]["visible_ratio"] < 0.25
    flipped = content_preservation(planted_run("images", "some_flipped", n=1797))
    assert flipped["labels"]["flipped_classes"] == ["1", "3", "5", "7"]
    copy = identity_mapping(planted_run("images", "copy"))
    assert copy["change"]["change"] == 0 and copy["change"]["ratio"] == 0


def test_not_judged_without_what_each_needs():
    run = planted_run("images", "truth")
    run.inverse = None
    assert steganographic_cycle(run)["verdict"] == "not_applicable"
    run = planted_run("images", "truth")
    run.input_labels = None
    assert content_preservation(run)["verdict"] == "not_applicable"
    run = planted_run("images", "truth")
    run.target_samples = run.target_samples[:, :, :4]  # no target of the inputs' shape: no domain gap
    assert identity_mapping(run)["verdict"] == "not_applicable"
    run = planted_run("points", "truth")
    run.outputs = run.outputs[:3]
    assert input_ignored(run)["verdict"] == "not_applicable"


def test_a_check_that_crashes_fails_closed():
    run = planted_run("images", "truth")

    def device_lost(x):  # the outputs were made; translating the inputs again (consistency) fails
        raise RuntimeError("device lost")

    run.forward = device_lost
    out = input_ignored(run)
    assert out["verdict"] == "error" and "device lost" in json.dumps(out["reasons"])
    run = planted_run("images", "stego")
    run.inverse = lambda y: (_ for _ in ()).throw(ValueError("decoder refused"))
    out = steganographic_cycle(run)
    assert out["verdict"] == "error"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return T.save_all(tmp_path_factory.mktemp("planted"))


def test_through_evaluate_both_directions_and_gates(saved, tmp_path):
    r = gandiag.evaluate(saved["images"]["stego"], inputs="digits-inverted:a", real="digits-inverted:b",
                         inverse=saved["images"]["stego_decoder"], num_samples=200, progress=False)
    d = r.diagnostics
    assert d["steganographic_cycle"]["verdict"] == "steganographic"
    assert d["input_ignored"]["verdict"] == "collapsed"
    for name in DIAGNOSTICS:  # the inverse direction is judged too, under its own keys
        assert d[f"{name}:b2a"]["verdict"] in [*d[name]["levels"], "not_applicable"], name
    assert "mode_collapse" not in d  # a translator's collapse is input_ignored's to judge
    gates = tmp_path / "gates.toml"
    gates.write_text('[gates]\ninput_ignored = { deny = ["collapsed"] }\n')
    res = gandiag_in_process("evaluate", saved["points"]["constant"], "--inputs", "ring8-rotated:a", "--real",
                             "ring8-rotated:b", "-n", 200, "--gate", gates, "--no-progress")
    assert res.returncode == 1 and "input_ignored" in res.stdout + res.stderr
    res = gandiag_in_process("evaluate", saved["points"]["truth"], "--inputs", "ring8-rotated:a", "--real",
                             "ring8-rotated:b", "-n", 200, "--gate", gates, "--no-progress")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Input ignored" in res.stdout or "input_ignored" in res.stdout


def test_latent_generators_get_no_translation_verdicts():
    from gandiag.diagnostics.translation import ContentPreservation, IdentityMapping, InputIgnored
    from gandiag.diagnostics.steganography import SteganographicCycle

    class Ctx:  # what the pipeline hands a diagnostic for a generator of latents
        translation = None

    for d in (InputIgnored(), IdentityMapping(), ContentPreservation(), SteganographicCycle()):
        assert not d.applies(Ctx())


def test_verdict_levels_are_ordered_best_to_worst():
    for name, levels in (("input_ignored", ("none", "partial", "collapsed")),
                         ("identity_mapping", ("none", "partial", "identity")),
                         ("content_preservation", ("preserved", "partial", "lost")),
                         ("steganographic_cycle", ("none", "suspect", "steganographic"))):
        out = DIAGNOSTICS[name](planted_run("points", "truth"))
        assert tuple(out["levels"]) == levels
    assert np.isfinite(input_ignored(planted_run("points", "truth"))["dependence"]["rho"])

"""When gandiag compiles a feature extractor, and what a compiled one does with odd batches and failures.

The numbers of a compiled Inception against torch-fidelity's are in
tests/test_parity_torch_fidelity.py; here, the rule and the wrapper, with a
stand-in for the compiled function (compiling a real network costs a minute).
"""

from __future__ import annotations

import torch

from gandiag.features import compiled


class Stub:
    name = "stub"

    def compile(self, warn):
        self.compiled_call = "set"


class NoCompile:
    name = "plain"


def test_the_rule():
    assert compiled.decide(None, 5000, "cpu", Stub()) == (True, "5,000 images >= 1,000")
    use, why = compiled.decide(None, 999, "cpu", Stub())
    assert not use and "cost more than it saves" in why
    use, why = compiled.decide(None, 10 ** 6, "cuda", Stub())
    assert not use and "--compile" in why  # no measurement on a GPU says it pays
    assert compiled.decide(True, 10, "cpu", Stub()) == (True, "--compile")
    assert compiled.decide(False, 10 ** 6, "cpu", Stub()) == (False, "--no-compile")
    assert compiled.decide(True, 10, "cpu", NoCompile())[0] is False  # digits, points: nothing to compile


class Double(torch.nn.Module):
    def forward(self, x):
        return x * 2, x.sum(1)


def _wrapped(fake_compiled):
    call = compiled.CompiledCall.__new__(compiled.CompiledCall)
    warnings = []
    call.eager, call.warn, call.compiled, call.batch, call.failed = Double(), warnings.append, fake_compiled, None, None
    return call, warnings


def test_smaller_batches_are_padded_to_the_compiled_shape_and_larger_ones_split():
    shapes = []

    def fake(x):
        shapes.append(tuple(x.shape))
        return Double()(x)

    call, _ = _wrapped(fake)
    x = torch.arange(48.0).reshape(16, 3)
    a, b = call(x)
    assert torch.equal(a, x * 2)
    a, b = call(x[:5])  # padded with zeros to 16, the padding's rows dropped
    assert a.shape == (5, 3) and torch.equal(a, x[:5] * 2) and torch.equal(b, x[:5].sum(1))
    a, _ = call(torch.cat([x, x[:4]]))  # 20 rows: 16 and 4 (padded)
    assert a.shape == (20, 3)
    assert set(shapes) == {(16, 3)}  # one shape only: never a recompilation


def test_a_failed_compilation_runs_eagerly_with_a_warning():
    def broken(x):
        raise RuntimeError("InductorError: no C++ compiler found\nmore detail")

    call, warnings = _wrapped(broken)
    a, _ = call(torch.ones(4, 3))
    assert torch.equal(a, torch.full((4, 3), 2.0)) and call.failed.startswith("RuntimeError: InductorError")
    assert len(warnings) == 1 and "running it without compilation" in warnings[0]
    call(torch.ones(4, 3))
    assert len(warnings) == 1  # said once
    e = Stub()
    e.compiled_call = call
    state = compiled.state([e], {"stub": {"compiled": True, "why": "--compile"}})
    assert state["stub"]["compiled"] is False and "failed" in state["stub"]["why"]

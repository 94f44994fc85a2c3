"""Shared fixtures. Nothing here touches the network: Inception weights are a
randomly initialised network saved to a file, which torch-fidelity accepts
as well, so parity tests compare both tools on identical weights."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ["GANDIAG_OFFLINE"] = "1"
# examples/ are importable by the tests that run them (the DCGAN tutorial's loop with the monitor)
sys.path.append(str(Path(__file__).resolve().parent.parent / "examples"))  # after tests/: never shadows a test module


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANDIAG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("GANDIAG_OFFLINE", "1")


def _random_inception_state(seed: int = 0) -> dict:
    """A random Inception-v3 with activations of order 1 (fan-in init), so features are not ~0."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    orig_load, orig_url = fe.FeatureExtractorInceptionV3.load_state_dict, fe.load_state_dict_from_url
    fe.FeatureExtractorInceptionV3.load_state_dict = lambda self, sd: None
    fe.load_state_dict_from_url = lambda *a, **k: {}
    try:
        torch.manual_seed(seed)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    finally:
        fe.FeatureExtractorInceptionV3.load_state_dict, fe.load_state_dict_from_url = orig_load, orig_url
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    return {k: v.float() for k, v in net.state_dict().items()}


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save(_random_inception_state(), path)
    return str(path)


@contextlib.contextmanager
def installed(plugin, name="inline-test"):
    """``plugin`` registered for the duration of the block (registries rebuilt on entry and exit): the one way a
    test adds a plugin in-process."""
    from gandiag import plugins

    plugins.load_plugins()
    plugins.pm.register(plugin, name=name)
    plugins.reset()
    try:
        yield plugin
    finally:
        plugins.pm.unregister(name=name)
        plugins.reset()


def gandiag_in_process(*args, cwd=None, env=None):
    """``gandiag ARGS`` in this process through click's CliRunner (the group the console entry runs, without
    ~2 s of interpreter start-up): an object with ``returncode``, ``stdout`` and ``stderr`` like subprocess.run's.
    An internal error (exit 3, or an exception that escaped) fails the test with its traceback. For what needs
    a real process (the console entry's exit status, signals, torchrun, FIFOs that could block, an isolated
    environment), use a subprocess."""
    import contextlib
    from types import SimpleNamespace

    from click.testing import CliRunner

    from gandiag.cli import _add_plugin_commands
    from gandiag.cli import cli as group

    _add_plugin_commands()
    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        res = CliRunner().invoke(group, [str(a) for a in args], prog_name="gandiag", env=env)
    if res.exit_code == 3 or (res.exception is not None and not isinstance(res.exception, SystemExit)):
        raise AssertionError(f"gandiag {' '.join(map(str, args))}: internal error (exit {res.exit_code}): "
                             f"{res.stderr}") from res.exception
    return SimpleNamespace(returncode=res.exit_code, stdout=res.stdout, stderr=res.stderr)


def write_pngs(folder, images: np.ndarray) -> str:
    """images: (N, H, W, C) or (N, H, W) uint8 → PNG files."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im.squeeze()).save(folder / f"{i:04d}.png")
    return str(folder)


def colour_digits(n: int, seed: int, size: int = 32, shift: float = 0.0) -> np.ndarray:
    """RGB images made from the bundled digits: upscaled, tinted, with noise (NHWC uint8)."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    d = load_digits().images
    idx = rng.choice(len(d), n, replace=n > len(d))  # noise keeps repeats distinct
    t = torch.from_numpy(d[idx] / 16.0).float()[:, None]
    t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()
    tint = rng.uniform(0.3, 1.0, size=(n, 1, 1, 3))
    img = t[..., None] * tint + shift + rng.normal(0, 0.05, size=(n, size, size, 3))
    return np.clip(img * 255, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- property-based tests
# Hypothesis profiles: "ci" is derandomised (the same examples on every run, so a
# failure reproduces from the log), "dev" draws new examples each run. Both bound
# the work per test so `make test` stays fast. HYPOTHESIS_PROFILE overrides.

try:
    from hypothesis import HealthCheck
    from hypothesis import settings as _hyp_settings
except ImportError:  # the fuzz tests say so themselves (require_extra)
    _hyp_settings = None

if _hyp_settings is not None:
    _HYP_BOUNDS = dict(
        max_examples=40,  # tests pass their own smaller/larger count with @settings(max_examples=...)
        deadline=None,  # CPU time on a shared runner is too noisy for per-example deadlines
        print_blob=True,  # a failure prints @reproduce_failure(...) for the exact example
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                               HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    _hyp_settings.register_profile("ci", derandomize=True, database=None, **_HYP_BOUNDS)
    _hyp_settings.register_profile("dev", **_HYP_BOUNDS)
    _hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                               or ("ci" if os.environ.get("CI") == "true" else "dev"))


def require_extra(module_name: str):
    """Import and return an optional dependency; missing, it fails in CI (CI=true) and skips elsewhere."""
    import importlib

    try:
        if module_name == "tensorflow":  # through gandiag: the import order with triton matters
            from gandiag.export.tensorflow import import_tensorflow

            return import_tensorflow()
        return importlib.import_module(module_name)
    except ImportError as exc:
        msg = (f"optional dependency {module_name!r} is not installed ({exc}); "
               "install the extras: pip install -e '.[test,onnx,tensorflow,motion,modern]'")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{msg} (CI=true: a missing extra fails rather than skips)", pytrace=False)
        pytest.skip(msg, allow_module_level=True)

"""The report in a real browser: headless Chromium loads it offline, logs no console error, and draws something.

Chromium is installed by ``scripts/ensure_chromium.sh`` (``make test`` runs it);
without it this test skips and says why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from gandiag.pipeline import evaluate
from gandiag.report import render_report

XSS = "<script>alert(1)</script>"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on PATH: run scripts/ensure_chromium.sh (make test does) to run the browser test")


def browser(exe, tmp_path, *args, timeout=90):
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "HOME": str(tmp_path)})


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from gandiag.features.digits import digits_uint8

    d = tmp_path_factory.mktemp("browser")
    images, _ = digits_uint8()
    np.savez(d / "digits.npz", images=images[:200])
    r = evaluate(d / "digits.npz", "digits", metrics=["fid", "precision", "recall"], diagnostics=False)
    r.generator["path"] = f"/runs/{XSS}/checkpoint.pt"
    return render_report([r], d / "report.html")


def console_problems(stderr: str) -> list:
    bad = []
    for line in stderr.splitlines():
        if re.search(r"CONSOLE|Uncaught|Refused to|Content.Security.Policy|net::ERR_", line):
            bad.append(line)
    return bad


def test_report_loads_without_console_errors_and_is_not_blank(report, tmp_path):
    from PIL import Image

    exe = chromium()
    shot = tmp_path / "shot.png"
    res = browser(exe, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri())
    assert shot.is_file(), f"no screenshot; chromium said:\n{res.stderr[-2000:]}"
    assert not console_problems(res.stderr), console_problems(res.stderr)
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape[0] >= 1000 and img.std() > 10, "the screenshot is (nearly) uniform: nothing was drawn"
    assert (img < 100).mean() > 0.005  # dark pixels: text and figures


def test_dom_has_sections_and_no_injected_script(report, tmp_path):
    exe = chromium()
    res = browser(exe, tmp_path, "--dump-dom", report.as_uri())
    dom = res.stdout
    # Text from inside the sections (the navigation lists every title whatever the sections hold).
    assert "FID [digits]" in dom and "provenance.seed" in dom, res.stderr[-2000:]
    assert "PCA of digits features" in dom and "This section failed" not in dom
    assert "<script" not in dom.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert not console_problems(res.stderr), console_problems(res.stderr)


def test_the_console_check_catches_errors(tmp_path):
    """Negative control: a page that logs an error must trip the same check."""
    exe = chromium()
    page = tmp_path / "bad.html"
    page.write_text('<html><body><script>console.error("boom"); undefinedFn();</script></body></html>')
    res = browser(exe, tmp_path, "--dump-dom", page.as_uri())
    assert any("boom" in line for line in console_problems(res.stderr)), res.stderr[-2000:]

"""What gandiag.Monitor costs a training loop, checks aside: the DCGAN tutorial's loop on the digits, timed
bare and with the monitor (log every 50 steps, no periodic checks), both ways of reading gradients.

    PYTHONPATH=. python benchmarks/monitor_overhead.py [--steps 600] [--repeats 3]

Writes benchmarks/results/monitor_overhead_cpu.{json,md}. The periodic checks cost what an evaluation of
``check_samples`` samples costs (docs/monitor.md); this measures the per-step part: the step call, the
log lines, the gradient hooks.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import monitor_dcgan_tutorial as tut  # noqa: E402
from results_io import write_results  # noqa: E402  (benchmarks/ is on sys.path when one runs)


def run(steps: int, mode: str, out: Path) -> float:
    """Seconds for ``steps`` tutorial iterations; ``mode``: bare, optimizer (hooks on the optimisers' steps) or
    backward-pass (hooks on every parameter)."""
    import gandiag

    torch.manual_seed(0)
    data = tut.digits_tensor()
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, drop_last=True)
    netG, netD = tut.Generator(), tut.Discriminator()
    crit = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    mon = None
    if mode != "bare":
        mon = gandiag.Monitor(netG, netD, out=out, check_every=0, overwrite=True,
                              optimizers=(optG, optD) if mode == "optimizer" else (), stream=open("/dev/null", "w"))
    done, t0 = 0, time.perf_counter()
    while done < steps:
        for real in loader:
            netD.zero_grad()
            b = real.size(0)
            out_real = netD(real).view(-1)
            err_real = crit(out_real, torch.ones(b))
            err_real.backward()
            fake = netG(torch.randn(b, tut.NZ, 1, 1))
            out_fake = netD(fake.detach()).view(-1)
            err_fake = crit(out_fake, torch.zeros(b))
            err_fake.backward()
            optD.step()
            netG.zero_grad()
            err_g = crit(netD(fake).view(-1), torch.ones(b))
            err_g.backward()
            optG.step()
            if mon is not None:
                mon.step(d_loss=err_real + err_fake, g_loss=err_g, d_real=out_real, d_fake=out_fake)
            done += 1
            if done >= steps:
                break
    seconds = time.perf_counter() - t0
    if mon is not None:
        mon.close(final_check=False)
    return seconds


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("bare", "optimizer", "backward-pass") * a.repeats:
            rows.setdefault(mode, []).append(run(a.steps, mode, Path(tmp) / mode))
    best = {m: min(v) for m, v in rows.items()}
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or
              platform.machine(), "steps": a.steps, "seconds_best_of": a.repeats, "seconds": best,
              "ms_per_step": {m: 1000 * s / a.steps for m, s in best.items()},
              "overhead_vs_bare": {m: best[m] / best["bare"] - 1 for m in best if m != "bare"}}
    md = [f"The DCGAN tutorial's loop on the digits, {a.steps} steps, best of {a.repeats}; torch {torch.__version__}, "
          f"{result['threads']} threads, no periodic checks (log every 50 steps).", "",
          "| loop | ms per step | overhead |", "| --- | --- | --- |"]
    for m in ("bare", "optimizer", "backward-pass"):
        over = "" if m == "bare" else f"{100 * result['overhead_vs_bare'][m]:+.1f}%"
        md.append(f"| {m if m != 'bare' else 'no monitor'}{' hooks' if m != 'bare' else ''} | "
                  f"{result['ms_per_step'][m]:.2f} | {over} |")
    write_results(ROOT / "benchmarks" / "results", "monitor_overhead_cpu", result, "\n".join(md))


if __name__ == "__main__":
    main()

"""The memorization verdict, its arithmetic and the splits it needs, calibrated on planted and trained generators.

Planted generators (docs/diagnostics.md, "Memorisation"): samples of the digits'
training rows returned exactly or with a brightness jitter (``severe``, and
not mode collapse), a healthy trained DCGAN whose samples are replaced by
training copies 30% of the time (``partial``), one image that is not a
training image repeated (mode collapse, not memorization), and the trained
fixtures (``none``). Each is an .npz of generated samples evaluated against
``--real digits``, except the copying generator, which is a torch.export
program so that the latent signal of mode collapse runs too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import gandiag_in_process

from gandiag import evaluate
from gandiag.data.sources import DigitsSource
from gandiag.data.splits import HELD_OUT_FRACTION, source_split, stratified_split
from gandiag.diagnostics import data_copying

N = 3000
FIXTURES = "tests/fixtures/models"


@pytest.fixture(scope="module")
def digits():
    s = DigitsSource().load("digits")
    split = source_split("digits", s)
    return s.data.numpy(), np.asarray(s.labels), split


def jitter(images: np.ndarray, amplitude: float, rng) -> np.ndarray:
    """Each image's grey levels scaled by 1 ± up to ``amplitude`` (a brightness jitter), back to uint8."""
    f = 1 + rng.uniform(-amplitude, amplitude, size=(len(images), 1, 1, 1))
    return np.clip(np.rint(images.astype(float) * f), 0, 255).astype(np.uint8)


def healthy_samples(n: int) -> np.ndarray:
    """Samples of the trained healthy DCGAN fixture, uint8 NCHW."""
    from pathlib import Path

    from gandiag.generator.loading import LoadOptions, load_generator
    from gandiag.generator.sampling import sample_batches
    from gandiag.options import EvalOptions

    g = load_generator(Path(FIXTURES) / "digits_dcgan" / "checkpoint.pt", LoadOptions.from_options(EvalOptions()))
    return torch.cat([b for b, _ in sample_batches(g, g.contract, n, 7, 500, "cpu", 0, 1)]).numpy()


@pytest.fixture(scope="module")
def planted(tmp_path_factory, digits):
    """name -> .npz path of planted generated samples (uint8 NCHW)."""
    x, _, split = digits
    rng = np.random.default_rng(0)
    train = x[split.train]
    mixed = healthy_samples(N)
    where = rng.choice(N, int(0.3 * N), replace=False)
    mixed[where] = jitter(train[rng.integers(0, len(train), len(where))], 0.05, rng)
    cases = {
        "exact": train[rng.integers(0, len(train), N)],
        "jitter": jitter(train[rng.integers(0, len(train), N)], 0.05, rng),
        "copies30": mixed,
        "one_new_image": np.repeat(x[split.held_out][5:6], N, 0),  # not a training image
    }
    folder = tmp_path_factory.mktemp("planted")
    out = {}
    for name, images in cases.items():
        out[name] = str(folder / f"{name}.npz")
        np.savez(out[name], images=images)
    return out


def verdicts(path, **kw) -> tuple[dict, dict]:
    r = evaluate(path, kw.pop("real", "digits"), metrics=["fid"], **kw)
    return r.diagnostics["memorization"], r.diagnostics.get("mode_collapse")


# ----------------------------------------------------------------------------- the split


def test_split_is_fixed_stratified_and_disjoint(digits):
    x, labels, split = digits
    assert (len(split.train), len(split.held_out)) == (1438, 359)
    assert not set(split.train) & set(split.held_out) and len(split.train) + len(split.held_out) == len(x)
    for c in range(10):
        share = np.mean(labels[split.held_out] == c) / np.mean(labels == c)
        assert abs(share * len(split.held_out) / len(x) - HELD_OUT_FRACTION) < 0.01
    again = stratified_split(len(labels), labels)
    assert np.array_equal(again.held_out, split.held_out)  # the rule alone decides: no seed, no state


def test_trainer_trains_on_the_training_rows_only(digits):
    from gandiag.training.data import TrainingData

    x, _, split = digits
    data = TrainingData("digits")
    assert data.n == len(split.train)
    assert torch.equal(data.real_uint8, torch.from_numpy(x[split.train]))
    assert data.checkpoint_data()["split"] == {"rule": split.rule, "held_out_fraction": HELD_OUT_FRACTION,
                                               "n_train": 1438, "n_held_out": 359}
    assert "split" not in TrainingData("ring8").checkpoint_data()


# ----------------------------------------------------------------------------- the arithmetic


def test_c_t_cell_statistic_is_meehans_z_scored_u():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(1)
    gen, held = rng.exponential(1.0, 200), rng.exponential(1.3, 50)
    u = mannwhitneyu(gen, held).statistic  # U of the first sample: pairs with gen > held
    want = (u - (200 * 50 / 2 - 0.5)) / np.sqrt(200 * 50 * (200 + 50 + 1) / 12)
    assert data_copying.mann_whitney_z(gen, held) == pytest.approx(want, rel=1e-12)
    assert data_copying.mann_whitney_z(np.zeros(100), held) < -5  # copies: every distance smaller


def test_authenticity_is_the_papers_definition_per_sample():
    rng = np.random.default_rng(2)
    train, fake = rng.normal(size=(60, 3)), rng.normal(size=(40, 3))
    dist, index = data_copying.nearest(fake, train)
    train_nn, _ = data_copying.nearest(train, train, exclude_self=True)
    want = []
    for f in fake:  # brute force: nearest training sample t, closer than t's own nearest training neighbour?
        d = np.linalg.norm(train - f, axis=1)
        t = int(d.argmin())
        own = np.sort(np.linalg.norm(train - train[t], axis=1))[1]
        want.append(d[t] < own)
    assert np.array_equal(data_copying.inauthentic(dist, index, train_nn), np.array(want))


# ----------------------------------------------------------------------------- planted generators


@pytest.mark.parametrize("case", ["exact", "jitter"])
def test_copies_are_memorization_not_mode_collapse(planted, case):
    memo, mc = verdicts(planted[case])
    assert memo["verdict"] == "severe", memo["reasons"]
    assert memo["copies"]["copy_share"] > 0.95 and memo["copies"]["held_out_copy_share"] < 0.07
    assert memo["c_t"]["c_t"] < -5
    assert mc["verdict"] == "none", mc["reasons"]
    dup = mc["signals"]["duplicates"]
    assert dup["copy_pairs"] > 1000 and dup["rate_ratio"] < 10  # the pairs were copies of one training image


def test_copying_thirty_percent_of_the_time_is_partial(planted):
    memo, mc = verdicts(planted["copies30"])
    assert memo["verdict"] == "partial", memo["reasons"]
    assert 0.25 < memo["copies"]["copy_share"] < 0.4
    assert mc["verdict"] == "none"


def test_one_repeated_image_that_is_not_a_training_image_is_collapse_not_memorization(planted):
    memo, mc = verdicts(planted["one_new_image"])
    assert mc["verdict"] == "severe"
    assert memo["verdict"] == "none", memo["reasons"]
    assert memo["copies"]["copy_share"] == 0.0
    assert memo["c_t"]["held_out_share_judged"] < 0.5  # one cell: C_T is said, not judged


class Copier(torch.nn.Module):
    """z (N, 16) -> a training digit chosen by z, its brightness jittered by z: a generator that memorised."""

    def __init__(self, bank: torch.Tensor):
        super().__init__()
        self.register_buffer("bank", bank.float() / 127.5 - 1.0)

    def forward(self, z):
        u = 0.5 * (1 + torch.erf(z[:, 0] / 2 ** 0.5))  # uniform in (0, 1): every training digit equally often
        idx = (u * self.bank.shape[0]).long().clamp(0, self.bank.shape[0] - 1)
        scale = 1 + 0.05 * torch.tanh(z[:, 1])
        return ((self.bank[idx] + 1) * scale[:, None, None, None] - 1).clamp(-1, 1)


def test_a_copying_generator_is_memorization_severe_and_not_collapsed(tmp_path, digits):
    from gandiag.generator.contract import STORED_IN_ARCHIVE, GeneratorContract, stored_text

    x, _, split = digits
    path = tmp_path / "copier.pt2"
    program = torch.export.export(Copier(torch.from_numpy(x[split.train])).eval(), (torch.zeros(2, 16),),
                                  dynamic_shapes=({0: torch.export.Dim("n", min=1, max=1 << 16)},))
    contract = GeneratorContract(latent_dim=16, kind="images", output_range="-1,1", layout="NCHW")
    torch.export.save(program, str(path), extra_files={STORED_IN_ARCHIVE: stored_text(contract)})
    memo, mc = verdicts(path, num_samples=N)
    assert memo["verdict"] == "severe" and mc["verdict"] == "none", (memo["reasons"], mc["reasons"])


# ----------------------------------------------------------------------------- trained generators


@pytest.mark.parametrize("name", ["digits_dcgan", "digits_cgan"])
def test_healthy_trained_generators_do_not_memorize(name):
    r = evaluate(f"{FIXTURES}/{name}/checkpoint.pt", metrics=["fid"], num_samples=N)
    memo = r.diagnostics["memorization"]
    assert memo["verdict"] == "none", memo["reasons"]
    assert memo["copies"]["copy_share"] < 0.02 and memo["c_t"]["c_t"] > 0  # fewer copies than held-out data
    assert memo["training_set"].startswith("digits split")
    assert any("records no split" in r["message"] for r in memo["reasons"])  # trained before the split


def test_sources_drawn_fresh_are_not_applicable_and_say_why():
    r = evaluate(f"{FIXTURES}/ring8_gan_pack4/checkpoint.pt", metrics=["fid"])
    memo = r.diagnostics["memorization"]
    assert memo["verdict"] == "not_applicable"
    assert "drawn afresh" in memo["reasons"][0]["message"]


# ----------------------------------------------------------------------------- user data


def test_train_data_names_the_training_set_and_real_the_held_out_one(tmp_path, planted, digits):
    x, _, split = digits
    np.savez(tmp_path / "train.npz", images=x[split.train])
    np.savez(tmp_path / "held.npz", images=x[split.held_out])
    held, train = str(tmp_path / "held.npz"), str(tmp_path / "train.npz")
    memo, _ = verdicts(planted["jitter"], real=held, train_data=train, feature_extractor="digits")
    assert memo["verdict"] == "severe" and memo["training_set"].startswith("--train-data")
    memo, _ = verdicts(planted["jitter"], real=held, feature_extractor="digits")
    assert memo["verdict"] == "not_applicable" and "--train-data" in memo["reasons"][0]["message"]


def test_bad_train_data_is_one_line_exit_2(tmp_path, planted):
    np.savez(tmp_path / "points.npz", points=np.zeros((50, 2), np.float32))
    for args, words in (([planted["jitter"], "--train-data", tmp_path / "none.npz"], "--train-data"),
                        ([planted["jitter"], "--real", "digits", "--train-data", tmp_path / "points.npz"], "points"),
                        ([planted["jitter"], "--train-data", "digits"], "--real")):
        res = gandiag_in_process("evaluate", *args, "--metrics", "fid")
        assert res.returncode == 2 and words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_memorization_is_gated_and_reported(tmp_path, planted):
    gates = tmp_path / "gates.toml"
    gates.write_text('[gates]\nmemorization = { allow = ["none"] }\n')
    report = tmp_path / "r.html"
    res = gandiag_in_process("evaluate", planted["jitter"], "--real", "digits", "--metrics", "fid", "--gate", gates,
                             "--report", report)
    assert res.returncode == 1 and "memorization" in res.stdout
    html = report.read_text()
    body = html[html.index('<section id="memorisation"'):]
    body = body[:body.index("</section>")]
    assert "closest training pairs" in body and "severe" in body and ">copy<" in body

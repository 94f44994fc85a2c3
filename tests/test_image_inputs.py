"""Image folders as inputs: 16-bit images scaled to 8 bits (round(v/257), never clipped), the lossy-compression
warning, folder recursion (--recursive) and the documented file order, and the real-feature cache keyed on it.

Evaluations use the digits extractor (any image size, a fraction of a second) in-process."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from conftest import gandiag_in_process, write_pngs
from PIL import Image

from gandiag.data.image_folders import list_images, open_folder
from gandiag.data.samples import open_samples
from gandiag.errors import DataError


def _to8(v: np.ndarray) -> np.ndarray:
    """The documented rule, in floats: round(v / 257)."""
    return np.rint(v.astype(np.float64) / 257.0).astype(np.uint8)


def _png16(arr: np.ndarray, colour_type: int, filters=(0, 1, 2)) -> bytes:
    """A 16-bit PNG written by hand (Pillow writes no 16-bit colour PNGs), rows filtered None/Sub/Up in turn, so
    the decoder's unfiltering (which depends on the bytes per pixel) is exercised."""
    h, w = arr.shape[:2]
    data = arr.astype(">u2").reshape(h, -1).view(np.uint8).reshape(h, -1).astype(np.int16)
    bpp = 2 * (arr.shape[2] if arr.ndim == 3 else 1)
    rows, prev = [], np.zeros(data.shape[1], np.int16)
    for y in range(h):
        ft = filters[y % len(filters)]
        cur = data[y]
        if ft == 1:
            left = np.concatenate([np.zeros(bpp, np.int16), cur[:-bpp]])
            out = (cur - left) % 256
        elif ft == 2:
            out = (cur - prev) % 256
        else:
            out = cur
        rows.append(bytes([ft]) + out.astype(np.uint8).tobytes())
        prev = cur

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + \
        chunk(b"IEND", b"")


def _all(folder, recursive=False):
    s = open_folder(folder, recursive)
    return s, np.concatenate([b.numpy() for b in s.batches(7)])


# ----------------------------------------------------------------------------- 16-bit images

@pytest.mark.parametrize("colour_type,channels", [(2, 3), (6, 4), (4, 2)], ids=["rgb16", "rgba16", "grey-alpha16"])
def test_16bit_colour_png_scaled_by_rounding(tmp_path, colour_type, channels):
    """Pillow keeps the high byte (v >> 8) of a 16-bit RGB(A)/LA PNG; gandiag decodes the low byte too and
    scales the full value: the folder reads exactly as its 8-bit copy made by round(v / 257)."""
    rng = np.random.default_rng(colour_type)
    v16 = rng.integers(0, 65536, size=(6, 9, 11, channels)).astype(np.uint16)
    v16[0, 0, 0, 0], v16[0, 0, 1, 0], v16[0, 0, 2, 0] = 65535, 32767, 32896  # the top, and rounding either way
    d16, d8 = tmp_path / "sixteen", tmp_path / "eight"
    d16.mkdir()
    for i, a in enumerate(v16):
        (d16 / f"{i}.png").write_bytes(_png16(a, colour_type))
    grey = colour_type == 4
    eight = _to8(v16[..., 0] if grey else v16[..., :3])
    write_pngs(d8, np.repeat(eight[..., None], 3, -1) if grey else eight)  # LA is read as RGB, like 8-bit LA
    s16, x16 = _all(d16)
    _, x8 = _all(d8)
    assert s16.sample_shape == (3, 9, 11)
    assert np.array_equal(x16, x8)
    assert x16[0, 0, 0, 0] == 255 and x16[0, 0, 0, 1] == 127 and x16[0, 0, 0, 2] == 128
    assert not np.array_equal(x16, np.asarray(v16[..., :3] >> 8).transpose(0, 3, 1, 2)) or grey  # not Pillow's


def test_16bit_grey_png_not_clipped(tmp_path):
    """Mode I;16 (what Pillow makes of a 16-bit grey PNG) was clipped at 255 by convert("L"): nearly white."""
    rng = np.random.default_rng(1)
    v16 = rng.integers(0, 65536, size=(5, 8, 8)).astype(np.uint16)
    v16[0, 0, :3] = (65535, 257, 128)
    d16, d8 = tmp_path / "g16", tmp_path / "g8"
    d16.mkdir()
    for i, a in enumerate(v16):
        Image.fromarray(a).save(d16 / f"{i}.png")
    assert Image.open(d16 / "0.png").mode == "I;16"
    write_pngs(d8, _to8(v16))
    s16, x16 = _all(d16)
    _, x8 = _all(d8)
    assert s16.sample_shape == (1, 8, 8) and np.array_equal(x16, x8)
    assert list(x16[0, 0, 0, :3]) == [255, 1, 0]
    assert x16.mean() < 200  # clipping made almost every pixel 255


def test_32bit_integer_image_outside_16_bits_is_one_line(tmp_path):
    d = tmp_path / "i32"
    d.mkdir()
    Image.fromarray(np.full((8, 8), 70_000, np.int32)).save(d / "a.tif")
    Image.fromarray(np.full((8, 8), 65_535, np.int32)).save(d / "b.tif")
    s = open_folder(d)
    with pytest.raises(DataError, match="outside the 16-bit range"):
        list(s.batches(2))
    ok = tmp_path / "ok"
    ok.mkdir()
    Image.fromarray(np.full((8, 8), 65_535, np.int32)).save(ok / "b.tif")
    assert _all(ok)[1].min() == 255


def test_16bit_folder_and_8bit_copy_give_the_same_metrics(tmp_path):
    """End to end: the same FID/KID, to the last digit, from a 16-bit folder and its 8-bit copy."""
    rng = np.random.default_rng(2)
    v16 = rng.integers(0, 65536, size=(24, 8, 8, 3)).astype(np.uint16)
    d16 = tmp_path / "s16"
    d16.mkdir()
    for i, a in enumerate(v16):
        (d16 / f"{i:03d}.png").write_bytes(_png16(a, 2))
    d8 = write_pngs(tmp_path / "s8", _to8(v16))
    out = {}
    for name, folder in (("16", d16), ("8", d8)):
        res = gandiag_in_process("evaluate", folder, "--real", "digits", "--metrics", "fid,kid", "--no-diagnostics",
                                 "--kid-subset-size", "20", "--no-cache", "--json", tmp_path / f"{name}.json")
        assert res.returncode == 0, res.stderr
        out[name] = json.loads((tmp_path / f"{name}.json").read_text())["metrics"]
    assert out["16"]["fid"]["value"] == out["8"]["fid"]["value"]
    assert out["16"]["kid"]["value"] == out["8"]["kid"]["value"]


# ----------------------------------------------------------------------------- lossy compression

def test_lossy_images_warn_once_in_results_and_summary(tmp_path):
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, size=(12, 8, 8, 3)).astype(np.uint8)
    d = tmp_path / "jpegs"
    d.mkdir()
    for i, a in enumerate(imgs):
        Image.fromarray(a).save(d / f"{i:02d}.jpg", quality=90)
    res = gandiag_in_process("evaluate", d, "--real", "digits", "--metrics", "fid", "--no-diagnostics", "--no-cache",
                             "--json", tmp_path / "r.json")
    assert res.returncode == 0, res.stderr
    warnings = json.loads((tmp_path / "r.json").read_text())["warnings"]
    lossy = [w for w in warnings if "lossy" in w]
    assert len(lossy) == 1 and "12 of 12" in lossy[0] and "JPEG artefacts raise FID" in lossy[0]
    assert "\n" not in lossy[0]
    assert sum("JPEG artefacts raise FID" in line for line in res.stdout.splitlines()) == 1


def test_webp_lossy_told_from_lossless(tmp_path):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, size=(8, 8, 3)).astype(np.uint8)
    lossless, lossy = tmp_path / "lossless", tmp_path / "lossy"
    lossless.mkdir(), lossy.mkdir()
    Image.fromarray(a).save(lossless / "a.webp", lossless=True)
    Image.fromarray(a).save(lossless / "b.png")
    Image.fromarray(a).save(lossy / "a.webp", quality=80)
    Image.fromarray(a).convert("RGBA").save(lossy / "b.webp", quality=80)  # VP8X + ALPH + VP8
    assert open_folder(lossless).warnings == []
    (w,) = open_folder(lossy).warnings
    assert "2 lossy WebP" in w


# ----------------------------------------------------------------------------- recursion and order

def _tree(root, names, size=8):
    rng = np.random.default_rng(5)
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(size, size, 3)).astype(np.uint8)).save(p)


def test_subfolders_need_recursive_one_line(tmp_path):
    _tree(tmp_path / "nested", [f"class{c}/{i}.png" for c in range(2) for i in range(6)])
    flat = write_pngs(tmp_path / "flat", np.random.default_rng(6).integers(0, 256, (12, 8, 8, 3)).astype(np.uint8))
    for args in (("evaluate", tmp_path / "nested", "--real", flat), ("evaluate", flat, "--real", tmp_path / "nested")):
        res = gandiag_in_process(*args, "--metrics", "fid", "--no-diagnostics", "--features", "digits")
        assert res.returncode == 2
        lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and "--recursive" in lines[0] and "12 in its subfolders" in lines[0], res.stderr
    for flag in ("--recursive", "--samples-find-deep"):
        res = gandiag_in_process("evaluate", tmp_path / "nested", "--real", tmp_path / "nested", flag, "--features",
                                 "digits", "--metrics", "fid", "--no-diagnostics", "--json", tmp_path / "r.json")
        assert res.returncode == 0, res.stderr
        doc = json.loads((tmp_path / "r.json").read_text())
        assert doc["generator"]["n"] == 12 and doc["real"]["n"] == 12


def test_without_recursive_only_the_folders_own_files(tmp_path):
    _tree(tmp_path, ["top0.png", "top1.png", "sub/deep.png"])
    assert [p.name for p in open_samples(str(tmp_path)).paths] == ["top0.png", "top1.png"]
    deep = open_samples(str(tmp_path), recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in deep.paths] == ["sub/deep.png", "top0.png", "top1.png"]


def test_file_order_is_relative_path_by_code_point(tmp_path):
    """The documented order (docs/loaders-and-export.md, 'Image folders'): relative POSIX path, compared as
    Unicode code points (= UTF-8 bytes, LC_ALL=C sort), which is torch-fidelity's sorted() of full paths."""
    names = ["b.png", "B.png", "a.png", "a-b/x.png", "a/x.png", "a/X.png", "a0.png", "é.png", "z/y/1.png", "10.png",
             "9.png", "c.JPG"]
    _tree(tmp_path, names)
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert got == sorted(names, key=lambda n: n.encode("utf-8"))
    assert got == sorted(names)  # code points and UTF-8 bytes agree
    assert got[:4] == ["10.png", "9.png", "B.png", "a-b/x.png"]  # not numeric, not case-folded, '-' < '/' < '0'
    s = open_folder(tmp_path, recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in s.paths] == got
    # -n keeps the first files in that order
    res = gandiag_in_process("evaluate", tmp_path, "--recursive", "--real", "digits", "-n", "10", "--metrics", "fid",
                             "--no-diagnostics", "--no-cache", "--json", tmp_path.parent / "order.json")
    assert res.returncode == 0, res.stderr


def test_recursive_and_flat_reads_never_share_a_cache_key(tmp_path):
    _tree(tmp_path, [f"{i}.png" for i in range(4)])
    flat, deep = open_folder(tmp_path), open_folder(tmp_path, recursive=True)
    assert flat.paths == deep.paths
    assert flat.content_hash() != deep.content_hash()
    assert flat.content_hash() == open_folder(tmp_path).content_hash()
    _tree(tmp_path / "x", ["0.png"])  # same file name, other folder: another set
    assert open_folder(tmp_path, recursive=True).content_hash() != deep.content_hash()


def test_cache_entries_separate_for_recursive_real_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GANDIAG_CACHE_DIR", str(tmp_path / "cache"))
    real = tmp_path / "real"
    _tree(real, [f"{i:02d}.png" for i in range(12)])
    fake = write_pngs(tmp_path / "fake", np.random.default_rng(7).integers(0, 256, (12, 8, 8, 3)).astype(np.uint8))
    for flag in ("--no-recursive", "--recursive"):
        res = gandiag_in_process("evaluate", fake, "--real", real, flag, "--features", "digits", "--metrics", "fid",
                                 "--no-diagnostics")
        assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "cache" / "features").glob("*.npz"))) == 2


def test_trainer_reads_class_subfolders(tmp_path):
    """The reference trainer keeps reading an image folder with its subfolders (class folders, as before)."""
    from gandiag.training.data import TrainingData

    _tree(tmp_path / "data", [f"c{c}/{i}.png" for c in range(2) for i in range(5)], size=8)
    data = TrainingData(str(tmp_path / "data"))
    assert data.kind == "images" and data.real_uint8.shape == (10, 3, 8, 8)

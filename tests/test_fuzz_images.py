"""Fuzzed image folders: images of every mode and format, mutated, with odd entries (empty files, folders,
links, FIFOs), read by open_folder / open_samples and through `gandiag evaluate`.

Contract and settings: tests/fuzz_support.py.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from conftest import require_extra

require_extra("hypothesis")  # the test extra installs it; missing, this module fails in CI and is skipped elsewhere

from fuzz_support import (FIXTURES, MAX_BATCHES, _head, _one_thread, _quiet, apply_mutations,  # noqa: E402,F401
                          call_reader, fuzz, memory_cap, mutations, nothing_left_behind, run_cli, scratch)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


MODES = ["1", "L", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK", "LA", "PA", "YCbCr"]
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
           ".webp": "WEBP"}


def _image_bytes(mode: str, size: tuple, suffix: str, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    try:
        im = im.convert(mode)
    except ValueError:
        pass
    for candidate in (im, im.convert("RGB")):
        buf = io.BytesIO()
        try:
            candidate.save(buf, FORMATS[suffix])
            return buf.getvalue()
        except (OSError, ValueError, KeyError):
            continue
    raise AssertionError("unreachable: RGB saves in every format")


def _png_with_size(w: int, h: int, payload: bytes) -> bytes:
    """A PNG whose IHDR declares w x h (valid CRCs) followed by a short IDAT."""
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(payload)) + chunk(b"IEND", b"")


@st.composite
def image_folders(draw):
    """{relative path: bytes or None (a folder)}: images of random modes/formats/sizes, some mutated, odd entries."""
    n = draw(st.integers(1, 4))
    same_size = draw(st.booleans())
    size0 = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    files = {}
    for i in range(n):
        suffix = draw(st.sampled_from(sorted(FORMATS)))
        size = size0 if same_size else (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
        blob = _image_bytes(draw(st.sampled_from(MODES)), size, suffix, i)
        if draw(st.integers(0, 2)) == 0:
            blob = apply_mutations(blob, draw(mutations()))
        files[f"{i:02d}{suffix.upper() if draw(st.integers(0, 5)) == 0 else suffix}"] = blob
    extras = ["empty", "dir", "nested", "declared", "text", "hidden", "loop", "broken_link", "fifo"]
    for extra in draw(st.lists(st.sampled_from(extras), max_size=2, unique=True)):
        if extra == "empty":
            files["empty.png"] = b""
        elif extra == "dir":
            files["folder.png"] = None
        elif extra == "nested":
            files["sub/deeper/n.png"] = _image_bytes("L", size0, ".png", 99)
        elif extra == "declared":
            w, h = draw(st.sampled_from([(0, 4), (65535, 1), (1, 65535), (2 ** 31 - 1, 1), (40000, 40000),
                                         (3000, 3000)]))
            files["declared.png"] = _png_with_size(w, h, draw(st.binary(max_size=32)))
        elif extra == "text":
            files["notes.txt"] = b"not an image"
        elif extra in ("loop", "broken_link", "fifo"):
            files[{"loop": "loop", "broken_link": "gone.png", "fifo": "pipe.png"}[extra]] = extra
        else:
            files[".hidden.png"] = draw(st.binary(max_size=40))
    return files


def _write_tree(root: Path, files: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, blob in files.items():
        p = root / rel
        if blob is None:
            p.mkdir(parents=True, exist_ok=True)
            continue
        if blob == "loop":
            p.symlink_to(".", target_is_directory=True)  # a folder that contains itself
            continue
        if blob == "broken_link":
            p.symlink_to(root / "does-not-exist.png")
            continue
        if blob == "fifo":  # opening it for reading would block: a reader must not
            os.mkfifo(p)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob)


@fuzz(40)
@given(files=image_folders())
def test_image_folder(tmp_path, files):
    """open_folder (and open_samples) then every batch, on folders of mutated images of every mode and format."""
    from gandiag.data.image_folders import open_folder
    from gandiag.data.samples import open_samples

    with scratch(tmp_path) as d:
        root = d / "imgs"
        _write_tree(root, files)
        with nothing_left_behind(d), memory_cap():
            for fn in (open_folder, open_samples):
                s = call_reader(f"{fn.__name__}(folder)", fn, root if fn is open_folder else str(root))
                if s is None:
                    continue
                for b in call_reader("folder batches", lambda: list(_head(s.batches(3), MAX_BATCHES))) or []:
                    assert tuple(b.shape[1:]) == tuple(s.sample_shape) and b.dtype == torch.uint8
                call_reader("content_hash", s.content_hash)


@fuzz(8, shrink=False)
@given(files=image_folders(), role=st.sampled_from(["target", "real"]))
def test_image_folder_cli(tmp_path, files, role):
    """Folders through `gandiag evaluate` (samples against digits, or as --real for a digits checkpoint)."""
    with scratch(tmp_path) as d:
        _write_tree(d / "imgs", files)
        with nothing_left_behind(d, allowed=[d / "out.json", d / "out.artifacts.npz"]):
            if role == "target":
                args = ["evaluate", "imgs", "--real", "digits"]
            else:
                args = ["evaluate", str(FIXTURES / "digits_dcgan" / "checkpoint.pt"), "--real", "imgs"]
            run_cli(args + ["-n", "10", "--features", "digits", "--metrics", "fid", "--no-diagnostics", "--no-cache",
                            "--device", "cpu", "--json", "out.json"], d, outputs=["out.json", "out.artifacts.npz"],
                    cap=1 << 30)


# A TIFF cut inside its first IFD: Pillow warns ("Corrupt EXIF data") before it fails to identify the file.
TRUNCATED_TIFF = (b"II*\x00\x08\x00\x00\x00\x0c\x00\x00\x01\x04\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x01\x04"
                  b"\x00\x01\x00\x00\x00\x05\x00\x00\x00\x02\x01\x03\x00\x02\x00\x00\x00\x08\x00\x08\x00\x03\x01"
                  b"\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x06\x01\x03\x00\x01\x00\x00\x00\x03\x00\x00\x00\x11\x01")


def test_image_folder_warning_is_not_printed_around_the_error(tmp_path):
    """A folder whose only image makes Pillow warn, then fail: exit 2 with the one error line on stderr,
    not the library's warning and its source line around it."""
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "00.tif").write_bytes(TRUNCATED_TIFF)
    with nothing_left_behind(tmp_path):
        run_cli(["evaluate", "imgs", "--real", "digits", "-n", "10", "--features", "digits", "--no-diagnostics",
                 "--no-cache", "--device", "cpu"], tmp_path, ok=(2,))

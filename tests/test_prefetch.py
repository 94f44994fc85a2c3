"""Batches made ahead in a background thread: same batches, same order, same errors, and no thread left behind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from conftest import write_pngs
from gandiag.data.prefetch import prefetched
from gandiag.errors import DataError


def _threads() -> int:
    return sum(t.name.startswith("gandiag-") for t in threading.enumerate())


def test_items_come_in_order_and_the_producer_runs_ahead():
    made = []

    def make():
        for i in range(10):
            made.append(i)
            yield i

    it = prefetched(make, depth=2)
    assert next(it) == 0
    time.sleep(0.2)
    assert len(made) >= 3  # the one taken, and up to two more made while the consumer was busy
    assert list(it) == list(range(1, 10))


def test_an_error_is_raised_where_its_item_would_have_been():
    def make():
        yield 1
        yield 2
        raise DataError("image 3 is damaged")

    it = prefetched(make)
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(DataError, match="image 3 is damaged"):
        next(it)


def test_a_consumer_that_stops_early_stops_the_producer():
    before = _threads()
    it = prefetched(lambda: iter(range(10 ** 9)), depth=2)
    assert next(it) == 0
    it.close()
    time.sleep(0.3)
    assert _threads() == before


def test_folder_batches_equal_a_plain_decode_and_keep_the_listing_order(tmp_path):
    from PIL import Image

    from gandiag.data.image_folders import open_folder

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (37, 8, 8, 3), dtype=np.uint8)
    folder = write_pngs(tmp_path / "imgs", images)
    s = open_folder(folder)
    got = np.concatenate([b.numpy() for b in s.batches(8)])
    plain = np.stack([np.asarray(Image.open(p)).transpose(2, 0, 1) for p in s.paths])
    assert got.shape == (37, 3, 8, 8) and np.array_equal(got, plain)


def test_a_damaged_image_in_a_later_batch_is_one_line_and_no_thread_is_left(tmp_path):
    from gandiag.data.image_folders import open_folder

    folder = write_pngs(tmp_path / "imgs", np.random.default_rng(1).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8))
    s = open_folder(folder)
    with open(s.paths[17], "r+b") as f:  # the header stays readable, the pixel data is cut off
        f.truncate(50)
    before = _threads()
    batches = s.batches(8)
    next(batches)
    with pytest.raises(DataError) as err:
        list(batches)
    assert "\n" not in str(err.value)
    time.sleep(0.3)
    assert _threads() <= before

"""Batches made ahead in the background, so reading never leaves the feature network idle.

An image folder's next batch is decoded while the extractor works on the
current one: a producer thread keeps up to ``depth`` batches ready, and the
images of a batch are decoded by a small pool of threads (Pillow releases
the GIL while it decodes, so threads decode in parallel without the
start-up and pickling of worker processes). On CUDA the batches are put in
pinned memory, so the copy to the GPU can overlap the network too.

Order, errors and early exits are the consumer's: batches come in order; an
exception raised while making one (a damaged file) is raised where that
batch would have been taken, with its own message; a consumer that stops
early (``-n`` smaller than the folder) stops the producer.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
DEPTH = 2  # batches made ahead
_DONE = object()


def decode_threads() -> int:
    """Threads decoding the images of one batch: the cores, at most 8 (decoding is a small share of the work)."""
    return max(1, min(8, os.cpu_count() or 1))


def prefetched(make: Callable[[], Iterable[T]], depth: int = DEPTH) -> Iterator[T]:
    """The items of ``make()``, produced by a background thread up to ``depth`` ahead of the consumer."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in make():
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised where the batch was wanted
            put((None, exc))
            return
        put((_DONE, None))

    worker = threading.Thread(target=produce, name="gandiag-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = ready.get()
            if exc is not None:
                raise exc
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)

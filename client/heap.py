"""Keeping Python's garbage collector off long-lived objects during bulk work."""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0


@contextmanager
def settled_heap() -> Iterator[None]:
    """Run a block with everything alive at its start kept out of full collections.

    A campaign allocates a few hundred thousand objects; each of the collector's full passes
    then walked the whole heap (the audience, every loaded module), ~140 ms a time on a
    console sealing 10,000 copies. What exists when the block starts outlives it anyway.
    Blocks may nest or overlap (several campaigns in one process): the heap is handed back
    to the collector when the last one ends. Sealing processes forked meanwhile inherit it.
    """
    global _depth
    with _lock:
        _depth += 1
        if _depth == 1:
            gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()

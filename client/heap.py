"""Keeping Python's garbage collector off long-lived objects during bulk work."""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_froze = False  # whether the outermost block froze the heap (and so must hand it back)


@contextmanager
def settled_heap() -> Iterator[None]:
    """Run a block with everything alive at its start kept out of full collections.

    A campaign allocates a few hundred thousand objects; each of the collector's full passes
    then walked the whole heap (the audience, every loaded module), ~140 ms a time on a
    console sealing 10,000 copies. What exists when the block starts outlives it anyway.
    Blocks may nest or overlap (several campaigns in one process): the heap is handed back
    to the collector when the last one ends. A heap someone else froze first (the audit and
    the simulator freeze their thousands of devices) is left as it was: unfreezing is all or
    nothing, and would hand their objects back too. Sealing processes forked meanwhile
    inherit the frozen heap.
    """
    global _depth, _froze
    with _lock:
        _depth += 1
        if _depth == 1:
            _froze = gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _froze:
                gc.unfreeze()

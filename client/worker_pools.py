"""Worker processes for CPU-bound client work (opening a catch-up, sealing a campaign).

Two rules for every pool here. Workers exit as soon as the process that started them is gone
(killed with -9, it cannot tell them): each watches its parent and leaves when it changes.
And workers start from a start method chosen once for the platform (:func:`pool_context`).
"""

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

PARENT_CHECK_S = 0.5  # how soon an orphaned worker notices


def pool_context() -> Any:
    """fork where the platform has it (workers start in milliseconds, sharing the loaded
    modules); spawn elsewhere."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def process_pool(
    workers: int, initializer: Callable[..., None], initargs: tuple[Any, ...]
) -> ProcessPoolExecutor:
    """A pool whose workers run ``initializer(*initargs)`` and exit with their parent."""
    return ProcessPoolExecutor(
        workers,
        mp_context=pool_context(),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )


def _start_worker(parent: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    _exit_with(parent)
    initializer(*initargs)


def _exit_with(parent: int) -> None:
    """Leave at once when ``parent`` is no longer this process's parent (it died, and the
    process was handed to init or a subreaper): a blocked pool worker would wait for work
    from it for ever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    if os.getppid() != parent:  # already gone before this worker got here
        os._exit(0)
    threading.Thread(target=watch, name="sealpost-parent-watch", daemon=True).start()

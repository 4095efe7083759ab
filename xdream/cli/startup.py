"""Start-up of a command that computes: torch loads with Ctrl-C held back.

A SIGINT that lands while torch's native modules initialise raises KeyboardInterrupt inside a
pybind11 call, which pybind11 cannot pass on: the process aborts (SIGABRT,
``pybind11::error_already_set``) instead of ending with exit 130 (seen once in 30 Ctrl-Cs a few
seconds into start-up). So torch is imported with SIGINT recorded rather than raised, and the
interrupt is raised once the import is complete, where the command line turns it into exit 130.
The parser runs before this, so ``--help``, ``--version`` and argument errors never load torch.
"""

from __future__ import annotations

import importlib
import signal
import threading
from contextlib import contextmanager


@contextmanager
def interrupts_deferred():
    """Hold SIGINT back for the block; raise KeyboardInterrupt after it if one came. Outside the
    main thread (where Python cannot set handlers) the block runs unguarded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def load_torch() -> None:
    """Import torch (the native part every computing command needs) with Ctrl-C deferred."""
    with interrupts_deferred():
        importlib.import_module("torch")

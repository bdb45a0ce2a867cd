"""Worker processes die with the process that started them, even when it is killed (`kill -9` runs no cleanup).

Without this, the Monte Carlo workers of a killed `cascade run` keep computing chunks nobody will collect, holding
cores and memory until they finish.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_SECONDS = 0.5
"""How often the portable watchdog checks that the parent still lives, in seconds."""


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: make this worker end when `parent_pid` ends. Linux: the kernel sends SIGKILL
    (prctl PR_SET_PDEATHSIG); elsewhere a daemon thread polls the parent id. Either way, a parent already gone
    before this ran ends the worker now."""
    if not (sys.platform.startswith("linux") and _set_death_signal()):
        threading.Thread(target=_watch, args=(parent_pid,), name="die-with-parent", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)


def _set_death_signal() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_SECONDS)
    os._exit(1)

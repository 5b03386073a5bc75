"""Capturing what native libraries print with C stdio (PARDISO's statistics, homapy's logger).

Their output goes to file descriptor 1, below Python's ``sys.stdout``, so it is redirected at the
descriptor level. Not thread-safe: other threads printing meanwhile are captured too (the harness
runs one ordering and one back-end at a time per process).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile


@contextlib.contextmanager
def c_stdout_captured():
    """Send file descriptor 1 to a temporary file for the duration; yield a list that gets its text."""
    captured: list[str] = []
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        try:
            yield captured
        finally:
            libc.fflush(None)  # C stdio buffers must reach the file before fd 1 goes back
            os.dup2(saved, 1)
            os.close(saved)
            log.seek(0)
            captured.append(log.read().decode(errors="replace"))


def load_system_library(stem: str, fallback: str, package: str):
    """The system's ``lib<stem>`` via ctypes, or an OSError saying which Debian package provides it."""
    import ctypes.util

    name = ctypes.util.find_library(stem) or fallback
    try:
        return ctypes.CDLL(name)
    except OSError as err:
        raise OSError(f"library {name} not found: install {package}") from err


def library_status(loader) -> tuple[bool, str]:
    """(ok, reason) of a cached library loader, for plug-ins' ``check()``: availability as data."""
    try:
        loader()
    except OSError as err:
        return False, str(err)
    return True, ""

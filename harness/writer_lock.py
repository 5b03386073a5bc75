"""One writer per result file: ``<out>.lock``, an OS file lock (filelock) held for a whole run.

The lock dies with its process (SIGKILL included), so a killed run leaves no stale lock;
``<out>.writer.json`` names the holder (PID, host, start time, command) for the message a
second writer gets. This module imports nothing heavy: the command line takes the lock before
it loads the numeric stack, so a second writer learns at once. The lock is re-entrant within a
process (the CLI and the runner both take it).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
from pathlib import Path


class StoreError(Exception):
    """The result file cannot be used: not a permbench result, locked, unwritable, inconsistent."""


class ResultsWriteError(StoreError, OSError):
    """A result file or fragment could not be written (full disk, unwritable folder)."""


class StoreLocked(StoreError):
    """Another run holds the result file's lock."""


_LOCKS: dict[str, object] = {}


def writer_file(out: Path) -> Path:
    return Path(out).with_name(Path(out).name + ".writer.json")


def holder(out: Path) -> str:
    try:
        info = json.loads(writer_file(out).read_text())
        return f"PID {info['pid']} on {info['host']}, started {info['started']}: {info.get('command', '')}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"


@contextlib.contextmanager
def writer_lock(out, wait: bool = False):
    """Hold ``out``'s lock: StoreLocked at once if another process holds it (unless ``wait``)."""
    from filelock import FileLock, Timeout

    out = Path(out).absolute()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        lock = _LOCKS.setdefault(str(out), FileLock(str(out) + ".lock"))
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        raise StoreLocked(f"{out} is being written by another run ({holder(out)}); "
                          f"wait for it with --wait, or write to another --out") from None
    except OSError as err:
        raise ResultsWriteError(f"cannot write results at {out}: {err.strerror or err} "
                                f"(check --out: the folder must be creatable and writable)") from err
    outermost = lock.lock_counter == 1
    try:
        if outermost:
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "command": " ".join(sys.argv)}
            writer_file(out).write_text(json.dumps(info))
        yield
    finally:
        if outermost:
            writer_file(out).unlink(missing_ok=True)
        lock.release()

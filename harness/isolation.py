"""Run one piece of work in a fresh child process: hard wall-clock limit, memory cap, explicit threads.

The child is a new interpreter (``python -m permbench.harness.isolation``), started the way
multiprocessing's *spawn* method starts one (fork + immediate exec, nothing inherited but the
environment and the pipes), never a bare fork: a forked child of a process that has touched CUDA,
OpenMP or a BLAS thread pool is undefined territory. Launching it with :class:`subprocess.Popen`
instead of ``multiprocessing.get_context("spawn")`` adds what the spawn context cannot give:

* the thread counts are in the child's environment *before* it imports numpy (OpenBLAS, OpenMP
  and numba read them once, at load time); mutating ``os.environ`` of a threaded parent instead
  would race;
* the child leads its own session and process group, so a timeout or memory kill takes whatever
  it started too (``killpg``), and a Ctrl-C in the terminal reaches only the parent, which decides;
* it works from daemonic processes (dask workers), which multiprocessing forbids to have children.

Protocol: the parent writes ``(target, sys_path, threads, payload)`` pickled to the child's stdin;
the child imports ``target`` ("module:function") and calls ``function(payload, emit, step)``.
``step(info)`` announces the next step (the wall-clock limit applies per step and the failure
reason names it); ``emit(message)`` streams a result to the parent at once, so everything the
child finished before dying is kept. Messages travel on a dedicated pipe (length-prefixed
pickles), never on stdout, which plug-ins and native libraries may write to; stdout and stderr go
to a scratch file whose tail is quoted when the child fails (faulthandler puts the Python stack of
a segfault there).

The memory cap is enforced by watching the resident set size of the child and its descendants
from the parent (psutil) and killing the process group: RLIMIT_AS and RLIMIT_DATA count virtual
reservations, which numba, OpenBLAS and glibc's per-thread arenas make large without using them
(measured here after a CHOLMOD factorization: RSS 189 MB, data segment 330 MB with one BLAS
thread and 546 MB with two; it grows with the core count).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

#: Environment variables that fix the size of every thread pool a child may load.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS")

_HEADER = struct.Struct("<Q")
_STDERR_TAIL_CHARS = 600
_CHILDREN_SCAN_EVERY = 10  # scanning all processes for descendants costs ~3 ms: every 10th poll


@dataclass(frozen=True)
class Limits:
    """What one child may use. ``timeout_s`` applies to each announced step; None = no limit."""

    timeout_s: float | None = None
    mem_limit_bytes: int | None = None
    threads: int = 1
    poll_s: float = 0.05


@dataclass
class ChildOutcome:
    """How a child ended. ``status`` is ``ok``, ``timeout``, ``oom``, ``error`` or ``cancelled``."""

    status: str
    reason: str = ""
    step: dict = field(default_factory=dict)  # the last step the child announced
    elapsed_s: float = 0.0
    peak_rss_bytes: int = 0
    returncode: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_env(threads: int) -> dict[str, str]:
    return {var: str(int(threads)) for var in THREAD_ENV_VARS}


def format_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


class ChildRegistry:
    """The children alive right now, so an interrupt can kill them all (each by its process group)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen] = {}
        self.cancelled = threading.Event()

    def add(self, proc):
        with self._lock:
            self._procs[proc.pid] = proc

    def remove(self, proc):
        with self._lock:
            self._procs.pop(proc.pid, None)

    def kill_all(self):
        self.cancelled.set()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # pgid == pid: the child leads its own session
    except (ProcessLookupError, PermissionError):
        pass


def _tree_rss(proc, with_children: bool, last_children_rss: int) -> tuple[int, int]:
    """RSS of the child, plus that of its descendants (rescanned only when asked: it is costly)."""
    import psutil

    try:
        own = proc.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0, last_children_rss
    if with_children:
        total = 0
        try:
            for child in proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        last_children_rss = total
    return own + last_children_rss, last_children_rss


def _stderr_tail(log) -> str:
    try:
        log.flush()
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - 4 * _STDERR_TAIL_CHARS))
        text = log.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
    # faulthandler ends a crash report with the list of loaded extension modules: noise here.
    lines = [line.strip() for line in text.strip().splitlines()
             if line.strip() and not line.startswith("Extension modules:")]
    text = " | ".join(lines)
    crash = text.rfind("Fatal Python error")  # keep the error and its innermost frames
    return text[crash:crash + _STDERR_TAIL_CHARS] if crash >= 0 else text[-_STDERR_TAIL_CHARS:]


def _step_name(step: dict) -> str:
    return step.get("name", "start")


def describe_signal(signum: int) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    text = signal.strsignal(signum) or ""
    return f"{name} ({text})" if text else name


class _Pipe:
    """The parent's end of a child's message pipe: reads, splits and dispatches messages."""

    def __init__(self, fd: int, on_message):
        self.fd, self.on_message = fd, on_message
        self.buffer = bytearray()
        self.open = True
        self.step: dict = {"name": "start"}
        self.step_started = time.monotonic()
        self.done = False

    def pump(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for data, then handle every complete message."""
        if not self.open:
            time.sleep(timeout_s)
            return
        while select.select([self.fd], [], [], timeout_s)[0]:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                self.open = False
                break
            self.buffer += chunk
            timeout_s = 0  # then take whatever else is already there
        for kind, body in _parse_messages(self.buffer):
            if kind == "step":
                self.step, self.step_started = body, time.monotonic()
            elif kind == "msg" and self.on_message is not None:
                self.on_message(body)
            elif kind == "done":
                self.done = True


def run_child(target: str, payload, limits: Limits, on_message: Callable[[object], None] | None = None,
              registry: ChildRegistry | None = None) -> ChildOutcome:
    """Run ``target(payload, emit, step)`` in a fresh interpreter under ``limits``.

    ``on_message`` receives every emitted message as it arrives (in this thread). An exception it
    raises kills the child and propagates. Never raises for anything the child does.
    """
    import psutil

    env = dict(os.environ)
    env.update(thread_env(limits.threads))
    env["PYTHONFAULTHANDLER"] = "1"
    job = pickle.dumps((target, list(sys.path), limits.threads, payload), protocol=pickle.HIGHEST_PROTOCOL)
    read_fd, write_fd = os.pipe()
    log = tempfile.TemporaryFile()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "permbench.harness.isolation", str(write_fd), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_fd,), env=env,
            start_new_session=True, close_fds=True)
    except BaseException:
        os.close(read_fd)
        log.close()
        raise
    finally:
        os.close(write_fd)
    if registry is not None:
        registry.add(proc)
    pipe = _Pipe(read_fd, on_message)
    outcome = None
    peak = children_rss = polls = 0
    try:
        try:
            proc.stdin.write(job)
            proc.stdin.close()
        except OSError:
            pass  # the child died at once; its exit status says why
        ps = psutil.Process(proc.pid)
        while True:
            pipe.pump(limits.poll_s)
            now = time.monotonic()
            if proc.poll() is not None:
                pipe.pump(0)  # what it sent just before exiting
                break
            if registry is not None and registry.cancelled.is_set():
                outcome = ChildOutcome("cancelled", "interrupted", pipe.step, now - started, peak)
                break
            in_step = now - pipe.step_started
            if limits.timeout_s and in_step > limits.timeout_s:
                outcome = ChildOutcome(
                    "timeout", f"timeout: step '{_step_name(pipe.step)}' still running after {in_step:.1f} s "
                    f"(--timeout {limits.timeout_s:g} s; child killed {now - started:.1f} s after it started)",
                    pipe.step, now - started, peak)
                break
            polls += 1
            rss, children_rss = _tree_rss(ps, polls % _CHILDREN_SCAN_EVERY == 1, children_rss)
            peak = max(peak, rss)
            if limits.mem_limit_bytes and rss > limits.mem_limit_bytes:
                outcome = ChildOutcome(
                    "oom", f"oom: resident memory {format_bytes(rss)} exceeded the cap "
                    f"{format_bytes(limits.mem_limit_bytes)} (--mem-limit) in step '{_step_name(pipe.step)}' "
                    f"after {in_step:.1f} s; child killed", pipe.step, now - started, peak)
                break
    finally:
        _kill_group(proc)  # the child on a limit or an exception, else whatever it left in its group
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # unkillable (stuck in the kernel): do not hang the run
            pass
        if registry is not None:
            registry.remove(proc)
        os.close(read_fd)
        elapsed = time.monotonic() - started
        if outcome is None and registry is not None and registry.cancelled.is_set() and not pipe.done:
            outcome = ChildOutcome("cancelled", "interrupted", pipe.step, elapsed, peak)  # killed by kill_all
        if outcome is None:
            outcome = _exit_outcome(proc.returncode, pipe.done, pipe.step, elapsed, peak, log)
        outcome.returncode = proc.returncode
        log.close()
    return outcome


def _exit_outcome(returncode, got_done, step, elapsed, peak, log) -> ChildOutcome:
    if returncode == 0 and got_done:
        return ChildOutcome("ok", "", step, elapsed, peak)
    tail = _stderr_tail(log)
    where = f"in step '{_step_name(step)}', {elapsed:.1f} s after it started"
    if returncode is not None and returncode < 0:
        signum = -returncode
        hint = " (not sent by permbench: possibly the kernel's out-of-memory killer)" if signum == signal.SIGKILL else ""
        reason = f"child process killed by signal {describe_signal(signum)}{hint} {where}"
    else:
        reason = f"child process exited with code {returncode} without finishing, {where}"
    return ChildOutcome("error", reason + (f"; output: {tail}" if tail else ""), step, elapsed, peak)


def _parse_messages(buffer: bytearray):
    """Pop every complete message from ``buffer``."""
    while len(buffer) >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer)
        if len(buffer) < _HEADER.size + size:
            return
        body = bytes(buffer[_HEADER.size:_HEADER.size + size])
        del buffer[:_HEADER.size + size]
        yield pickle.loads(body)


# ------------------------------------------------------------------------------------------------
# The child side.

def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this child when its parent dies (a SIGKILLed run leaves no orphans)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _child_main(argv: list[str]) -> None:
    write_fd, parent_pid = int(argv[1]), int(argv[2])
    _die_with_parent(parent_pid)
    os.set_inheritable(write_fd, False)  # descendants must not hold the pipe open
    out = os.fdopen(write_fd, "wb", buffering=0)
    lock = threading.Lock()

    def send(message) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with lock:
            out.write(_HEADER.pack(len(data)) + data)

    target, sys_path, threads, payload = pickle.load(sys.stdin.buffer)
    sys.stdin.close()
    for entry in sys_path:  # as multiprocessing's spawn does: the parent's import path
        if entry not in sys.path:
            sys.path.append(entry)
    module_name, _, function_name = target.partition(":")
    import importlib

    function = getattr(importlib.import_module(module_name), function_name)
    try:  # the environment fixed the pools at load time; this also covers pools loaded already
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except Exception:
        pass
    function(payload, emit=lambda message: send(("msg", message)), step=lambda info: send(("step", info)))
    send(("done", None))
    out.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: nothing left to save, and native libraries can hang in it


if __name__ == "__main__":
    _child_main(sys.argv)

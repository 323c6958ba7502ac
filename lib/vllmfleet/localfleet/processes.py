"""Processes of the local fleet: start in their own session, wait until healthy, stop.

Every process starts with ``start_new_session=True``: its PID is its process-group id,
so stopping it signals the whole group (a server's own workers included). A PID is
"ours" only while ``/proc/<pid>/stat`` shows the start time recorded when we started it.
Waiting is done with tenacity; health is a plain HTTP GET on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
)

from vllmfleet.errors import LocalFleetError, StartFailed

LOG_TAIL_LINES = 15
# Children started by this Python process, kept so they are reaped (and never garbage-
# collected while running) when the same process also stops them, as tests do.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of stat(5); fields[] starts at field 3


def spawn(argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv`` in a new session, output to ``log``; returns it and its start ticks."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=dict(env) if env else None,
                                cwd=cwd, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    ticks = start_ticks(proc.pid)
    return proc, ticks if ticks is not None else 0


def is_ours(pid: int, ticks: int) -> bool:
    """True while ``pid`` runs and is the very process we started."""
    _reap(pid)
    now = start_ticks(pid)
    return now is not None and (ticks == 0 or now == ticks)


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not linger as a zombie."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        raise LocalFleetError(f"not allowed to signal process group {pid}: {exc.strerror}; "
                              "it was started by another user") from None


def stop(processes: Sequence[tuple[int, int]], *, grace_s: float = 10.0) -> list[int]:
    """SIGTERM each (pid, start_ticks) group, SIGKILL what is left after ``grace_s``.

    Returns the PIDs that were running. Waits until every one of them is gone.
    """
    running = [(pid, ticks) for pid, ticks in processes if is_ours(pid, ticks)]
    for pid, _ in running:
        _signal_group(pid, signal.SIGTERM)
    if not _wait_gone(running, grace_s):
        for pid, ticks in running:
            if is_ours(pid, ticks):
                _signal_group(pid, signal.SIGKILL)
        if not _wait_gone(running, 10.0):
            left = [pid for pid, ticks in running if is_ours(pid, ticks)]
            raise LocalFleetError(f"processes {left} survived SIGKILL for 10 s; "
                                  "check them with `ps -o pid,stat,cmd -p "
                                  f"{','.join(map(str, left))}`")
    for pid, _ in running:  # the group may hold children that outlive the leader briefly
        _signal_group(pid, signal.SIGKILL)
    # ... and they take a moment to die (vLLM's engine core and worker): wait for that too,
    # so that "stopped" means nothing of ours runs any more.
    try:
        Retrying(stop=stop_after_delay(10.0), wait=wait_exponential(multiplier=0.02, max=0.25),
                 retry=retry_if_result(bool))(
            lambda: [m for pid, _ in running for m in group_members(pid)])
    except RetryError:
        left = [m for pid, _ in running for m in group_members(pid)]
        raise LocalFleetError(f"processes {left} of the stopped process groups survived "
                              "SIGKILL for 10 s; check them with `ps -o pid,stat,cmd -p "
                              f"{','.join(map(str, left))}`") from None
    return [pid for pid, _ in running]


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``, from ``/proc``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _wait_gone(processes: Sequence[tuple[int, int]], timeout_s: float) -> bool:
    retrying = Retrying(stop=stop_after_delay(timeout_s),
                        wait=wait_exponential(multiplier=0.02, max=0.25),
                        retry=retry_if_result(lambda alive: bool(alive)))
    try:
        retrying(lambda: any(is_ours(pid, ticks) for pid, ticks in processes))
    except RetryError:
        return False
    return True


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``log``, indented, for an error message."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "    (no log)"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in tail) or "    (the log is empty)"


def wait_healthy(*, name: str, proc: subprocess.Popen[bytes], url: str, log: Path,
                 timeout_s: float, ok: Callable[[httpx.Response], bool] | None = None) -> None:
    """Poll ``url`` until it answers 200 (or ``ok``); fail fast when ``proc`` exits."""
    accept = ok or (lambda r: r.status_code == 200)

    def probe() -> bool:
        code = proc.poll()
        if code is not None:
            raise StartFailed(f"{name} exited with code {code} during start-up "
                              f"(log: {log}); its last lines:\n{log_tail(log)}")
        try:
            with httpx.Client(timeout=2.0, trust_env=False) as client:
                return accept(client.get(url))
        except httpx.HTTPError:
            return False

    retrying = Retrying(stop=stop_after_delay(timeout_s),
                        wait=wait_exponential(multiplier=0.02, max=0.5),
                        retry=retry_if_result(lambda healthy: not healthy), reraise=True)
    try:
        retrying(probe)
    except RetryError:
        raise StartFailed(f"{name} did not answer {url} within {timeout_s:.0f} s "
                          f"(log: {log}); its last lines:\n{log_tail(log)}") from None

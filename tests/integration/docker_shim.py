"""A stand-in for ``docker`` on the test sshd: the "container" is the vLLM emulator.

Implements exactly what the linux adapter sends (:class:`vllmfleet.remote.DockerCompose`):

- ``docker compose -f FILE up -d --force-recreate``: parse the rendered compose file as
  docker would, stop the container's previous process, start
  ``python -m vllmfleet.emulator <the service's command> --host 127.0.0.1 <extra>`` in the
  background (its own session, output to ``<state>/<container>.log``, PID in
  ``<state>/<container>.pid``) and return at once, like ``up -d``. A config that does not
  fit makes the emulator exit at start with vLLM's message; the container is then "exited".
- ``docker inspect --format '{{.State.Status}}' NAME``: running / exited, or docker's
  "No such object" error.
- ``docker logs --tail N NAME``: the last N lines of the container's output.
- ``docker rm -f NAME``: stop it.

``<extra>`` (GPU facts, time scale) comes from ``<state>/<container>.extra.json``, written by
the test. Every call is appended to ``<state>/calls.log``. Run as
``python docker_shim.py --state DIR <docker arguments>`` (the fixture writes a ``docker``
script that does so).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml


def _ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _alive(state: Path, name: str) -> bool:
    pidfile = state / f"{name}.pid"
    if not pidfile.exists():
        return False
    pid, ticks = pidfile.read_text().split()
    return _ticks(int(pid)) == ticks


def _stop(state: Path, name: str) -> None:
    pidfile = state / f"{name}.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().split()[0])
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if not _alive(state, name):
            break
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while _alive(state, name) and time.monotonic() < deadline:
            time.sleep(0.02)


def _env_file(service: dict[str, object]) -> dict[str, str]:
    """The service's ``env_file`` entries as docker compose reads them (``path`` +
    ``required``, or a plain path): ``NAME=value`` lines, ``#`` comments skipped."""
    env: dict[str, str] = {}
    entries = service.get("env_file") or []
    for entry in entries if isinstance(entries, list) else [entries]:
        path, required = ((entry["path"], entry.get("required", True)) if isinstance(entry, dict)
                          else (entry, True))
        try:
            text = Path(str(path)).read_text()
        except FileNotFoundError:
            if required:
                raise
            continue
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                name, value = line.split("=", 1)
                env[name.strip()] = value
    return env


def _compose(state: Path, args: list[str]) -> int:
    if len(args) < 3 or args[0] != "-f" or args[2:4] != ["up", "-d"]:
        print(f"docker shim: unsupported compose arguments {args}", file=sys.stderr)
        return 2
    file = Path(args[1])
    try:
        data = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        print(f"open {file}: no such file or directory", file=sys.stderr)
        return 14
    except yaml.YAMLError as exc:
        print(f"yaml: {exc}", file=sys.stderr)
        return 15
    for service in data["services"].values():
        name = service["container_name"]
        _stop(state, name)
        try:
            service_env = _env_file(service)
        except OSError as exc:
            print(f"env file not found: {exc}", file=sys.stderr)
            return 14
        extra_file = state / f"{name}.extra.json"
        extra = json.loads(extra_file.read_text()) if extra_file.exists() else []
        argv = [sys.executable, "-m", "vllmfleet.emulator", *map(str, service["command"]),
                "--host", "127.0.0.1", *extra]
        with open(state / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, **service_env,
                                         "PYTHONUNBUFFERED": "1"})
        ticks = None
        while ticks is None and proc.poll() is None:
            ticks = _ticks(proc.pid)
        (state / f"{name}.pid").write_text(f"{proc.pid} {ticks or 0}\n")
        print(f" Container {name}  Started", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    state = Path(argv[1])
    args = argv[2:]
    with open(state / "calls.log", "a") as calls:
        calls.write(" ".join(args) + "\n")
    if args[:1] == ["compose"]:
        return _compose(state, args[1:])
    if args[:1] == ["inspect"]:
        name = args[-1]
        if not (state / f"{name}.pid").exists():
            print(f"Error: No such object: {name}", file=sys.stderr)
            return 1
        print("running" if _alive(state, name) else "exited")
        return 0
    if args[:2] == ["logs", "--tail"]:
        name = args[3]
        log = state / f"{name}.log"
        if not log.exists():
            print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
            return 1
        lines = log.read_text(errors="replace").splitlines(keepends=True)
        sys.stdout.write("".join(lines[-int(args[2]):]))
        return 0
    if args[:2] == ["rm", "-f"]:
        for name in args[2:]:
            _stop(state, name)
        return 0
    print(f"docker shim: unsupported command {args}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "--state":
        sys.exit("usage: docker_shim.py --state DIR <docker arguments>")
    sys.exit(main(sys.argv[1:]))

"""The local fleet: an engine per vLLM host and a real LiteLLM proxy, on 127.0.0.1.

:func:`up` starts, from one inventory, an engine per vLLM host (the emulator by default, or
the real vLLM's CPU build: :mod:`vllmfleet.localfleet.engines`; launched with exactly
:func:`vllmfleet.render.vllm_args` but bound to 127.0.0.1 and a free port) and a LiteLLM
proxy from the rendered config (api_base pointed at those engines; config,
``vllmfleet_limits.json`` and ``vllmfleet_hooks.py`` side by side in ``build_dir/litellm``),
waits until every one is healthy and records PIDs, ports, URLs and log paths in
``build_dir/state.json``. :func:`down` stops exactly those PIDs; :func:`status` reports
them. Logs go to ``build_dir/logs``; the master key, generated per fleet, to
``build_dir/master_key`` (mode 0600), and the proxy gets it through the environment variable
the inventory names.

One fleet per build folder: ``up`` on a folder whose recorded fleet is alive and healthy
returns that fleet (same inventory) or refuses (anything else); a state file whose
processes are all gone is stale and cleaned. A start-up failure stops everything already
started and raises :class:`~vllmfleet.errors.LocalFleetError` naming the host, the exit
code and the last lines of its log (vLLM's own message).
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from vllmfleet import render
from vllmfleet.errors import LocalFleetError, StartFailed
from vllmfleet.inventory import Inventory
from vllmfleet.localfleet.engines import (
    ENGINES,
    Engine,
    launch,
    prepare,
    vllm_error_line,
)
from vllmfleet.localfleet.processes import (
    free_port,
    is_ours,
    spawn,
    stop,
    wait_healthy,
)
from vllmfleet.localfleet.state import (
    BACKEND_KEY_FILE,
    KEY_FILE,
    FleetState,
    Process,
    clear_state,
    locked,
    read_state,
    write_secret,
    write_state,
)

__all__ = ["ComponentStatus", "FleetState", "FleetStatus", "Process", "down", "status", "up"]

DEFAULT_BUILD_DIR = Path("build/localfleet")
#: The speed factors a local fleet accepts: 1/1000 of real time slows every emulated delay a
#: thousand times, 1000 shortens it a thousand times. Outside it a factor is a typo (1e-320
#: makes the time scale infinite: a "healthy" fleet whose every request hangs).
SPEED_RANGE = (0.001, 1000.0)
Progress = Callable[[str], None]


def _proxy_argv(config: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port)]


def _proxy_env(inventory: Inventory, key: str, backend_key: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",   # no price-map download at start
        inventory.proxy.master_key_env: key,
        inventory.proxy.backend_key_env: backend_key,  # the engines' --api-key
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("VLLMFLEET_LIMITS", None)  # the limits file beside the hooks is the one
    return env


def _write_proxy_files(inventory: Inventory, folder: Path, ports: Mapping[str, int],
                       templates: Path | None) -> Path:
    files = render.render_proxy(
        inventory, api_base=lambda h: f"http://127.0.0.1:{ports[h.name]}/v1",
        templates=templates)
    local = [dataclasses.replace(f, relpath=Path(f.relpath).name) for f in files]
    render.write(local, folder)
    config = Path(files[0].relpath).name  # the bundle starts with the config
    return folder / config


def _check_options(inventory: Inventory, engine: str, speed: float) -> None:
    if engine not in ENGINES:
        raise LocalFleetError(f"engine {engine!r} is not supported by the local fleet; use one "
                              f"of: {', '.join(ENGINES)}")
    low, high = SPEED_RANGE
    if not low <= speed <= high:
        raise LocalFleetError(f"speed {speed!r} must be a number from {low:g} to {high:g}: "
                              "1 = real time, 10 = emulated delays ten times shorter")
    if not inventory.vllm_hosts:
        raise LocalFleetError(f"{inventory.path}: the inventory has no host with a vllm: "
                              "section, so the local fleet has nothing to serve")
    if not inventory.path.is_file():
        raise LocalFleetError(f"the inventory {inventory.path} is not a file; the emulators "
                              "read GPU and model facts from it: load it with "
                              "vllmfleet.inventory.load(PATH)")


def _recorded_speed(state: FleetState) -> float | None:
    """The speed the recorded fleet's emulators run at (from their ``--emulator-time-scale``
    argument); None when no emulator records one."""
    for process in state.emulators.values():
        argv = process.argv
        if "--emulator-time-scale" in argv[:-1]:
            try:
                scale = float(argv[argv.index("--emulator-time-scale") + 1])
            except ValueError:
                return None
            return 1.0 / scale if scale > 0 else None
    return None


def _dead(state: FleetState) -> list[Process]:
    return [p for p in state.processes if not is_ours(p.pid, p.start_ticks)]


def _what(process: Process) -> str:
    return ("the LiteLLM proxy" if process.role == "proxy"
            else f"the vLLM of host {process.name!r}" if process.role == "vllm"
            else f"the emulator of host {process.name!r}")


def _recorded(build_dir: Path, inventory: Inventory, progress: Progress, *,
              speed: float | None) -> FleetState | None:
    """The running fleet to reuse, None to start one; raises when one is in the way, saying
    exactly why (another inventory, another speed, which process died)."""
    state = read_state(build_dir)
    if state is None:
        return None
    dead = _dead(state)
    alive = [p for p in state.processes if p not in dead]
    if not alive:
        progress(f"removing stale state {build_dir / 'state.json'} (its processes are gone)")
        clear_state(build_dir)
        return None
    running = f"a local fleet is already running from {build_dir} (PIDs " \
              f"{', '.join(str(p.pid) for p in alive)})"
    stop_first = "stop it first with `inv fleet.down`"
    if state.inventory_digest != inventory.digest:
        raise LocalFleetError(f"{running} and it serves another inventory; {stop_first}")
    if dead:
        died = "; ".join(f"{_what(p)} (pid {p.pid}) is not running; its log: {p.log}"
                         for p in dead)
        raise LocalFleetError(f"{running}, but {died}. Run `inv fleet.down` (stops the rest) "
                              "and `inv fleet.up` again; the log says why it stopped")
    recorded = _recorded_speed(state)
    if recorded is not None and speed is not None \
            and not math.isclose(recorded, speed, rel_tol=1e-9):
        raise LocalFleetError(f"{running} at speed {recorded:g}, not the {speed:g} asked for; "
                              f"use it as it is (--speed {recorded:g}) or {stop_first}")
    current = status(build_dir)
    if state.ready and current is not None and current.healthy:
        progress(f"the local fleet in {build_dir} is already running; reusing it")
        return state
    sick = [c for c in (current.components if current else []) if not c.healthy]
    why = "; ".join(f"{_what(c.process)} answers {c.detail}" for c in sick) or "it is not ready"
    raise LocalFleetError(f"{running} and it is not healthy ({why}); {stop_first}")


def up(inventory: Inventory, *, engine: Engine = "emulator", speed: float | None = None,
       build_dir: Path = DEFAULT_BUILD_DIR, progress: Progress | None = None,
       emulator_args: Sequence[str] = (),
       host_args: Mapping[str, Sequence[str]] | None = None,
       start_timeout_s: float | None = None,
       templates: Path | None = None) -> FleetState:
    """Start the local fleet of ``inventory`` and return its recorded state.

    ``engine``: ``"emulator"`` or ``"vllm"`` (the real engine; needs ``./dev vllm-setup``
    and ``cpu:`` hosts). ``speed`` divides every emulated delay (``--emulator-time-scale
    1/speed``; None: 1 for a new fleet, and a running fleet is reused at its own speed, while
    a different speed given is refused rather than silently ignored); ``emulator_args`` go
    to every emulator and ``host_args[host]`` to that host's engine only (fault injection,
    e.g. ``{"armitage": ["--emulator-fail-at-start"]}``; with the real engine, more vLLM
    flags).
    ``start_timeout_s`` bounds each health wait (default: 60 s for an emulator, the host's
    ``vllm.start_timeout_s`` for a real vLLM, the inventory's ``proxy.start_timeout_s`` for
    LiteLLM). ``templates`` is the template
    folder (default: ``templates/`` beside the inventory, as ``inv render`` uses).
    """
    say = progress or (lambda _msg: None)
    _check_options(inventory, engine, 1.0 if speed is None else speed)
    if engine == "vllm" and emulator_args:
        raise LocalFleetError(f"emulator_args {list(emulator_args)} are the emulator's; the "
                              "real vLLM engine takes no --emulator-* flags")
    unknown = sorted(set(host_args or {}) - set(inventory.vllm_hosts))
    if unknown:
        raise LocalFleetError(f"host_args names {', '.join(unknown)}, which the inventory has "
                              f"no vLLM host for; known: {', '.join(inventory.vllm_hosts)}")
    build_dir = build_dir.resolve()
    with locked(build_dir):
        existing = _recorded(build_dir, inventory, say, speed=speed)
        if existing is not None and existing.engine != engine:
            raise LocalFleetError(
                f"a local fleet of engine {existing.engine} is already running from "
                f"{build_dir}; stop it first with `inv fleet.down` to start engine {engine}")
        if existing is not None:
            return existing
        prepare(inventory, engine)
        return _start(inventory, engine=engine, speed=1.0 if speed is None else speed,
                      build_dir=build_dir, say=say,
                      emulator_args=emulator_args, host_args=host_args or {},
                      start_timeout_s=start_timeout_s, templates=templates)


def _start(inventory: Inventory, *, engine: Engine, speed: float, build_dir: Path,
           say: Progress,
           emulator_args: Sequence[str], host_args: Mapping[str, Sequence[str]],
           start_timeout_s: float | None, templates: Path | None) -> FleetState:
    started = time.monotonic()
    logs = build_dir / "logs"
    key_file = build_dir / KEY_FILE
    key = "sk-" + secrets.token_urlsafe(32)  # LiteLLM wants master keys to start with sk-
    write_secret(key_file, key)
    backend_key_file = build_dir / BACKEND_KEY_FILE
    backend_key = secrets.token_urlsafe(32)  # only the proxy reaches the engines
    write_secret(backend_key_file, backend_key)
    state = FleetState(build_dir=str(build_dir), engine=engine,
                       inventory_path=str(inventory.path.resolve()),
                       inventory_digest=inventory.digest,
                       master_key_env=inventory.proxy.master_key_env,
                       master_key_file=str(key_file), started_at=time.time(),
                       backend_key_file=str(backend_key_file))
    children = []
    try:
        ports = {name: free_port() for name in inventory.vllm_hosts}
        for name, host in inventory.vllm_hosts.items():
            run = launch(inventory, host, engine=engine, port=ports[name], speed=speed,
                         extra=[*emulator_args, *host_args.get(name, ())],
                         start_timeout_s=start_timeout_s)
            log = logs / f"{name}.log"
            # vLLM (and the emulator) read --api-key from VLLM_API_KEY: not on the command line
            proc, ticks = spawn(run.argv, log=log, env={**run.env, "VLLM_API_KEY": backend_key},
                                cwd=build_dir)
            url = f"http://127.0.0.1:{ports[name]}"
            state.emulators[name] = Process(name=name, role=engine, pid=proc.pid,
                                            start_ticks=ticks, port=ports[name], url=url,
                                            log=str(log), argv=run.argv)
            children.append((run, proc, url + "/health", log))
            write_state(state)
            say(f"started {run.what} (pid {proc.pid}) on {url}")
        config = _write_proxy_files(inventory, build_dir / "litellm", ports, templates)
        proxy_port = free_port()
        argv = _proxy_argv(config, proxy_port)
        log = logs / "litellm.log"
        proc, ticks = spawn(argv, log=log, env=_proxy_env(inventory, key, backend_key),
                            cwd=config.parent)
        url = f"http://127.0.0.1:{proxy_port}"
        state = dataclasses.replace(state, proxy=Process(
            name="litellm", role="proxy", pid=proc.pid, start_ticks=ticks, port=proxy_port,
            url=url, log=str(log), argv=argv))
        write_state(state)
        say(f"started LiteLLM proxy (pid {proc.pid}) on {url}")
        for run, child, health, child_log in children:
            try:
                wait_healthy(name=run.what, proc=child, url=health, log=child_log,
                             timeout_s=run.start_timeout_s)
            except StartFailed as exc:
                said = vllm_error_line(child_log) if engine == "vllm" else None
                raise StartFailed(f"{exc}" + (f"\nvLLM said: {said}" if said else "")) from None
            say(f"{run.what} is healthy ({time.monotonic() - started:.1f} s)")
        wait_healthy(name="the LiteLLM proxy", proc=proc, url=url + "/health/readiness",
                     log=log, timeout_s=start_timeout_s or inventory.proxy.start_timeout_s)
        say(f"LiteLLM proxy is ready ({time.monotonic() - started:.1f} s)")
    except BaseException as exc:
        pids = stop([(p.pid, p.start_ticks) for p in state.processes], grace_s=5.0)
        clear_state(build_dir)
        if isinstance(exc, StartFailed):
            raise LocalFleetError(
                f"the local fleet did not start: {exc}\nstopped what had started "
                f"(PIDs {', '.join(map(str, pids)) or 'none'}); fix the cause and run "
                "`inv fleet.up` again") from None
        raise
    state = dataclasses.replace(state, ready=True)
    write_state(state)
    return state


def down(build_dir: Path = DEFAULT_BUILD_DIR, *, grace_s: float = 10.0) -> list[int]:
    """Stop the processes recorded in ``build_dir/state.json``; return the PIDs stopped.

    SIGTERM to each process group, SIGKILL after ``grace_s``; returns once they are gone.
    Removes the state file and the master key; keeps the logs. No state file: nothing to do.
    """
    build_dir = build_dir.resolve()
    with locked(build_dir):
        state = read_state(build_dir)
        if state is None:
            return []
        pids = stop([(p.pid, p.start_ticks) for p in state.processes], grace_s=grace_s)
        clear_state(build_dir)
        return pids


@dataclass(frozen=True, kw_only=True)
class ComponentStatus:
    """One recorded process: is it still ours and running, does it answer its health URL."""

    process: Process
    alive: bool
    healthy: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class FleetStatus:
    """The recorded fleet and how each of its processes is doing."""

    state: FleetState
    components: list[ComponentStatus]

    @property
    def healthy(self) -> bool:
        return self.state.ready and all(c.healthy for c in self.components)


def _probe(process: Process) -> ComponentStatus:
    if not is_ours(process.pid, process.start_ticks):
        return ComponentStatus(process=process, alive=False, healthy=False,
                               detail="not running")
    path = "/health/readiness" if process.role == "proxy" else "/health"
    try:
        with httpx.Client(timeout=3.0, trust_env=False) as client:
            code = client.get(process.url + path).status_code
    except httpx.HTTPError as exc:
        return ComponentStatus(process=process, alive=True, healthy=False,
                               detail=f"{path}: {type(exc).__name__}")
    return ComponentStatus(process=process, alive=True, healthy=code == 200,
                           detail=f"{path}: HTTP {code}")


def status(build_dir: Path = DEFAULT_BUILD_DIR) -> FleetStatus | None:
    """The recorded fleet with a live check of each process, or None when none is recorded."""
    state = read_state(build_dir.resolve())
    if state is None:
        return None
    return FleetStatus(state=state, components=[_probe(p) for p in state.processes])

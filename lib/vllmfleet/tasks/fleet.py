"""fleet.*: the local fleet on 127.0.0.1 (an emulator or a real vLLM per host, LiteLLM in front)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from vllmfleet import localfleet
from vllmfleet.tasks._common import INVENTORY_HELP, load_inventory, user_errors
from vllmfleet.tasks.files import make_folder
from vllmfleet.tasks.settings import settings, where

_INV = INVENTORY_HELP


def _build_dir(c: Context, *, create: bool = False) -> Path:
    """``<build_dir>/localfleet``; ``create``: made now, or exit 2 naming the setting."""
    folder = settings(c).build_dir / "localfleet"
    return make_folder(folder, named=where(c, "build_dir")) if create else folder


def _progress() -> localfleet.Progress:
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"  [{time.monotonic() - started:5.1f} s] {message}", file=sys.stderr, flush=True)

    return say


def _speed(value: str | None) -> float | None:
    """``--speed`` as a number (None when not given: a running fleet keeps its own)."""
    if value is None:
        return None
    try:
        speed = float(value)
    except ValueError:
        raise Exit(f"error: --speed {value!r} is not a number; use e.g. --speed 10 "
                   "(ten times faster than the configured tokens/s)", code=2) from None
    low, high = localfleet.SPEED_RANGE
    if not low <= speed <= high:  # nan too; 1e-320 would make every delay infinite
        raise Exit(f"error: --speed {value} is out of range: give a number from {low:g} to "
                   f"{high:g}, e.g. --speed 1 (real time) or --speed 10", code=2)
    return speed


def _start(c: Context, inventory: str | None, engine: str | None,
           speed: str | None) -> localfleet.FleetState:
    factor = _speed(speed)
    inv = load_inventory(c, inventory)
    chosen = engine or "emulator"
    if chosen not in localfleet.ENGINES:
        raise Exit(f"error: --engine {chosen!r} is not available; use one of: "
                   + ", ".join(localfleet.ENGINES), code=2)
    folder = _build_dir(c, create=True)
    print(f"starting the local fleet of {inv.path} (engine {chosen})", file=sys.stderr)
    with user_errors():
        return localfleet.up(inv, engine="vllm" if chosen == "vllm" else "emulator",
                             speed=factor, build_dir=folder, progress=_progress())


def _describe(state: localfleet.FleetState) -> str:
    lines = [f"proxy      {state.proxy_url}/v1   (key: {state.master_key_file}, "
             f"env {state.master_key_env})"]
    lines += [f"{name:<10} {url}/v1" for name, url in state.host_urls.items()]
    lines.append(f"logs       {Path(state.build_dir) / 'logs'}")
    return "\n".join(lines)


@task(help={"inventory": _INV,
            "engine": "engine per vLLM host: emulator (default) or vllm (the real vLLM, CPU "
                      "build; `./dev vllm-setup` installs it)",
            "speed": "emulated speed factor: 10 = ten times faster (default 1)"})
def up(c: Context, inventory: str | None = None, engine: str | None = None,
       speed: str | None = None) -> None:
    """Start the local fleet on 127.0.0.1: an engine per vLLM host, LiteLLM in front."""
    state = _start(c, inventory, engine, speed)
    print(_describe(state))


@task
def down(c: Context) -> None:
    """Stop the local fleet: exactly the processes `fleet.up` recorded."""
    with user_errors():
        pids = localfleet.down(_build_dir(c))
    print(f"stopped PIDs {', '.join(map(str, pids))}" if pids else "no local fleet is running")


@task
def status(c: Context) -> None:
    """Show the local fleet's processes, URLs and health; exit 1 when unhealthy."""
    with user_errors():
        current = localfleet.status(_build_dir(c))
    if current is None:
        raise Exit("no local fleet is recorded; start one with `inv fleet.up`", code=1)
    for comp in current.components:
        p = comp.process
        verdict = "healthy" if comp.healthy else ("UNHEALTHY" if comp.alive else "DOWN")
        print(f"{p.name:<10} {p.role:<8} pid {p.pid:<7} {p.url:<24} {verdict:<9} {comp.detail}")
    if not current.healthy:
        raise Exit("the local fleet is not healthy (logs: "
                   f"{Path(current.state.build_dir) / 'logs'})", code=1)


@task(help={"inventory": _INV, "speed": "emulated speed factor (default 1)",
            "keep": "leave the fleet running afterwards"})
def demo(c: Context, inventory: str | None = None, speed: str | None = None,
         keep: bool = False) -> None:
    """The main job on the local fleet: start it, smoke-test proxy and hosts, report, stop."""
    from vllmfleet.acceptance.smoke import format_smoke, run_smoke

    inv = load_inventory(c, inventory)
    started = time.monotonic()
    with user_errors():
        theirs = localfleet.status(_build_dir(c)) is not None  # a fleet `fleet.up` started
    state = _start(c, inventory, None, speed)
    try:
        print(_describe(state), end="\n\n")
        report = asyncio.run(run_smoke(inv, state.endpoints()))
        print(format_smoke(report))
    finally:
        if theirs:
            print("the local fleet was running before the demo: left running "
                  "(`inv fleet.down` stops it)")
        elif not keep:
            with user_errors():
                localfleet.down(_build_dir(c))
            print(f"local fleet stopped ({time.monotonic() - started:.1f} s in all)")
    if not report.ok:
        raise Exit("the smoke test failed: see the FAIL lines above", code=1)

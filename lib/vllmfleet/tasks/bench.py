"""bench.*: capacity sweeps — ``bench.<host>`` (one per vLLM host, measured directly) and
``bench.proxy`` (an alias through the LiteLLM proxy).

Each ramps the number of concurrent streams (doubling, then bisecting) until the SLO
breaks or the fleet saturates, and writes JSON, CSV and HTML reports
(:mod:`vllmfleet.bench`). ``--fleet local`` (the default) measures the local fleet of
``inv fleet.up`` — started for the run, and stopped after it, when none is running;
``--fleet inventory`` the real one at the inventory's addresses.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from vllmfleet.tasks._common import INVENTORY_HELP, load_inventory, per_host, user_errors
from vllmfleet.tasks.settings import settings

if TYPE_CHECKING:  # the client stack (aiohttp, httpx) loads when a task runs, not for --list
    from vllmfleet.bench import SLO, Bounds
    from vllmfleet.inventory import Alias, Endpoints, Inventory

RESERVED = ("proxy",)
HELP = {
    "fleet": "local (default: the running `inv fleet.up` fleet, else one started for the run) "
             "or inventory (the real fleet at the inventory's addresses)",
    "inventory": INVENTORY_HELP,
    "ttft": "TTFT objective in seconds at --percentile (default: the alias's slo: in the "
            "inventory, else 2.0; 0 = none)",
    "itl": "inter-token latency objective in seconds (default: the alias's slo:, else 0.2; "
           "0 = none)",
    "e2e": "end-to-end latency objective in seconds (default: the alias's slo:, else none)",
    "percentile": "the percentile the objectives hold at, 50-99 (default: the alias's slo:, "
                  "else 90)",
    "error_budget": "share of requests that may fail, 429s aside (default 0.01)",
    "max_429": "share of 429s (with Retry-After) a step may get (default 0.1; they never "
               "spend the error budget; 1 = ignore them)",
    "max_concurrency": "highest concurrency to try (default 64)",
    "max_requests": "requests in all, at most (default 2000)",
    "max_seconds": "seconds in all, at most (default 300)",
    "input_tokens": "prompt size in tokens (default: --input-share of max_input_tokens)",
    "input_share": "prompt size as a share of the alias's max_input_tokens (default 0.5)",
    "output_tokens": "answer size in tokens (default 64, at most max_output_tokens)",
    "speed": "speed factor of a local fleet started for the run (default 1)",
    "out": "folder for the reports (default: <build_dir>/bench)",
}
Options = dict[str, Any]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _number(name: str, value: str | None, default: float | None) -> float | None:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise Exit(f"error: --{name.replace('_', '-')} {value!r} is not a number", code=2) \
            from None
    return number


def slo_of(o: Options, alias: Alias | None) -> SLO:
    """The SLO: the command line, else the alias's ``slo:`` in the inventory, else defaults."""
    from vllmfleet.bench.slo import merged

    given: dict[str, float | None] = {}
    for name in ("ttft", "itl", "e2e", "percentile"):
        if o.get(name) is not None:
            given[name if name == "percentile" else f"{name}_s"] = _number(name, o[name], None)
    try:
        return merged(given, alias.slo if alias is not None else None,
                      error_budget=_number("error_budget", o.get("error_budget"), 0.01) or 0.0,
                      max_429_share=_number("max_429", o.get("max_429"), 0.1) or 0.0)
    except ValueError as exc:
        raise Exit(f"error: SLO: {exc}", code=2) from None


def bounds_of(o: Options) -> Bounds:
    from vllmfleet.bench import Bounds

    def whole(name: str, default: int) -> int:
        value = _number(name, o.get(name), default)
        if value is None or value != int(value):
            raise Exit(f"error: --{name.replace('_', '-')} {o.get(name)!r}: give a whole "
                       "number", code=2)
        return int(value)

    try:
        return Bounds(max_concurrency=whole("max_concurrency", 64),
                      max_requests=whole("max_requests", 2000),
                      max_seconds=_number("max_seconds", o.get("max_seconds"), 300.0) or 0.0)
    except ValueError as exc:
        raise Exit(f"error: bounds: {exc}", code=2) from None


@contextmanager
def fleet_endpoints(c: Context, inv: Inventory, fleet: str | None,
                    speed: str | None) -> Iterator[Endpoints]:
    """The endpoints to measure; a local fleet started here is stopped on the way out."""
    from vllmfleet import localfleet
    from vllmfleet.inventory import endpoints_of

    chosen = fleet or "local"
    if chosen == "inventory":
        yield endpoints_of(inv, key=os.environ.get(inv.proxy.master_key_env) or None)
        return
    if chosen != "local":
        raise Exit(f"error: --fleet {chosen!r}: use local or inventory", code=2)
    build = settings(c).build_dir / "localfleet"
    with user_errors():
        running = localfleet.status(build)
    if running is not None and running.healthy:
        say(f"using the running local fleet ({build})")
        yield running.state.endpoints()
        return
    factor = _number("speed", speed, 1.0) or 0.0
    if factor <= 0:
        raise Exit(f"error: --speed {speed}: give a positive number, e.g. 1", code=2)
    say(f"no local fleet is running: starting one for this run (speed {factor:g})")
    with user_errors():
        state = localfleet.up(inv, speed=factor, build_dir=build)
    try:
        yield state.endpoints()
    finally:
        with user_errors():
            localfleet.down(build)
        say("local fleet stopped")


def _bench(c: Context, kind: str, name: str | None, o: Options) -> None:
    from vllmfleet import bench
    from vllmfleet.client import loop

    inv = load_inventory(c, o.get("inventory"))
    if kind == "proxy" and name is None:
        main = [a.name for a in inv.aliases.values() if a.profile_of is None]
        name = (main or list(inv.aliases) or [""])[0]
    assert name is not None
    slo = slo_of(o, bench.alias_of(inv, kind=kind, name=name))  # type: ignore[arg-type]
    bounds = bounds_of(o)
    out = Path(o["out"]).expanduser() if o.get("out") else settings(c).build_dir / "bench"
    started = time.monotonic()
    with fleet_endpoints(c, inv, o.get("fleet"), o.get("speed")) as endpoints, user_errors():
        goal = bench.target(inv, endpoints, kind=kind, name=name)  # type: ignore[arg-type]
        try:
            load = bench.load_for(
                goal, input_share=_number("input_share", o.get("input_share"), 0.5) or 0.0,
                input_tokens=None if o.get("input_tokens") is None
                else int(_number("input_tokens", o["input_tokens"], 0) or 0),
                output_tokens=int(_number("output_tokens", o.get("output_tokens"), 64) or 0))
        except ValueError as exc:
            raise Exit(f"error: {exc}", code=2) from None
        result = loop.run(bench.run_sweep(goal, load, slo=slo, bounds=bounds,
                                          say=_timed(started)))
        paths = bench.write(result, goal, load, out,
                            generated_at=dt.datetime.now(dt.UTC).isoformat(),
                            fleet=o.get("fleet") or "local", inventory=str(inv.path))
    print(bench.summary(result, goal))
    for path in paths:
        print(f"report: {path}")
    if result.capacity == 0:
        raise Exit("capacity 0: not even one stream met the SLO (see the steps above)", code=1)


def _timed(started: float) -> Callable[[str], None]:
    def tell(message: str) -> None:
        say(f"  [{time.monotonic() - started:6.1f} s] {message}")
    return tell


def _task(name: str, kind: str, doc: str) -> Task[Any]:
    def body(c: Context, fleet: str | None = None, inventory: str | None = None,
             alias: str | None = None, ttft: str | None = None, itl: str | None = None,
             e2e: str | None = None, percentile: str | None = None,
             error_budget: str | None = None, max_429: str | None = None,
             max_concurrency: str | None = None, max_requests: str | None = None,
             max_seconds: str | None = None, input_tokens: str | None = None,
             input_share: str | None = None, output_tokens: str | None = None,
             speed: str | None = None, out: str | None = None) -> None:
        options = {k: v for k, v in locals().items() if k not in ("c", "alias")}
        if kind == "direct" and alias is not None:
            raise Exit(f"error: --alias is for bench.proxy; bench.{name} measures {name} "
                       f"directly (try: inv bench.proxy --alias {alias})", code=2)
        _bench(c, kind, alias if kind == "proxy" else name, options)

    body.__doc__ = doc
    helps = {**HELP, "alias": "the alias to measure through the proxy (bench.proxy only; "
                              "default: the inventory's first main alias)"}
    return Task(body, name=name, help=helps, auto_shortflags=False)


def host_task(name: str) -> Task[Any]:
    return _task(name, "direct", f"Capacity of {name} (direct): concurrent streams within the "
                                 "SLO; JSON/CSV/HTML report.")


def collection(hosts: Sequence[str]) -> Collection:
    """``bench.<host>`` per vLLM host of the inventory, and ``bench.proxy``."""
    ns = per_host("bench", hosts, host_task, reserved=RESERVED)
    ns.add_task(_task("proxy", "proxy", "Capacity of an alias through the proxy: concurrent "
                                        "streams within the SLO; 429s counted apart."))
    return ns

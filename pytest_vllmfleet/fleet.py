"""The fleet under test for one pytest session: where it answers and the clients to it.

:class:`Fleet` is what the ``fleet`` fixture returns. It owns one event loop for the
session (the suites are plain synchronous tests that call :meth:`Fleet.run`), one
:class:`~vllmfleet.client.FleetClient` per vLLM host and one for the proxy, and a
:class:`~vllmfleet.client.prompts.PromptBuilder` per host. :func:`start` makes one from the
inventory: ``local`` starts the local fleet (its own ports, logs and key under a fresh
directory) and stops it at the end; ``inventory`` uses the hosts' real addresses and the
master key from the environment variable the inventory names.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pytest_vllmfleet.settings import EngineName, Mode, Target
from vllmfleet.client import FleetClient
from vllmfleet.client.loop import new_event_loop
from vllmfleet.client.prompts import PromptBuilder
from vllmfleet.errors import FleetError
from vllmfleet.inventory import VLLM, Alias, Endpoints, Inventory, endpoints_of

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Route:
    """How a test reaches a host on one target: the client and the model name to send."""

    host: str
    target: Target
    client: FleetClient
    model: str
    alias: Alias | None


def inventory_endpoints(inventory: Inventory) -> Endpoints:
    """The real fleet: ``http://address:port`` per vLLM host and for the proxy, the key from
    the variable the inventory's ``proxy.master_key_env`` names (the vLLM servers' key from
    the one ``proxy.backend_key_env`` names)."""
    return endpoints_of(inventory, key=os.environ.get(inventory.proxy.master_key_env) or None,
                        backend_key=os.environ.get(inventory.proxy.backend_key_env) or None)


def local_endpoints(inventory: Inventory, workdir: Path, *, speed: float,
                    engine: EngineName = "emulator") -> tuple[Endpoints, Callable[[], None]]:
    """Start the local fleet under ``workdir``; return its endpoints and how to stop it.

    The one place that knows :mod:`vllmfleet.localfleet`'s interface.
    """
    from vllmfleet import localfleet

    state = localfleet.up(inventory, build_dir=workdir, speed=speed, engine=engine)
    endpoints = state.endpoints()

    def stop() -> None:
        localfleet.down(workdir)

    return endpoints, stop


class EarlyStart:
    """Starts the local fleet in a background thread, so LiteLLM boots while pytest collects.

    The plugin uses it when the run is plainly a fleet run (``-m burst`` brought in the
    packaged suites); :meth:`wait` hands the fleet to the ``fleet`` fixture, and
    :meth:`discard` stops a fleet that no test asked for.
    """

    def __init__(self, inventory: Inventory, workdir: Path, *, speed: float,
                 engine: EngineName = "emulator") -> None:
        self.workdir = workdir
        self._result: tuple[Endpoints, Callable[[], None]] | None = None
        self._error: BaseException | None = None
        self._claimed = False
        self._thread = threading.Thread(target=self._run, args=(inventory, speed, engine),
                                        name="vllmfleet-local-fleet", daemon=True)
        self._thread.start()

    def _run(self, inventory: Inventory, speed: float, engine: EngineName) -> None:
        try:
            self._result = local_endpoints(inventory, self.workdir, speed=speed, engine=engine)
        except BaseException as exc:  # handed to the fixture, which reports it
            self._error = exc

    def wait(self) -> tuple[Endpoints, Callable[[], None]]:
        """The started fleet (waits for it); its start-up error, if it failed."""
        self._thread.join()
        self._claimed = True
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def discard(self) -> None:
        """Stop the fleet unless a test took it (then the fixture stops it)."""
        self._thread.join()
        if not self._claimed and self._result is not None:
            self._result[1]()


class Fleet:
    """The fleet of this session (see the module docstring)."""

    def __init__(self, *, mode: Mode, inventory: Inventory, hosts: tuple[str, ...],
                 endpoints: Endpoints, timeout_s: float,
                 stop: Callable[[], None] | None = None, logs: str = "") -> None:
        self.mode = mode
        self.logs = logs  # where a local fleet's logs are, for failure messages
        self.inventory = inventory
        self.hosts = hosts
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self._stop = stop
        self._loop = new_event_loop()  # uvloop's where installed
        self._clients: dict[tuple[str, int], FleetClient] = {}
        self._prompts: dict[str, PromptBuilder] = {}

    # -- running async code from synchronous tests ----------------------------------
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the session's event loop (where the clients live)."""
        return self._loop.run_until_complete(coro)

    # -- what the inventory says --------------------------------------------------------
    def vllm(self, host: str) -> VLLM:
        spec = self.inventory.hosts[host].vllm
        if spec is None:
            raise FleetError(f"{host} runs no vLLM in {self.inventory.path}")
        return spec

    def primary_alias(self, host: str) -> Alias | None:
        """The host's main alias at the proxy (not a profile); None when it has none."""
        aliases = self.inventory.aliases_of(host)
        main = [a for a in aliases if a.profile_of is None]
        candidates = main or aliases
        return candidates[0] if candidates else None

    # -- clients ---------------------------------------------------------------------
    def client(self, host: str) -> FleetClient:
        """The direct client of vLLM host ``host``."""
        if host not in self.endpoints.hosts:
            known = ", ".join(self.endpoints.hosts) or "none"
            raise FleetError(f"{host!r} is not a vLLM host of {self.inventory.path} "
                             f"(vLLM hosts: {known})")
        if (host, 0) not in self._clients:
            self._clients[host, 0] = FleetClient(self.endpoints.hosts[host],
                                                 api_key=self.endpoints.backend_key,
                                                 timeout_s=self.timeout_s)
        return self._clients[host, 0]

    @property
    def proxy(self) -> FleetClient:
        """The proxy's client, with the master key; 429s are returned as they come."""
        return self.proxy_client()

    def proxy_client(self, *, retry_429: int = 0) -> FleetClient:
        """The proxy's client; with ``retry_429`` it waits out 429s (Retry-After) and retries."""
        if self.endpoints.key is None:
            raise FleetError(f"no key for the proxy at {self.endpoints.proxy}: "
                             f"{self.endpoints.key_hint}")
        if ("", retry_429) not in self._clients:
            self._clients["", retry_429] = FleetClient(
                self.endpoints.proxy, api_key=self.endpoints.key,
                timeout_s=self.timeout_s, retry_429=retry_429)
        return self._clients["", retry_429]

    def prompts(self, host: str) -> PromptBuilder:
        """Exact-size prompts for ``host``'s model, counted by its /tokenize."""
        if host not in self._prompts:
            self._prompts[host] = PromptBuilder(self.client(host),
                                                model=self.vllm(host).served_model_name,
                                                host=host)
        return self._prompts[host]

    def route(self, host: str, target: Target, *, retry_429: int = 0) -> Route:
        """Client and model for ``host`` on ``target`` (the primary alias via the proxy).

        ``retry_429`` (proxy only) makes the client wait out rate limits and retry.
        """
        alias = self.primary_alias(host)
        if target == "direct":
            return Route(host=host, target=target, client=self.client(host),
                         model=self.vllm(host).served_model_name, alias=alias)
        if alias is None:
            raise FleetError(f"no alias of {self.inventory.path} routes to {host}; add one "
                             "under aliases: to test it through the proxy")
        return Route(host=host, target=target, client=self.proxy_client(retry_429=retry_429),
                     model=alias.name,
                     alias=alias)

    # -- the end ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the clients and the loop, then stop the local fleet if this session started it."""
        try:
            for client in self._clients.values():
                self.run(client.aclose())
            self._loop.close()
        finally:
            if self._stop is not None:
                self._stop()


PROXY_HARD_TIMEOUT_S = 300.0
"""The proxy's own ceiling (DESIGN.md); its ``request_timeout_s`` must stay below it."""
CLIENT_TIMEOUT_SHARE = 0.9
LOCAL_CLIENT_TIMEOUT_S = 120.0


def client_timeout_s(inventory: Inventory) -> float:
    """How long the suites' clients wait: 90 % of the proxy's request timeout.

    DESIGN.md: the client timeout stays below the proxy's. The proxy gives up on a backend
    after ``request_timeout_s`` (240 s in the reference, itself below the proxy's 300 s
    ceiling); a client that waited exactly as long would race the proxy, and one that waited
    longer would hold requests the proxy has dropped. 90 % (216 s for 240) leaves the proxy
    the margin to answer first, and the cap at 300 s holds even for an unvalidated inventory.
    """
    proxy_timeout = min(float(inventory.proxy.request_timeout_s), PROXY_HARD_TIMEOUT_S)
    return proxy_timeout * CLIENT_TIMEOUT_SHARE


def start(*, mode: Mode, inventory: Inventory, hosts: tuple[str, ...], workdir: Path | None,
          speed: float, early: EarlyStart | None = None,
          engine: EngineName = "emulator") -> Fleet:
    """The fleet of ``inventory``: started locally under ``workdir`` (or taken from
    ``early``, which is starting it already), or the real one. Clients wait
    :func:`client_timeout_s` (at most 120 s on the local fleet)."""
    timeout = client_timeout_s(inventory)
    if mode == "inventory":
        return Fleet(mode=mode, inventory=inventory, hosts=hosts,
                     endpoints=inventory_endpoints(inventory), timeout_s=timeout)
    if early is not None:
        endpoints, stop = early.wait()
    elif workdir is not None:
        endpoints, stop = local_endpoints(inventory, workdir, speed=speed, engine=engine)
    else:
        raise FleetError("the local fleet needs a folder for its state and logs")
    logs = str(early.workdir if early is not None else workdir) + "/logs"
    return Fleet(mode=mode, inventory=inventory, hosts=hosts, endpoints=endpoints,
                 timeout_s=min(timeout, LOCAL_CLIENT_TIMEOUT_S), stop=stop, logs=logs)

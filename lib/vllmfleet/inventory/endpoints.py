"""Where a fleet answers: each vLLM server's root URL, the proxy's, and the proxy's key.

One :class:`Endpoints` serves every caller that talks to a fleet — ``inv health``, the demo's
smoke test, deploy's health gate and the pytest plugin — whether the addresses come from the
inventory (:func:`endpoints_of`) or from a running local fleet (its state file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vllmfleet.inventory.model import Host, Inventory


@dataclass(frozen=True, kw_only=True)
class Endpoints:
    """Where to reach each vLLM server and the proxy, and the proxy's master key."""

    hosts: Mapping[str, str]  # vLLM host name → server root, e.g. http://wintermute.lan:8000
    proxy: str  # the proxy's root, e.g. http://motoko.lan:4000
    key: str | None = None
    key_hint: str = ""  # how to provide the key when it is missing
    backend_key: str | None = None  # the vLLM servers' --api-key, for direct requests


def vllm_url(host: Host, port: int | None = None) -> str:
    """The root URL of ``host``'s vLLM server (``port`` overrides the inventory's)."""
    assert host.vllm is not None, f"{host.name} runs no vLLM"
    return f"http://{host.address}:{port or host.vllm.port}"


def proxy_url(inventory: Inventory) -> str:
    """The root URL of the fleet's LiteLLM proxy."""
    return f"http://{inventory.hosts[inventory.proxy.host].address}:{inventory.proxy.port}"


def key_hint(inventory: Inventory) -> str:
    """What to do when the proxy's master key is missing (every caller says the same)."""
    return (f"set {inventory.proxy.master_key_env} to the proxy's master key (the inventory's "
            "proxy.master_key_env names that variable)")


def endpoints_of(inventory: Inventory, *, key: str | None,
                 backend_key: str | None = None) -> Endpoints:
    """The inventory's addresses (the real fleet)."""
    return Endpoints(hosts={n: vllm_url(h) for n, h in inventory.vllm_hosts.items()},
                     proxy=proxy_url(inventory), key=key, key_hint=key_hint(inventory),
                     backend_key=backend_key)

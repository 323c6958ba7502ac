"""vllmfleet: operate a small self-hosted LLM fleet (vLLM hosts behind a LiteLLM proxy).

One inventory (``configs/fleet.yaml``) drives validation, capacity planning, rendering,
the local fleet, deployment and the acceptance suites. Every behaviour lives in this
package; ``tasks.py`` and the ``pytest_vllmfleet`` plugin are thin layers over it.

The public API is below (``__all__``); each name is imported on first use, so that
``python -m vllmfleet.emulator`` does not pay for SSH or HTTP libraries it never uses::

    import vllmfleet

    inv = vllmfleet.load("configs/fleet.yaml")
    for name, report in vllmfleet.plan(inv):
        print(name, report.fits, report.largest_max_model_len)

The subpackages are layered (README "Layout"; import-linter checks it): ``errors`` ←
``vllm`` ← ``inventory`` ← ``render`` ← ``remote`` | ``client`` ← ``emulator`` ← ``health``
← ``deploy`` | ``localfleet`` ← ``acceptance`` ← ``tasks``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name → the module that defines it
_API: dict[str, str] = {
    "FleetError": "vllmfleet.errors",
    "InventoryError": "vllmfleet.errors",
    "CapacityError": "vllmfleet.errors",
    "RenderError": "vllmfleet.errors",
    "HostError": "vllmfleet.errors",
    "BackupError": "vllmfleet.errors",
    "DeployError": "vllmfleet.errors",
    "LocalFleetError": "vllmfleet.errors",
    "Inventory": "vllmfleet.inventory",
    "Endpoints": "vllmfleet.inventory",
    "load": "vllmfleet.inventory",
    "parse": "vllmfleet.inventory",
    "plan": "vllmfleet.inventory.plan",
    "render_all": "vllmfleet.render",
    "render_host": "vllmfleet.render",
    "vllm_args": "vllmfleet.render",
    "HostAdapter": "vllmfleet.remote",
    "adapter_for": "vllmfleet.remote",
    "FleetClient": "vllmfleet.client",
    "PromptBuilder": "vllmfleet.client.prompts",
}

__all__ = [  # the same names as _API (a test checks)
    "BackupError",
    "CapacityError",
    "DeployError",
    "Endpoints",
    "FleetClient",
    "FleetError",
    "HostAdapter",
    "HostError",
    "Inventory",
    "InventoryError",
    "LocalFleetError",
    "PromptBuilder",
    "RenderError",
    "__version__",
    "adapter_for",
    "load",
    "parse",
    "plan",
    "render_all",
    "render_host",
    "vllm_args",
]

if TYPE_CHECKING:
    from vllmfleet.client import FleetClient
    from vllmfleet.client.prompts import PromptBuilder
    from vllmfleet.errors import (
        BackupError,
        CapacityError,
        DeployError,
        FleetError,
        HostError,
        InventoryError,
        LocalFleetError,
        RenderError,
    )
    from vllmfleet.inventory import Endpoints, Inventory, load, parse
    from vllmfleet.inventory.plan import plan
    from vllmfleet.remote import HostAdapter, adapter_for
    from vllmfleet.render import render_all, render_host, vllm_args


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'vllmfleet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

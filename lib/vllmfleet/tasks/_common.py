"""What every task module shares: where settings come from and how errors reach the user."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invoke.context import Context
from invoke.exceptions import Exit

from vllmfleet.errors import FleetError, InventoryError
from vllmfleet.inventory import Inventory, load

#: Defaults of the ``vllmfleet`` config namespace (invoke.yaml / INVOKE_VLLMFLEET_*).
DEFAULTS: dict[str, Any] = {
    "inventory": "configs/fleet.yaml",
    "build_dir": "build",
    "render_dir": None,
}


def setting(c: Context, key: str, given: Any = None) -> Any:
    """``given`` (a task argument) if set, else ``c.config.vllmfleet[key]``, else the default."""
    if given is not None:
        return given
    section = c.config.get("vllmfleet", {})
    value = section.get(key) if hasattr(section, "get") else None
    return DEFAULTS.get(key) if value is None else value


def inventory_path(c: Context, given: str | None = None) -> Path:
    return Path(setting(c, "inventory", given)).expanduser()


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library errors into ``invoke.Exit`` (no traceback), exit code 1."""
    try:
        yield
    except InventoryError as exc:
        from vllmfleet.inventory.problems import format_problems

        raise Exit(format_problems(exc.problems, color=sys.stderr.isatty()), code=1) from None
    except FleetError as exc:
        raise Exit(f"error: {exc}", code=1) from None


def load_inventory(c: Context, given: str | None = None) -> Inventory:
    """Load the configured inventory; an invalid one exits with the validation report."""
    with user_errors():
        return load(inventory_path(c, given))


def pick_hosts(inventory: Inventory, host: str | None, *, vllm_only: bool = False) -> list[str]:
    """The hosts a ``--host`` argument names (comma-separated), checked against the inventory."""
    pool = inventory.vllm_hosts if vllm_only else inventory.hosts
    if not host:
        return list(pool)
    names = [h.strip() for h in host.split(",") if h.strip()]
    for name in names:
        if name not in pool:
            kind = "vLLM hosts" if vllm_only else "hosts"
            raise Exit(f"error: --host {name!r} is not one of the inventory's {kind}: "
                       + ", ".join(pool), code=2)
    return names

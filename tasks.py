"""vllmfleet tasks: `inv --list` shows them. Only assembly here; logic lives in lib/vllmfleet."""

from __future__ import annotations

from pathlib import Path

from invoke.collection import Collection

from vllmfleet.tasks import checks, fleet
from vllmfleet.tasks._common import DEFAULTS

ns = Collection()
ns.add_task(checks.validate)
ns.add_task(checks.plan)
ns.add_task(checks.render)
ns.add_collection(Collection.from_module(fleet))
ns.configure({"vllmfleet": {
    **DEFAULTS,
    # relative to this file, so `inv` works from any folder of the checkout
    "inventory": str(Path(__file__).parent / "configs" / "fleet.yaml"),
    "build_dir": str(Path(__file__).parent / "build"),
}})

"""GPU and model facts of an inventory host, for ``--emulator-inventory/--emulator-host``.

The inventory says what card the host has and the model's architecture; the command line
(as rendered for that host) says how vLLM runs. The weights follow the command line's
``--quantization`` (``awq_marlin`` loads the ``awq`` checkpoint), as they would on the host.
"""

from __future__ import annotations

from vllmfleet.capacity import input_for
from vllmfleet.emulator.config import ARCHITECTURE_FIELDS, Architecture, GPUFacts
from vllmfleet.errors import FleetError
from vllmfleet.inventory import load
from vllmfleet.rules import weight_format


def from_inventory(path: str, host_name: str, *, quantization: str | None,
                   capability: str | None = None,
                   reserved_gib: float | None = None) -> tuple[GPUFacts, Architecture]:
    """The facts of ``host_name`` in the inventory at ``path``; ValueError if unusable."""
    try:
        inventory = load(path)
        inp = input_for(inventory, host_name)
    except FleetError as exc:
        raise ValueError(f"--emulator-inventory {path} --emulator-host {host_name}: {exc}") \
            from None
    host = inventory.hosts[host_name]
    assert host.gpu is not None
    model = inventory.model_of(host)
    fmt = weight_format(quantization)
    weights = model.weights_gib.get(fmt)
    if weights is None:
        raise ValueError(f"--quantization {quantization}: models.{model.name}.weights_gib in "
                         f"{path} has no {fmt!r} entry; add one or launch with one of "
                         + ", ".join(sorted(model.weights_gib)))
    gpu = GPUFacts(vram_gib=inp.vram_gib,
                   reserved_gib=inp.reserved_gib if reserved_gib is None else reserved_gib,
                   compute_capability=capability or host.gpu.compute_capability)
    # the capacity input carries every architecture fact under the same name
    arch = Architecture(**{name: getattr(inp, name) for name in ARCHITECTURE_FIELDS
                           if name != "weights_gib"}, weights_gib=weights)
    return gpu, arch

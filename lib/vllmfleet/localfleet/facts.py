"""The emulator's view of an inventory host: its GPU and its model, as ``--emulator-…`` flags.

The inventory says what card the host has and the model's architecture; the launch arguments
(as rendered for that host) say how vLLM runs. The weights follow the launch arguments'
``--quantization`` (``awq_marlin`` loads the ``awq`` checkpoint), as they would on the host.
The emulator itself never reads the inventory: it gets these flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from vllmfleet.emulator.config import ARCHITECTURE_FIELDS
from vllmfleet.errors import LocalFleetError
from vllmfleet.inventory import Inventory
from vllmfleet.inventory.plan import input_for
from vllmfleet.render import flag_value
from vllmfleet.vllm.kernels import weight_format
from vllmfleet.vllm.versions import format_version, version_of_image


def emulator_facts(inventory: Inventory, host_name: str, *,
                   launch: Sequence[str] = ()) -> list[str]:
    """The ``--emulator-gpu-…`` and architecture flags of ``host_name`` (none for a CPU host).

    ``launch``: the vLLM arguments the emulator starts with; their ``--quantization`` picks
    the weights (default: the inventory's).
    """
    cpu_host = inventory.hosts.get(host_name)
    if cpu_host is not None and cpu_host.cpu is not None:
        # A CPU host has no GPU for the emulator's capacity model: without GPU facts it skips
        # the check and takes its KV cache as max_model_len x max_num_seqs (it says so). It
        # still emulates the version the image pins.
        version = version_of_image(cpu_host.vllm.image if cpu_host.vllm else None)
        return [] if version is None else ["--emulator-vllm-version", format_version(version)]
    inp = input_for(inventory, host_name)
    host = inventory.hosts[host_name]
    assert host.gpu is not None and host.vllm is not None
    model = inventory.model_of(host)
    quantization = flag_value(launch, "--quantization") if launch else host.vllm.quantization
    fmt = weight_format(quantization)
    weights = model.weights_gib.get(fmt)
    if weights is None:
        raise LocalFleetError(
            f"{host_name}: --quantization {quantization}: models.{model.name}.weights_gib in "
            f"{inventory.path} has no {fmt!r} entry; add one or launch with one of "
            + ", ".join(sorted(model.weights_gib)))
    flags = ["--emulator-gpu-vram-gib", repr(inp.vram_gib),
             "--emulator-gpu-reserved-gib", repr(inp.reserved_gib),
             "--emulator-compute-capability", host.gpu.compute_capability]
    if inp.vllm_version is not None:  # the image's version: its rules and start-up lines
        flags += ["--emulator-vllm-version", format_version(inp.vllm_version)]
    values = {**asdict(inp.architecture), "weights_gib": weights}
    for name in ARCHITECTURE_FIELDS:
        flags += [f"--emulator-{name.replace('_', '-')}", repr(values[name])]
    return flags


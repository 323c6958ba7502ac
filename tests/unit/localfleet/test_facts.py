"""The emulator's facts of an inventory host: ``--emulator-…`` flags the emulator parses.

The emulator never reads the inventory; the local fleet (and these tests) derive the GPU and
model flags with :func:`vllmfleet.localfleet.facts.emulator_facts`.
"""

from __future__ import annotations

import pytest

from vllmfleet.emulator import parse
from vllmfleet.errors import CapacityError, LocalFleetError
from vllmfleet.inventory import Inventory
from vllmfleet.localfleet.facts import emulator_facts
from vllmfleet.render import vllm_args

BASE = ["--model", "org/m", "--max-model-len", "4096"]


@pytest.mark.parametrize("host", ["wintermute", "armitage"])
def test_the_renderers_flags_for_the_shipped_inventory_parse(reference: Inventory,
                                                             host: str) -> None:
    h = reference.hosts[host]
    assert h.vllm is not None
    args = vllm_args(h, bind="127.0.0.1", port=0)
    cfg = parse([*args, *emulator_facts(reference, host, launch=args)])
    assert cfg.served_model_names == (h.vllm.served_model_name,)
    assert cfg.model == h.vllm.weights
    assert (cfg.max_model_len, cfg.max_num_seqs) == (h.vllm.max_model_len, h.vllm.max_num_seqs)
    assert (cfg.kv_cache_dtype, cfg.quantization) == (h.vllm.kv_cache_dtype,
                                                      h.vllm.quantization)
    assert cfg.gpu is not None and cfg.gpu.vram_gib == h.gpu.vram_gib  # type: ignore[union-attr]
    # the emulator emulates the version the image pins
    assert f":v{cfg.version}" in h.vllm.image


def test_max_model_len_defaults_to_the_models_maximum(reference: Inventory) -> None:
    launch = ["--model", "org/m", "--quantization", "awq_marlin"]
    cfg = parse([*launch, *emulator_facts(reference, "armitage", launch=launch)])
    assert cfg.max_model_len == 32768


def test_facts_need_a_known_vllm_host(reference: Inventory) -> None:
    with pytest.raises(CapacityError) as gpu_less:
        emulator_facts(reference, "motoko", launch=BASE)
    assert "motoko" in str(gpu_less.value) and "wintermute" in str(gpu_less.value)
    with pytest.raises(CapacityError, match=r"'wintermut' is not in hosts.*wintermute"):
        emulator_facts(reference, "wintermut", launch=BASE)


def test_weights_follow_the_launch_quantization(reference: Inventory) -> None:

    def weights(*launch: str) -> float | None:
        argv = [*launch, *emulator_facts(reference, "wintermute", launch=launch)]
        return parse(argv).weights_gib

    assert weights(*BASE, "--quantization", "awq_marlin") == 5.37
    assert weights(*BASE) == 14.99
    with pytest.raises(LocalFleetError,
                       match=r"wintermute: --quantization gptq: .*no 'gptq' entry"):
        emulator_facts(reference, "wintermute", launch=[*BASE, "--quantization", "gptq"])

"""The capacity plan of an inventory: each vLLM host's capacity input, read from the inventory."""

from __future__ import annotations

import pytest

from vllmfleet.errors import CapacityError
from vllmfleet.inventory import Inventory
from vllmfleet.inventory.plan import input_for, plan


def test_input_for_reads_the_inventory(reference: Inventory) -> None:
    inp = input_for(reference, "wintermute")
    assert (inp.vram_gib, inp.reserved_gib, inp.gpu_memory_utilization) == (12, 0.5, 0.92)
    assert inp.weights_gib == 5.37          # awq_marlin loads the awq checkpoint
    assert (inp.architecture.layers, inp.architecture.kv_heads, inp.kv_cache_dtype,
            inp.max_model_len) == (
        32, 8, "fp8", 16384)
    assert input_for(reference, "armitage", max_model_len=4096).max_model_len == 4096


def test_input_for_explains_bad_names(reference: Inventory) -> None:
    with pytest.raises(CapacityError, match=r"'wintermut' is not in hosts.*wintermute"):
        input_for(reference, "wintermut")
    with pytest.raises(CapacityError, match="'motoko' does not run vLLM"):
        input_for(reference, "motoko")
    with pytest.raises(CapacityError, match="did you mean 'max_model_len'"):
        input_for(reference, "wintermute", max_modellen=8192)


def test_plan_covers_the_vllm_hosts(reference: Inventory) -> None:
    assert [h for h, _ in plan(reference)] == ["wintermute", "armitage"]
    assert [h for h, _ in plan(reference, ["armitage"])] == ["armitage"]

"""Why a start failed: vLLM's log lines → the cause and the fix (planner figures included)."""

from __future__ import annotations

from vllmfleet.deploy.diagnose import diagnose
from vllmfleet.inventory import Inventory


def test_kv_oom_leads_to_the_planners_largest_max_model_len(reference_v011: Inventory) -> None:
    log = ("ValueError: To serve at least one request with the models's max seq len (100000), "
           "(6.10 GiB KV cache is needed, which is larger than the available KV cache memory "
           "(5.12 GiB). Based on the available memory, the estimated maximum model length is "
           "83952. Try increasing `gpu_memory_utilization` …")
    text = diagnose(log, inventory=reference_v011, host="wintermute")
    assert "one request of max_model_len 100000 does not fit" in text
    assert "largest max_model_len that fits = 83952" in text
    assert "set hosts.wintermute.vllm.max_model_len to at most 83952" in text


def test_free_memory_and_other_causes(reference: Inventory) -> None:
    log = ("Free memory on device (11.25/12.0 GiB) on startup is less than desired GPU memory "
           "utilization (0.99, 11.88 GiB).")
    text = diagnose(log, inventory=reference, host="wintermute")
    assert "largest gpu_memory_utilization that starts is 0.9" in text
    assert "unrecognized arguments" not in diagnose("error: unrecognized arguments: --x",
                                                    inventory=reference, host="wintermute")
    assert "extra_args" in diagnose("error: unrecognized arguments: --x", inventory=reference,
                                    host="wintermute")
    assert diagnose("", inventory=reference, host="motoko").startswith("no known cause")


def test_free_memory_with_the_device_named(reference: Inventory) -> None:
    # 0.10+ names the device (vllm/v1/worker/utils.py in 0.32)
    log = ("(EngineCore pid=253) ValueError: Free memory on device cuda:0 (11.25/12.0 GiB) on "
           "startup is less than desired GPU memory utilization (0.99, 11.88 GiB).")
    text = diagnose(log, inventory=reference, host="wintermute")
    assert "vLLM found only 11.25 of 12.0 GiB free" in text

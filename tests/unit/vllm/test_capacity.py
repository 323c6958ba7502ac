"""The capacity model: KV arithmetic, vLLM's start-up verdicts and texts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.unit.vllm.cards import ARMITAGE, HEADLESS, LLAMA, WINTERMUTE
from vllmfleet.errors import CapacityError
from vllmfleet.vllm.capacity import CapacityInput, GiB, estimate

# --- KV arithmetic ----------------------------------------------------------------------

@pytest.mark.parametrize(("inp", "dtype", "expected"), [
    (WINTERMUTE, "fp8", 2 * 32 * 8 * 128 * 1),       # 65,536 B = 64 KiB per token
    (WINTERMUTE, "auto", 2 * 32 * 8 * 128 * 2),      # fp16 KV doubles it
    (ARMITAGE, "fp8_e5m2", 2 * 28 * 4 * 128 * 1),    # 28,672 B
    (ARMITAGE, "auto", 2 * 28 * 4 * 128 * 2),        # 57,344 B
])
def test_kv_bytes_per_token_by_hand(inp: CapacityInput, dtype: str, expected: int) -> None:
    assert estimate(replace(inp, kv_cache_dtype=dtype)).kv_bytes_per_token == expected


def test_kv_capacity_is_whole_16_token_blocks_of_the_budget() -> None:
    for inp in (WINTERMUTE, ARMITAGE, HEADLESS):
        r = estimate(inp)
        assert r.kv_capacity_tokens % 16 == 0
        assert r.kv_capacity_tokens * r.kv_bytes_per_token <= r.kv_budget_bytes
        assert (r.kv_capacity_tokens + 16) * r.kv_bytes_per_token > r.kv_budget_bytes


def test_budget_is_requested_minus_weights_and_overheads() -> None:
    r = estimate(WINTERMUTE)
    assert r.requested_gib == pytest.approx(12 * 0.92)
    overheads = r.weights_gib + r.non_torch_gib + r.activation_gib + r.cuda_graph_gib
    assert r.kv_budget_gib == pytest.approx(r.requested_gib - overheads)
    # the desktop's memory does not shrink the budget (vLLM >= 0.6.4), it only gates start-up
    assert estimate(replace(WINTERMUTE, reserved_gib=0)).kv_budget_gib == r.kv_budget_gib


def test_tensor_parallelism_splits_kv_heads_and_weights() -> None:
    one = estimate(WINTERMUTE)
    two = estimate(replace(WINTERMUTE, tensor_parallel_size=2))
    assert two.kv_bytes_per_token == one.kv_bytes_per_token // 2   # 4 of 8 KV heads per GPU
    assert two.weights_gib == pytest.approx(5.37 / 2)
    # more ranks than KV heads: vLLM replicates, one head per GPU
    many = estimate(replace(WINTERMUTE, tensor_parallel_size=16))
    assert many.kv_bytes_per_token == 2 * 32 * 1 * 128 * 1


def test_enforce_eager_removes_cuda_graph_memory() -> None:
    graphs = estimate(WINTERMUTE)
    eager = estimate(replace(WINTERMUTE, enforce_eager=True))
    assert graphs.cuda_graph_gib > 0 and eager.cuda_graph_gib == 0
    assert eager.kv_budget_gib == pytest.approx(graphs.kv_budget_gib + graphs.cuda_graph_gib)
    assert eager.kv_capacity_tokens >= graphs.kv_capacity_tokens


def test_cuda_graph_sizes_follow_max_num_seqs() -> None:
    assert WINTERMUTE.cuda_graph_sizes == [1, 2, 4]            # 2 x max_num_seqs 2
    assert ARMITAGE.cuda_graph_sizes == [1, 2]
    default = replace(WINTERMUTE, max_num_seqs=256).cuda_graph_sizes
    assert len(default) == 51 and default[-1] == 512
    many = estimate(replace(WINTERMUTE, max_num_seqs=256)).cuda_graph_gib
    assert 0.3 <= many <= 1.0                                  # what 7-8B logs show


def test_batched_tokens_default_and_activation() -> None:
    assert WINTERMUTE.batched_tokens == 2048
    assert replace(WINTERMUTE, vram_gib=80).batched_tokens == 8192
    small = estimate(WINTERMUTE).activation_gib
    big = estimate(replace(WINTERMUTE, max_num_batched_tokens=8192)).activation_gib
    assert small < big


# --- fits / does not fit, and vLLM's own words -------------------------------------------

def test_the_largest_length_fits_and_16_more_does_not() -> None:
    r = estimate(HEADLESS)
    assert not r.fits and 0 < r.largest_max_model_len < HEADLESS.max_model_len
    longest = r.largest_max_model_len
    at_edge = estimate(replace(HEADLESS, max_model_len=longest))
    assert at_edge.fits and at_edge.vllm_error() is None
    assert at_edge.max_concurrency == pytest.approx(1.0)
    for too_long in (longest + 1, longest + 16):
        over = estimate(replace(HEADLESS, max_model_len=too_long))
        assert not over.fits
        assert over.largest_max_model_len == longest
        assert f"the estimated maximum model length is {longest}. " in (over.vllm_error() or "")


def test_not_enough_kv_error_is_vllms_text() -> None:
    r = estimate(HEADLESS)
    needed = 16384 * 57344 / GiB                                  # 0.875 GiB
    assert r.vllm_error() == (
        "To serve at least one request with the models's max seq len (16384), "
        f"({needed:.2f} GiB KV cache is needed, which is larger than the available KV cache "
        f"memory ({r.kv_budget_bytes / GiB:.2f} GiB). Based on the available memory, the "
        f"estimated maximum model length is {r.largest_max_model_len}. Try increasing "
        "`gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.")
    assert "(0.88 GiB KV cache is needed" in (r.vllm_error() or "")
    assert r.vllm_log_lines() == []


def test_less_than_one_block_gives_no_estimate() -> None:
    spare = estimate(WINTERMUTE).kv_budget_gib
    tiny = estimate(replace(WINTERMUTE, cuda_context_gib=0,
                            weights_gib=WINTERMUTE.weights_gib + spare - 0.0001))
    assert 0 < tiny.kv_budget_bytes < 16 * tiny.kv_bytes_per_token
    assert tiny.kv_capacity_tokens == 0 and tiny.largest_max_model_len == 0
    error = tiny.vllm_error() or ""
    assert error.startswith("To serve at least one request")
    assert "estimated maximum" not in error
    assert "GiB).  Try increasing" in error                      # vLLM's double space


def test_no_memory_for_the_cache() -> None:
    r = estimate(replace(WINTERMUTE, cuda_context_gib=0, weights_gib=11.0))
    assert r.kv_budget_gib < 0 and not r.fits
    assert r.kv_capacity_tokens == 0 and r.largest_max_model_len == 0
    assert r.vllm_error() == ("No available memory for the cache blocks. Try increasing "
                              "`gpu_memory_utilization` when initializing the engine.")


def test_exceeding_free_memory_at_start() -> None:
    r = estimate(WINTERMUTE)        # 12 - 0.8 desktop - 0.25 context = 10.95 < 11.04
    assert r.exceeds_free and not r.fits
    assert r.free_at_start_gib == pytest.approx(10.95)
    assert r.vllm_error() == (
        "Free memory on device (10.95/12.0 GiB) on startup is less than desired GPU memory "
        "utilization (0.92, 11.04 GiB). Decrease GPU memory utilization or reduce GPU memory "
        "used by other processes.")
    # 0.91 would pass the check, but leaves 0.03 GiB for the CUDA graphs (0.04 GiB)
    assert r.suggested_utilization == 0.90
    lowered = estimate(replace(WINTERMUTE, gpu_memory_utilization=0.90))
    assert lowered.fits and not lowered.exceeds_free
    assert not estimate(replace(WINTERMUTE, cuda_context_gib=0.1)).exceeds_free


def test_log_lines_when_it_fits() -> None:
    r = estimate(replace(ARMITAGE, cuda_context_gib=0.1))
    assert r.fits
    assert r.max_concurrency == pytest.approx(r.kv_capacity_tokens / 8192)
    assert r.vllm_log_lines() == [
        f"GPU KV cache size: {r.kv_capacity_tokens:,} tokens",
        f"Maximum concurrency for 8,192 tokens per request: {r.max_concurrency:.2f}x"]
    # vLLM divides blocks by the blocks one request needs: 8193 tokens need 513 blocks
    odd = estimate(replace(ARMITAGE, cuda_context_gib=0.1, max_model_len=8193))
    assert odd.max_concurrency == pytest.approx(odd.kv_capacity_tokens / 16 / 513)


def test_longer_than_the_model_allows() -> None:
    r = estimate(replace(ARMITAGE, cuda_context_gib=0.1, max_model_len=40000))
    assert r.kv_capacity_tokens >= 40000 and not r.fits
    assert r.largest_max_model_len == 32768                      # clamped to the model
    assert (r.vllm_error() or "").startswith(
        "User-specified max_model_len (40000) is greater than the derived max_model_len "
        "(max_position_embeddings=32768")


@pytest.mark.parametrize(("change", "field"), [
    ({"gpu_memory_utilization": 1.2}, "gpu_memory_utilization"),
    ({"max_model_len": 0}, "max_model_len"),
    ({"reserved_gib": -1}, "reserved_gib"),
    ({"kv_cache_dtype": "fp16"}, "kv_cache_dtype"),
])
def test_bad_input_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(CapacityError, match=field):
        replace(WINTERMUTE, **change)


def test_a_bad_architecture_fact_names_the_field() -> None:
    with pytest.raises(CapacityError, match=r"capacity input layers=0 is out of range"):
        replace(WINTERMUTE, architecture=replace(LLAMA, layers=0))

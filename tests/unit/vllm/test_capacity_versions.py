"""The capacity model follows the vLLM version: graphs in or out of the budget, V0's profile
batch, the A100 default, documented margins."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.vllm.cards import LLAMA, WINTERMUTE
from vllmfleet.vllm.capacity import estimate

V011, V021, V06 = (0, 11, 0), (0, 21, 0), (0, 6, 4)
BIG_SEQS = replace(WINTERMUTE, max_num_seqs=256)   # 51 capture sizes


def test_graphs_leave_the_budget_alone_before_021() -> None:
    old, new = estimate(replace(BIG_SEQS, vllm_version=V011)), estimate(
        replace(BIG_SEQS, vllm_version=V021))
    assert not old.graphs_in_budget and new.graphs_in_budget
    assert old.cuda_graph_gib == pytest.approx(new.cuda_graph_gib)
    assert old.kv_budget_gib == pytest.approx(new.kv_budget_gib + new.cuda_graph_gib)


def test_graph_memory_is_near_constant_whatever_the_model() -> None:
    small = estimate(replace(BIG_SEQS, architecture=replace(LLAMA, layers=16))).cuda_graph_gib
    large = estimate(replace(BIG_SEQS, architecture=replace(LLAMA, layers=80))).cuda_graph_gib
    assert small == large and 0.3 <= large <= 0.65            # logs: 0.24-0.65 GiB


def test_graphs_outside_the_budget_need_headroom_at_start() -> None:
    # 0.93 of a 12 GiB card with 0.5 GiB kept by the desktop: the KV cache takes the share
    # less the (freed) activation peak, and 0.48 GiB of graphs no longer fit in what is left
    # (a small vocabulary keeps the activation peak, the room the graphs may reuse, small)
    tight = replace(BIG_SEQS, vllm_version=V011, gpu_memory_utilization=0.93, reserved_gib=0.5,
                    architecture=replace(LLAMA, vocab_size=1000))
    r = estimate(tight)
    assert not r.exceeds_free and r.graph_headroom_short and not r.fits
    assert any("captures CUDA graphs" in w for w in r.warnings)
    assert not estimate(replace(tight, enforce_eager=True)).graph_headroom_short
    # from 0.21 the graphs are inside the requested share: no separate headroom needed
    assert not estimate(replace(tight, vllm_version=V021)).graph_headroom_short


def test_v0_profiles_the_whole_max_model_len_unless_chunked() -> None:
    v0 = replace(WINTERMUTE, vllm_version=V06)
    assert replace(v0, max_model_len=20000).batched_tokens == 20000
    assert replace(v0, max_model_len=1024).batched_tokens == 2048
    assert replace(v0, max_model_len=40000).batched_tokens == 512        # chunked, 0.6.x
    assert replace(v0, max_model_len=40000, vllm_version=(0, 7, 3)).batched_tokens == 2048
    assert replace(WINTERMUTE, max_model_len=20000, vllm_version=V011).batched_tokens == 2048
    longer = estimate(replace(v0, max_model_len=20000)).activation_gib
    assert longer > estimate(replace(v0, max_model_len=8192)).activation_gib


def test_a100_keeps_the_small_batch_default() -> None:
    h100 = replace(WINTERMUTE, vram_gib=79.2, gpu_name="NVIDIA H100 80GB HBM3")
    assert h100.batched_tokens == 8192
    assert replace(h100, gpu_name="NVIDIA A100-SXM4-80GB").batched_tokens == 2048


@pytest.mark.parametrize(("change", "word"), [
    ({"multimodal": True}, "multimodal"), ({"moe": True}, "mixture-of-experts"),
    ({"max_num_seqs": 1024}, "max_num_seqs 1024")])
def test_documented_margins_warn(change: dict[str, object], word: str) -> None:
    plain, marked = estimate(WINTERMUTE), estimate(replace(WINTERMUTE, **change))  # type: ignore[arg-type]
    assert marked.margin_gib > 0 and any(word in w for w in marked.warnings)
    assert not plain.warnings and plain.margin_gib == 0


def test_the_report_explains_the_graph_headroom_as_a_choice() -> None:
    from vllmfleet.vllm.capacity_report import format_table, verdict

    tight = replace(BIG_SEQS, vllm_version=V011, gpu_memory_utilization=0.93, reserved_gib=0.5,
                    architecture=replace(LLAMA, vocab_size=1000))
    v = verdict(estimate(tight))
    assert not v.fits and "CUDA-graph capture" in v.reason
    assert "a choice" in v.suggestion and "enforce_eager" in v.suggestion
    util = float(v.suggestion.split("gpu_memory_utilization to ")[1].split(" ")[0])
    assert estimate(replace(tight, gpu_memory_utilization=util)).fits
    text = format_table([("wintermute", estimate(tight))])
    assert "warning: vLLM 0.11.0 captures CUDA graphs" in text
    assert "outside the budget" in text

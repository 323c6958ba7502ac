"""Tensor parallelism in the capacity estimate and in the inventory's GPU-count rule. Every
shipped inventory has one card and tensor_parallel_size 1, so without these a reversed rule or
an estimate that ignores TP would pass every other test."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import REFERENCE
from tests.unit.vllm.cards import WINTERMUTE
from vllmfleet.errors import InventoryError
from vllmfleet.inventory.load import parse
from vllmfleet.vllm.capacity import (
    MODEL_DTYPE_BYTES,
    NON_TORCH_GIB,
    NON_TORCH_TP_GIB,
    GiB,
    activation_gib,
    estimate,
    non_torch_gib,
)


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_the_activation_estimate_splits_the_mlp_over_the_ranks(tp: int) -> None:
    one, many = WINTERMUTE, replace(WINTERMUTE, tensor_parallel_size=tp)
    arch = one.architecture
    saved = one.batched_tokens * 3 * arch.intermediate_size * (1 - 1 / tp) * MODEL_DTYPE_BYTES
    assert activation_gib(one) - activation_gib(many) == pytest.approx(saved / GiB)


@pytest.mark.parametrize("tp", [2, 4])
def test_tp_leaves_more_kv_budget_per_gpu(tp: int) -> None:
    one, many = estimate(WINTERMUTE), estimate(replace(WINTERMUTE, tensor_parallel_size=tp))
    assert many.weights_gib == pytest.approx(one.weights_gib / tp)
    assert many.activation_gib < one.activation_gib
    assert many.kv_bytes_per_token == one.kv_bytes_per_token // tp


TEXT = REFERENCE.read_text(encoding="utf-8")


def _inventory(count: int, tp: int) -> str:
    old_gpu = "vram_gib: 12\n"
    old_tp = "tensor_parallel_size: 1"
    assert TEXT.count(old_gpu) == 1 and old_tp in TEXT
    text = TEXT.replace(old_gpu, f"vram_gib: 12\n      count: {count}\n", 1)
    return text.replace(old_tp, f"tensor_parallel_size: {tp}", 1)


@pytest.mark.parametrize(("count", "tp"), [(1, 2), (2, 4), (1, 8)])
def test_more_ranks_than_cards_is_an_error(count: int, tp: int) -> None:
    with pytest.raises(InventoryError, match=rf"tensor_parallel_size {tp} needs that many GPUs; "
                                             rf"the host has {count}"):
        parse(_inventory(count, tp))


@pytest.mark.parametrize(("count", "tp"), [(2, 1), (2, 2), (4, 2), (4, 4)])
def test_as_many_cards_as_ranks_or_more_is_valid(count: int, tp: int) -> None:
    try:
        parse(_inventory(count, tp))
    except InventoryError as exc:
        assert "tensor_parallel_size" not in str(exc), str(exc)


# Golden figures of the activation estimate for the reference cards (the formula and its
# constants are documented in vllmfleet.vllm.capacity). A change to them must be deliberate:
# update these with the new provenance. (2026-12-01: the activation peak is the larger of the
# forward pass and the sampler, not their sum — fitted on the calibration corpus, issue 11.)
@pytest.mark.parametrize(("card", "gib"), [
    (WINTERMUTE, 0.2953125),
    (replace(WINTERMUTE, tensor_parallel_size=2), 0.21328125),
    (replace(WINTERMUTE, max_num_batched_tokens=8192), 0.88125),
])
def test_the_activation_estimate_is_pinned(card: object, gib: float) -> None:
    assert activation_gib(card) == pytest.approx(gib, rel=1e-12)  # type: ignore[arg-type]


def test_tp_switches_the_non_torch_overhead() -> None:
    assert non_torch_gib(WINTERMUTE) == NON_TORCH_GIB
    for tp in (2, 4):
        assert non_torch_gib(replace(WINTERMUTE, tensor_parallel_size=tp)) == NON_TORCH_TP_GIB
    assert NON_TORCH_TP_GIB > NON_TORCH_GIB  # NCCL buffers: TP costs memory outside torch

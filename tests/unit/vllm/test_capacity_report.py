"""Capacity reports for people (``inv plan``) and tools (``inv plan --json``)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

from tests.unit.vllm.cards import ARMITAGE, HEADLESS, WINTERMUTE
from vllmfleet.inventory import Inventory
from vllmfleet.inventory.plan import plan
from vllmfleet.vllm.capacity import estimate
from vllmfleet.vllm.capacity_report import format_table, to_json


def test_format_table_for_the_shipped_inventory(reference: Inventory) -> None:
    rows = plan(reference)
    text = format_table(rows)
    blocks = text.split("\n\n")
    assert len(blocks) == 2
    for (host, r), block in zip(rows, blocks, strict=True):
        label = "FITS" if r.fits else "DOES NOT FIT"
        assert block.splitlines()[0] == f"{host}: {label}"
        assert f"{r.kv_capacity_tokens:,} tokens" in block
        assert f"{r.kv_bytes_per_token:,} B" in block
        assert f"{r.requested_gib:.2f} GiB" in block
        if r.exceeds_free:
            assert f"fix: set gpu_memory_utilization to {r.suggested_utilization} or less" in block
    assert "12.00 GiB" in blocks[0] and "16,384 tokens" in blocks[0]
    assert "65,536 B" in blocks[0] and "28,672 B" in blocks[1]


def test_format_table_names_the_fix() -> None:
    kv = format_table([("box", estimate(HEADLESS))])
    largest = estimate(HEADLESS).largest_max_model_len
    assert "box: DOES NOT FIT" in kv
    assert "why: one request of 16,384 tokens needs 0.88 GiB of KV cache" in kv
    assert f"fix: set max_model_len to at most {largest:,}, or use kv_cache_dtype fp8" in kv
    start = format_table([("wintermute", estimate(WINTERMUTE))])
    assert "why: vLLM refuses to start: it asks for 11.04 GiB (12.00 GiB x 0.92) but only " \
           "10.95 GiB is free at start" in start
    assert "fix: set gpu_memory_utilization to 0.9 or less (at 0.9:" in start
    full = format_table([("busy", estimate(replace(WINTERMUTE, reserved_gib=11.9)))])
    assert "fix: free GPU memory on the host; nothing fits in what is free now" in full
    fits = format_table([("armitage", estimate(replace(ARMITAGE, cuda_context_gib=0)))])
    assert "armitage: FITS" in fits and "room: max_model_len could go up to 32,768" in fits


def test_to_json_for_the_shipped_inventory(reference: Inventory) -> None:
    rows = plan(reference)
    data = json.loads(to_json(rows))
    hosts = {h["host"]: h for h in data["hosts"]}
    assert list(hosts) == ["wintermute", "armitage"]
    for host, r in rows:
        h = hosts[host]
        assert h["fits"] is r.fits and h["verdict"] == ("FITS" if r.fits else "DOES NOT FIT")
        assert h["kv_capacity_tokens"] == r.kv_capacity_tokens
        assert h["vllm_error"] == r.vllm_error() and h["vllm_log_lines"] == r.vllm_log_lines()
        assert math.isclose(h["requested_gib"], r.requested_gib, abs_tol=1e-4)
    assert hosts["wintermute"]["kv_bytes_per_token"] == 65536
    assert hosts["wintermute"]["input"]["max_model_len"] == 16384
    assert hosts["wintermute"]["cuda_graph_sizes"] == [1, 2, 4]

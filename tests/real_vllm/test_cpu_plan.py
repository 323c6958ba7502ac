"""`inv plan` for CPU hosts, checked against what the real vLLM logs at start.

vLLM 0.32.0 logs "CPU KV cache size: N tokens, Maximum concurrency for L tokens per request:
C x" (``vllm/v1/core/kv_cache_utils.py``); with ``--kv-cache-memory-bytes`` fixed, the plan
predicts both figures.
"""

from __future__ import annotations

import re
from pathlib import Path

from pytest_vllmfleet.fleet import Fleet
from vllmfleet.inventory.cpu_plan import cpu_plan
from vllmfleet.vllm.startup_log import parse

KV_LINE = re.compile(r"CPU KV cache size: ([\d,]+) tokens, Maximum concurrency for "
                     r"([\d,]+) tokens per request: ([\d.]+)x")


def test_the_kv_cache_vllm_reports_is_the_one_the_plan_predicts(
        real_vllm_fleet: Fleet) -> None:
    for host in real_vllm_fleet.hosts:
        log = Path(real_vllm_fleet.logs) / f"{host}.log"
        found = KV_LINE.findall(log.read_text(encoding="utf-8", errors="replace"))
        assert found, f"{log} has no KV cache line"
        tokens, length, concurrency = found[-1]
        plan = cpu_plan(real_vllm_fleet.inventory, host)
        assert plan.kv_tokens == int(tokens.replace(",", "")), host
        assert plan.max_model_len == int(length.replace(",", "")), host
        assert f"{plan.kv_tokens / plan.max_model_len:.2f}" == concurrency, host


def test_the_start_up_parser_reads_the_real_lines(real_vllm_fleet: Fleet) -> None:
    """vllmfleet.vllm.startup_log (what deploy, rollback and fit record) on real vLLM output."""
    for host in real_vllm_fleet.hosts:
        text = (Path(real_vllm_fleet.logs) / f"{host}.log").read_text(encoding="utf-8",
                                                                         errors="replace")
        (tokens, length, concurrency) = KV_LINE.findall(text)[-1]
        figures = parse(text)
        assert figures.kv_cache_tokens == int(tokens.replace(",", "")), host
        assert figures.concurrency_len == int(length.replace(",", "")), host
        assert figures.max_concurrency == float(concurrency), host
        # no weights figure on CPU: cpu_model_runner.load_model (0.32.0) does not log
        # "Model loading took"; the GPU runner does (gpu_model_runner.py), tested on its lines

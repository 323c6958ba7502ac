"""health.kv_check: the running KV cache (vllm:cache_config_info on /metrics) against what
the inventory needs; the emulator exports the same family."""

from __future__ import annotations

import httpx
import pytest

from vllmfleet import health
from vllmfleet.emulator.metrics import Metrics

# as vLLM exports it: every CacheConfig field a label (a shortened real line)
REAL = ('# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n'
        '# TYPE vllm:cache_config_info gauge\n'
        'vllm:cache_config_info{block_size="16",cache_dtype="fp8",enable_prefix_caching='
        '"True",gpu_memory_utilization="0.92",num_cpu_blocks="None",num_gpu_blocks="3072"'
        ',swap_space="4"} 1.0\n')


def metrics_client(text: str, status: int = 200) -> httpx.Client:
    return httpx.Client(base_url="http://h", transport=httpx.MockTransport(
        lambda request: httpx.Response(status, text=text)))


def test_running_tokens_from_real_and_emulated_metrics() -> None:
    assert health.running_kv_tokens(REAL) == 3072 * 16
    emulated = Metrics(model_name="m", cache_config={"block_size": "16", "num_gpu_blocks": "8"})
    assert health.running_kv_tokens(emulated.render(running=0, waiting=0, kv_usage=0)) == 128
    assert health.running_kv_tokens("vllm:num_requests_running 0\n") is None
    assert health.running_kv_tokens('vllm:cache_config_info{num_gpu_blocks="None"} 1\n') is None


@pytest.mark.parametrize(("mml", "concurrency", "ok", "says"), [
    (16384, 2, True, "3.00 requests of 16,384"),
    (16384, 4, True, "WARNING: 49,152 tokens hold 3.00 requests"),
    (65536, 1, False, "less than one request"),
])
def test_kv_check(mml: int, concurrency: int, ok: bool, says: str) -> None:
    check = health.kv_check("w", "http://h", max_model_len=mml, concurrency=concurrency,
                            client=metrics_client(REAL))
    assert check.ok is ok and says in check.detail


def test_no_metrics_is_not_applicable() -> None:
    check = health.kv_check("w", "http://h", max_model_len=1, concurrency=1,
                            client=metrics_client("", status=404))
    assert check.ok is None and "n/a" in check.detail

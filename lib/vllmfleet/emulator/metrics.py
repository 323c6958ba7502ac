"""The emulator's Prometheus metrics, under vLLM's own names, in the text format.

Written by hand (no prometheus_client dependency) in the shape prometheus_client gives
vLLM: ``# HELP``/``# TYPE`` per family, counters named ``…_total``, histograms with
``_bucket{le=…}``, ``_sum`` and ``_count``, every sample labelled ``model_name``.
Bucket bounds are vLLM's (``vllm/v1/metrics/loggers.py``).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
               50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Histogram:
    """A cumulative histogram with fixed bucket bounds."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.total += value
        self.n += 1


@dataclass
class Metrics:
    """Counters and histograms the engine updates; gauges are read from it at scrape time."""

    model_name: str
    prompt_tokens: int = 0
    generation_tokens: int = 0
    finished: Counter[str] = field(default_factory=Counter)
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_BUCKETS))
    # vllm:cache_config_info's labels (vLLM: every CacheConfig field as a string; the
    # emulator gives block_size and num_gpu_blocks, what health reads)
    cache_config: dict[str, str] = field(default_factory=dict)

    def render(self, *, running: int, waiting: int, kv_usage: float) -> str:
        """The /metrics page for the current state."""
        label = f'model_name="{_escape(self.model_name)}"'
        out: list[str] = []
        if self.cache_config:
            info = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self.cache_config.items()))
            _family(out, "vllm:cache_config_info", "gauge",
                    "Information of the LLMEngine CacheConfig", [(info, 1)])
        _family(out, "vllm:num_requests_running", "gauge",
                "Number of requests in model execution batches.", [(label, running)])
        _family(out, "vllm:num_requests_waiting", "gauge",
                "Number of requests waiting to be processed.", [(label, waiting)])
        _family(out, "vllm:kv_cache_usage_perc", "gauge",
                "KV-cache usage. 1 means 100 percent usage.", [(label, kv_usage)])
        _family(out, "vllm:prompt_tokens_total", "counter",
                "Number of prefill tokens processed.", [(label, self.prompt_tokens)])
        _family(out, "vllm:generation_tokens_total", "counter",
                "Number of generation tokens processed.", [(label, self.generation_tokens)])
        reasons = sorted(set(self.finished) | {"stop", "length", "abort"})
        _family(out, "vllm:request_success_total", "counter",
                "Count of successfully processed requests.",
                [(f'{label},finished_reason="{r}"', self.finished[r]) for r in reasons])
        _histogram(out, "vllm:time_to_first_token_seconds",
                   "Histogram of time to first token in seconds.", label, self.ttft)
        _histogram(out, "vllm:e2e_request_latency_seconds",
                   "Histogram of e2e request latency in seconds.", label, self.e2e)
        return "".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return repr(float(value))


def _family(out: list[str], name: str, kind: str, help_: str,
            samples: list[tuple[str, float]]) -> None:
    out.append(f"# HELP {name} {help_}\n# TYPE {name} {kind}\n")
    out.extend(f"{name}{{{labels}}} {_num(value)}\n" for labels, value in samples)


def _histogram(out: list[str], name: str, help_: str, label: str, hist: Histogram) -> None:
    out.append(f"# HELP {name} {help_}\n# TYPE {name} histogram\n")
    cumulative = 0
    for bound, n in zip(hist.bounds, hist.counts, strict=True):
        cumulative += n
        out.append(f'{name}_bucket{{{label},le="{bound}"}} {_num(cumulative)}\n')
    out.append(f'{name}_bucket{{{label},le="+Inf"}} {_num(hist.n)}\n')
    out.append(f"{name}_count{{{label}}} {_num(hist.n)}\n")
    out.append(f"{name}_sum{{{label}}} {_num(hist.total)}\n")

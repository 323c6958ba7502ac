"""Concurrent request runner and the statistics the acceptance suites report.

:func:`run_requests` sends ``count`` requests with at most ``concurrency`` in flight and,
while they run, samples the backend's ``/metrics`` to record the peak number of running and
waiting requests (the evidence that queueing happened at vLLM rather than at the client).
:class:`Stats` holds P50/P90/P99 with the sample count. A percentile ``q`` is only reported
when there are at least ``1 / (1 - q)`` samples (P50: 2, P90: 10, P99: 100); below that it
is ``None``, because a "P90" of three samples is the maximum under another name.

:func:`outcome` names a result the way a person triages a burst (``200``, ``429 with
Retry-After``, ``5xx`` …) and :func:`burst_problems` applies acceptance criterion 2:
at most ``max_errors`` requests not completed, no 5xx, every 429 carrying Retry-After.

Besides end-to-end latency and TTFT, :class:`ResultStats` gives inter-token latency (ITL:
every gap between streamed content events, pooled) and time per output token (TPOT, per
request: (latency - TTFT) / (tokens - 1)), as ``vllm bench serve`` defines them
(vllm/benchmarks/serve.py, vLLM 0.32.0), and the client's own figures: its work per request
(``Result.client_s``) and the event loop's lag, sampled while the requests run. The lag is
how late the client may notice a token that has arrived: when it is not small next to TTFT
and ITL, the client, not the fleet, bounds those figures (:func:`client_bound`).

The runner takes any ``send(i) -> Awaitable[Result]``; the fixtures pass a
:class:`~vllmfleet.client.FleetClient` (streams on one pooled aiohttp session).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the client (httpx) is not needed to summarise results
    from vllmfleet.client import Result


PERCENTILES: tuple[float, ...] = (0.50, 0.90, 0.99)
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"

Send = Callable[[int], Awaitable["Result"]]
ReadMetrics = Callable[[], Awaitable[dict[str, float]]]


def min_samples(q: float) -> int:
    """Samples needed before the ``q`` percentile means more than the maximum."""
    if not 0 < q < 1:
        raise ValueError(f"a percentile must be between 0 and 1 (exclusive), got {q}")
    return math.ceil(round(1 / (1 - q), 9))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, got {q}")
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, kw_only=True)
class Stats:
    """Summary of one series (seconds); percentiles the sample count cannot support are None."""

    samples: int
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    mean: float | None = None
    min: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            return cls(samples=0)
        n = len(values)

        def pct(q: float) -> float | None:
            return percentile(values, q) if n >= min_samples(q) else None

        return cls(samples=n, p50=pct(0.50), p90=pct(0.90), p99=pct(0.99),
                   mean=sum(values) / n, min=min(values), max=max(values))

    def as_dict(self) -> dict[str, float | int | None]:
        return {"samples": self.samples, "p50": self.p50, "p90": self.p90, "p99": self.p99,
                "mean": self.mean, "min": self.min, "max": self.max}


def outcome(result: Result) -> str:
    """One word (or three) for how a request ended, as a burst report lists it."""
    if result.status == 429:
        return "429 with Retry-After" if result.retry_after is not None else \
            "429 without Retry-After"
    if result.ok:
        return "200"
    return result.status_class


class ResultStats:
    """Statistics over ``self.results``, shared by a load run and a report group."""

    results: list[Result]

    @property
    def latency(self) -> Stats:
        """Latency of the successful requests (failures are counted, not timed)."""
        return Stats.of([r.latency_s for r in self.results if r.ok])

    @property
    def ttft(self) -> Stats:
        return Stats.of([r.ttft_s for r in self.results if r.ok and r.ttft_s is not None])

    @property
    def itl(self) -> Stats:
        """Inter-token latency: every gap between content events of successful streams."""
        return Stats.of([gap for r in self.results if r.ok for gap in r.inter_token_s])

    @property
    def tpot(self) -> Stats:
        return Stats.of([t for r in self.results if (t := r.tpot_s) is not None])

    @property
    def client_work(self) -> Stats:
        """The client's own work per request (building it, parsing the stream)."""
        return Stats.of([r.client_s for r in self.results if r.client_s is not None])

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(outcome(r) for r in self.results)

    @property
    def errors(self) -> int:
        return sum(not r.ok for r in self.results)


@dataclass(kw_only=True)
class LoadRun(ResultStats):
    """The results of one :func:`run_requests` call, in request order."""

    results: list[Result]
    wall_s: float
    peak_running: float | None = None
    peak_waiting: float | None = None
    metrics_errors: list[str] = field(default_factory=list)
    #: how late the event loop ran a timer, sampled while the requests ran (seconds)
    loop_lag_s: list[float] = field(default_factory=list)

    @property
    def loop_lag(self) -> Stats:
        return Stats.of(self.loop_lag_s)


#: The client bounds a figure when its loop lag (P90) is at least this share of it.
CLIENT_BOUND_SHARE = 0.1


def client_bound(stats: ResultStats, lag: Stats) -> list[str]:
    """Which figures (``ttft``, ``itl``) the client's own delay is not small next to: its
    loop lag P90 (the max with fewer samples) is >= 10 % of the figure's P50."""
    worst = lag.p90 if lag.p90 is not None else lag.max
    if worst is None:
        return []
    return [name for name, s in (("ttft", stats.ttft), ("itl", stats.itl))
            if s.p50 is not None and worst >= CLIENT_BOUND_SHARE * s.p50]


async def _sample_lag(run: LoadRun, done: asyncio.Event, interval_s: float) -> None:
    """Record how much later than asked the loop wakes this task, until ``done``."""
    loop = asyncio.get_running_loop()
    while not done.is_set():
        asked = loop.time()
        await asyncio.sleep(interval_s)
        run.loop_lag_s.append(max(loop.time() - asked - interval_s, 0.0))


def burst_problems(results: Sequence[Result], *, max_errors: int) -> list[str]:
    """Why a burst fails acceptance criterion 2; an empty list means it passes."""
    problems: list[str] = []
    errors = [r for r in results if not r.ok]
    if len(errors) > max_errors:
        problems.append(f"{len(errors)} of {len(results)} requests did not complete "
                        f"(allowed: {max_errors})")
    fives = [r for r in results if r.status_class == "5xx"]
    if fives:
        problems.append(f"{len(fives)} x 5xx (a fleet fault, never acceptable): "
                        f"{fives[0].status} {fives[0].error[:200]}")
    bare = [r for r in results if r.status == 429 and r.retry_after is None]
    if bare:
        problems.append(f"{len(bare)} x 429 without a Retry-After header: clients cannot "
                        "tell when to come back (the proxy hook should add it)")
    return problems


async def _sample_metrics(read: ReadMetrics, run: LoadRun, done: asyncio.Event,
                          interval_s: float) -> None:
    """Read the backend's metrics every ``interval_s`` until ``done``; keep the peaks."""
    while True:
        try:
            values = await read()
        except Exception as exc:  # metrics are evidence, not the test: note and go on
            if len(run.metrics_errors) < 3:
                run.metrics_errors.append(f"{exc.__class__.__name__}: {exc}")
        else:
            for name, attr in ((RUNNING, "peak_running"), (WAITING, "peak_waiting")):
                if name in values:
                    seen = getattr(run, attr)
                    setattr(run, attr, values[name] if seen is None else max(seen, values[name]))
        if done.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=interval_s)


async def run_requests(send: Send, *, count: int, concurrency: int,
                       metrics: ReadMetrics | None = None,
                       metrics_interval_s: float = 0.05,
                       lag_interval_s: float | None = 0.01) -> LoadRun:
    """Send ``count`` requests, at most ``concurrency`` at once; results in request order.

    ``send(i)`` makes request ``i`` and must return a :class:`Result` (FleetClient never
    raises for HTTP outcomes). With ``metrics``, the backend's /metrics is sampled until
    the last request ends, and once more after it. Every ``lag_interval_s`` (None: never)
    the event loop's lag is sampled into ``LoadRun.loop_lag_s``.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    run = LoadRun(results=[], wall_s=0.0)
    results: list[Result | None] = [None] * count
    next_index = 0

    async def worker() -> None:  # N workers, not ``count`` tasks behind a semaphore: cheaper
        nonlocal next_index
        while next_index < count:
            i, next_index = next_index, next_index + 1
            results[i] = await send(i)

    done = asyncio.Event()
    sampler = (asyncio.create_task(_sample_metrics(metrics, run, done, metrics_interval_s))
               if metrics is not None else None)
    lag = (asyncio.create_task(_sample_lag(run, done, lag_interval_s))
           if lag_interval_s is not None else None)
    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
        run.results = [r for r in results if r is not None]
    finally:
        run.wall_s = time.perf_counter() - start
        done.set()
        if sampler is not None:
            await sampler
        if lag is not None:
            await lag
    return run

"""Load statistics at their edges: Stats of a series (mean, min, max, and the percentiles a
sample count supports), the samples a percentile needs, the concurrency bound and the metric
peaks of a run. (Mutation testing found the mean/min/max and the bounds unguarded.)"""

from __future__ import annotations

import asyncio

import pytest

from vllmfleet.client import Result
from vllmfleet.client.load import (
    RUNNING,
    WAITING,
    Stats,
    burst_problems,
    min_samples,
    percentile,
    run_requests,
)


def test_stats_of_a_series() -> None:
    values = [4.0, 1.0, 3.0, 2.0, 10.0, 6.0, 5.0, 7.0, 9.0, 8.0]
    stats = Stats.of(values)
    assert (stats.samples, stats.mean, stats.min, stats.max) == (10, 5.5, 1.0, 10.0)
    assert stats.p50 == pytest.approx(5.5) and stats.p90 == pytest.approx(9.1)
    assert stats.p99 is None  # 10 samples cannot support a P99 (needs 100)
    assert Stats.of([]) == Stats(samples=0)


@pytest.mark.parametrize(("q", "needed"), [(0.5, 2), (0.9, 10), (0.95, 20), (0.99, 100),
                                           (0.999, 1000)])
def test_samples_a_percentile_needs(q: float, needed: int) -> None:
    assert min_samples(q) == needed


@pytest.mark.parametrize(("key", "needed"), [("p50", 2), ("p90", 10), ("p99", 100)])
def test_stats_give_a_percentile_from_its_sample_count_on(key: str, needed: int) -> None:
    assert Stats.of([1.0] * needed).as_dict()[key] == 1.0
    assert Stats.of([1.0] * (needed - 1)).as_dict()[key] is None


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_a_percentile_outside_0_1_needs_no_samples_count(q: float) -> None:
    with pytest.raises(ValueError, match=r"between 0 and 1 \(exclusive\)"):
        min_samples(q)


def test_percentile_edges() -> None:
    assert percentile([3.0], 0.0) == 3.0 and percentile([3.0], 1.0) == 3.0
    assert percentile([1.0, 2.0], 1.0) == 2.0 and percentile([1.0, 2.0], 0.0) == 1.0
    with pytest.raises(ValueError, match="percentile of no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="q must be between 0 and 1"):
        percentile([1.0], 1.01)


def test_run_requests_keeps_the_concurrency_bound_and_the_peaks() -> None:
    active = peak = 0
    readings = iter([{RUNNING: 1.0, WAITING: 4.0}, {RUNNING: 3.0, WAITING: 2.0},
                     {RUNNING: 2.0}])

    async def send(i: int) -> Result:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return Result(status=200, latency_s=0.01)

    async def metrics() -> dict[str, float]:
        return next(readings, {})

    run = asyncio.run(run_requests(send, count=7, concurrency=2, metrics=metrics,
                                   metrics_interval_s=0.001))
    assert peak == 2 and len(run.results) == 7 and run.wall_s > 0
    assert (run.peak_running, run.peak_waiting) == (3.0, 4.0)
    assert run.metrics_errors == []


def test_metric_errors_are_noted_three_times_at_most() -> None:
    async def send(i: int) -> Result:
        await asyncio.sleep(0.02)
        return Result(status=200, latency_s=0.02)

    async def broken() -> dict[str, float]:
        raise ConnectionError("refused")

    run = asyncio.run(run_requests(send, count=1, concurrency=1, metrics=broken,
                                   metrics_interval_s=0.001))
    assert run.metrics_errors == ["ConnectionError: refused"] * 3
    assert run.peak_running is None


@pytest.mark.parametrize(("count", "concurrency"), [(0, 1), (1, 0), (1, -1)])
def test_run_requests_refuses_nothing_to_do(count: int, concurrency: int) -> None:
    async def send(i: int) -> Result:
        return Result(status=200, latency_s=0.0)

    with pytest.raises(ValueError, match="must be at least 1"):
        asyncio.run(run_requests(send, count=count, concurrency=concurrency))


def test_burst_problems_name_each_failure_kind() -> None:
    results = [Result(status=200, latency_s=0.1), Result(status=503, latency_s=0.1,
                                                        error="x" * 300),
               Result(status=429, latency_s=0.1), Result(status=429, latency_s=0.1,
                                                        retry_after=2.0)]
    problems = burst_problems(results, max_errors=1)
    assert problems[0] == "3 of 4 requests did not complete (allowed: 1)"
    assert problems[1] == "1 x 5xx (a fleet fault, never acceptable): 503 " + "x" * 200
    assert problems[2].startswith("1 x 429 without a Retry-After header: clients cannot tell "
                                  "when to come back")
    assert burst_problems(results[:1], max_errors=0) == []

"""The load runner and its statistics: percentiles, concurrency, metrics peaks, burst verdicts."""

from __future__ import annotations

import asyncio

import pytest

from vllmfleet.client import Result
from vllmfleet.client.load import (
    LoadRun,
    Stats,
    burst_problems,
    min_samples,
    outcome,
    percentile,
    run_requests,
)


def _r(status: int = 200, latency: float = 0.1, **kw: object) -> Result:
    return Result(status=status, latency_s=latency, **kw)  # type: ignore[arg-type]


def test_percentile_interpolates_like_numpy() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10, shuffled below
    shuffled = values[5:] + values[:5]
    assert percentile(shuffled, 0.5) == pytest.approx(5.5)
    assert percentile(shuffled, 0.9) == pytest.approx(9.1)
    assert percentile(shuffled, 0.0) == 1.0
    assert percentile(shuffled, 1.0) == 10.0
    assert percentile([4.0], 0.99) == 4.0


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 1.5)


def test_a_percentile_needs_enough_samples() -> None:
    assert (min_samples(0.5), min_samples(0.9), min_samples(0.99)) == (2, 10, 100)
    nine = Stats.of([0.1] * 9)
    ten = Stats.of([0.1] * 9 + [1.1])
    assert (nine.samples, nine.p50, nine.p90) == (9, pytest.approx(0.1), None)
    assert ten.p90 == pytest.approx(0.2) and ten.p99 is None
    assert Stats.of([0.2] * 100).p99 == pytest.approx(0.2)
    assert Stats.of([]).as_dict() == {"samples": 0, "p50": None, "p90": None, "p99": None,
                                      "mean": None, "min": None, "max": None}


def test_outcome_names_what_a_person_triages() -> None:
    assert outcome(_r()) == "200"
    assert outcome(_r(429, retry_after=2.0)) == "429 with Retry-After"
    assert outcome(_r(429)) == "429 without Retry-After"
    assert outcome(_r(400)) == "4xx"
    assert outcome(_r(502)) == "5xx"
    assert outcome(_r(0, timed_out=True)) == "timeout"


def test_burst_passes_with_allowed_errors_and_proper_429s() -> None:
    results = [_r(), _r(), _r(), _r(), _r(429, retry_after=1.0)]
    assert burst_problems(results, max_errors=1) == []


def test_burst_fails_for_too_many_errors_any_5xx_or_a_bare_429() -> None:
    too_many = burst_problems([_r(), _r(429, retry_after=1.0), _r(0, timed_out=True)],
                              max_errors=1)
    assert too_many == ["2 of 3 requests did not complete (allowed: 1)"]
    five = burst_problems([_r(), _r(500, error="Connection error")], max_errors=1)
    assert len(five) == 1 and "5xx" in five[0] and "Connection error" in five[0]
    bare = burst_problems([_r(), _r(429)], max_errors=1)
    assert len(bare) == 1 and "without a Retry-After" in bare[0]


def test_runner_keeps_order_and_never_exceeds_concurrency() -> None:
    in_flight = 0
    peak = 0

    async def send(i: int) -> Result:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)  # let the others in
        in_flight -= 1
        return _r(latency=float(i))

    run = asyncio.run(run_requests(send, count=7, concurrency=3))
    assert [r.latency_s for r in run.results] == [float(i) for i in range(7)]
    assert peak == 3
    assert run.latency.samples == 7 and run.errors == 0


def test_runner_records_metric_peaks_and_survives_metric_errors() -> None:
    readings = iter([{"vllm:num_requests_running": 1.0, "vllm:num_requests_waiting": 0.0},
                     {"vllm:num_requests_running": 2.0, "vllm:num_requests_waiting": 3.0}])
    release = asyncio.Event()
    reads = 0

    async def metrics() -> dict[str, float]:
        nonlocal reads
        reads += 1
        try:
            return next(readings)
        except StopIteration:
            release.set()  # every reading was taken: let the requests finish
            raise ConnectionError("metrics went away") from None

    async def send(i: int) -> Result:
        await release.wait()
        return _r()

    run = asyncio.run(run_requests(send, count=2, concurrency=2, metrics=metrics,
                                   metrics_interval_s=0.001))
    assert (run.peak_running, run.peak_waiting) == (2.0, 3.0)
    assert run.metrics_errors and "metrics went away" in run.metrics_errors[0]
    assert reads >= 3


def test_runner_rejects_bad_counts() -> None:
    async def send(i: int) -> Result:
        return _r()

    with pytest.raises(ValueError, match="count"):
        asyncio.run(run_requests(send, count=0, concurrency=1))
    with pytest.raises(ValueError, match="concurrency"):
        asyncio.run(run_requests(send, count=1, concurrency=0))


def test_load_run_statistics_count_only_successes() -> None:
    run = LoadRun(results=[_r(latency=0.5, ttft_s=0.1), _r(500, latency=9.0)], wall_s=1.0)
    assert run.latency.samples == 1 and run.latency.max == 0.5
    assert run.ttft.samples == 1
    assert run.outcomes == {"200": 1, "5xx": 1}
    assert run.errors == 1


def test_itl_pools_gaps_and_tpot_follows_vllm_bench() -> None:
    run = LoadRun(results=[
        _r(latency=1.0, ttft_s=0.2, completion_tokens=5, inter_token_s=[0.2] * 4),
        _r(latency=0.5, ttft_s=0.1, completion_tokens=None, inter_token_s=[0.1, 0.3]),
        _r(latency=0.3, ttft_s=0.3, completion_tokens=1),  # one token: no TPOT
        _r(500, latency=2.0, ttft_s=0.1, inter_token_s=[5.0]),  # failed: not counted
    ], wall_s=1.0)
    assert run.itl.samples == 6 and run.itl.max == pytest.approx(0.3)
    # (1.0 - 0.2) / (5 - 1); without usage the content events count: (0.5 - 0.1) / (3 - 1)
    assert run.tpot.samples == 2
    assert (run.tpot.min, run.tpot.max) == (pytest.approx(0.2), pytest.approx(0.2))


def test_runner_samples_the_loop_lag_a_blocking_client_causes() -> None:
    import time

    async def send(i: int) -> Result:
        await asyncio.sleep(0.02)
        time.sleep(0.05)  # a client that hogs the loop: every timestamp is late meanwhile
        return _r()

    run = asyncio.run(run_requests(send, count=3, concurrency=1))
    assert run.loop_lag.max is not None and run.loop_lag.max >= 0.03
    quiet = asyncio.run(run_requests(send, count=1, concurrency=1, lag_interval_s=None))
    assert quiet.loop_lag_s == []

"""The sweep: doubling then bisecting to the exact figure, early stops, budgets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from vllmfleet.bench import SLO, Bounds, sweep
from vllmfleet.bench.slo import verdict
from vllmfleet.client import Result


def _sweep(run_step: Any, **kw: Any) -> Any:
    slo = kw.pop("slo", SLO(ttft_s=0.25, itl_s=None))
    return asyncio.run(sweep(run_step, slo=slo, bounds=Bounds(**kw)))


def test_doubles_then_bisects_to_the_exact_capacity(backend: Callable[..., Any]) -> None:
    # TTFT 0.1 s + 10 ms per stream: 15 streams -> 0.25 s (meets 0.255), 16 -> 0.26 (misses)
    run_step = backend(slots=64, ttft_growth=0.01)
    result = _sweep(run_step, max_concurrency=64, slo=SLO(ttft_s=0.255, itl_s=None))
    assert [c for c, _ in run_step.calls] == [1, 2, 4, 8, 16, 12, 14, 15]
    assert result.capacity == 15
    assert result.stop_reason == "bisected between 15 (meets) and 16 (misses)"
    assert result.exact
    assert [s.phase for s in result.steps] == ["double"] * 5 + ["bisect"] * 3


def test_every_step_has_enough_requests_for_the_percentile(
        backend: Callable[..., Any]) -> None:
    run_step = backend(slots=64)
    _sweep(run_step, max_concurrency=8, slo=SLO(ttft_s=1.0, percentile=0.99))
    assert all(n >= max(100, 3 * c) for c, n in run_step.calls)


def test_stops_early_when_more_streams_only_queue(backend: Callable[..., Any]) -> None:
    # a generous SLO that never breaks: throughput flat past 2 slots, TTFT doubling
    run_step = backend(slots=2)
    result = _sweep(run_step, max_concurrency=64, slo=SLO(ttft_s=100.0, itl_s=None))
    assert [c for c, _ in run_step.calls] == [1, 2, 4]
    assert result.capacity == 4 and result.stop_reason.startswith("saturated at concurrency 4")
    assert not result.exact  # a lower bound: no step above 4 was tried


def test_capacity_zero_when_one_stream_misses(backend: Callable[..., Any]) -> None:
    result = _sweep(backend(slots=1, ttft_s=1.0))
    assert (result.capacity, result.stop_reason) == (0, "concurrency 1 misses the SLO")


def test_request_and_concurrency_bounds_hold(backend: Callable[..., Any]) -> None:
    run_step = backend(slots=64)
    result = _sweep(run_step, max_requests=35)
    assert result.requests <= 35 and "request budget" in result.stop_reason
    capped = _sweep(backend(slots=64), max_concurrency=6)
    assert capped.capacity == 6 and capped.stop_reason == "reached max_concurrency=6"


def test_5xx_spend_the_error_budget_but_429s_with_retry_after_do_not(
        backend: Callable[..., Any]) -> None:
    limited = _sweep(backend(slots=64, rate_limited=3), max_concurrency=4,
                     requests_per_step=20, slo=SLO(ttft_s=0.25, max_429_share=1.0))
    assert limited.capacity == 4 and all(s.rate_limited == 3 for s in limited.steps)
    assert all(s.errors == 0 for s in limited.steps)
    # 429s leave too few successes for a P90: the step misses, saying so
    few = _sweep(backend(slots=64, rate_limited=3), max_concurrency=4)
    assert few.capacity == 0 and "only 7 of 10 requests succeeded" in few.steps[0].problems[0]
    # by default more than 10 % refused misses: those users were not served
    strict = _sweep(backend(slots=64, rate_limited=3), max_concurrency=4, requests_per_step=20)
    assert strict.capacity == 0 and "3 x 429 of 20 (15%) > allowed 10%: the proxy's limits" \
        in strict.steps[0].problems[0]
    assert _sweep(backend(slots=64, rate_limited=2), max_concurrency=4,
                  requests_per_step=20).capacity == 4  # 10 %: still within
    failing = _sweep(backend(slots=64, status=503), max_concurrency=4)
    assert failing.capacity == 0


def test_a_429_without_retry_after_is_an_error() -> None:
    ok = [Result(status=200, latency_s=0.1, ttft_s=0.05) for _ in range(20)]
    _, problems = verdict([*ok, Result(status=429, latency_s=0.01)], SLO(ttft_s=1.0))
    assert problems and "1 errors of 21" in problems[0]
    _, fine = verdict([*ok, Result(status=429, latency_s=0.01, retry_after=2.0)],
                      SLO(ttft_s=1.0))
    assert fine == []


@pytest.mark.parametrize(("kw", "message"), [
    ({"ttft_s": 0}, "ttft_s=0"), ({"itl_s": -1.0}, "itl_s=-1.0"),
    ({"ttft_s": None, "itl_s": None}, "no objective"), ({"percentile": 0.999}, "percentile"),
    ({"error_budget": 2}, "error_budget=2"), ({"e2e_s": float("nan")}, "e2e_s=nan"),
])
def test_bad_slo_values_name_the_field(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SLO(**kw)


@pytest.mark.parametrize(("kw", "message"), [
    ({"start": 0}, "start=0"), ({"max_concurrency": 2, "start": 4}, "start=4"),
    ({"max_seconds": 0}, "max_seconds=0"), ({"max_requests": True}, "max_requests=True"),
])
def test_bad_bounds_name_the_field(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Bounds(**kw)


def test_a_step_that_outruns_the_time_budget_is_cut_off(
        backend: Callable[..., Any]) -> None:
    fast = backend(slots=64, ttft_s=0.001, itl_s=0.0001)  # steps guessed to be quick

    async def hangs_at_two(concurrency: int, count: int) -> Any:
        if concurrency >= 2:
            await asyncio.Event().wait()  # a fleet that stopped answering
        return await fast(concurrency, count)

    result = _sweep(hangs_at_two, max_seconds=0.3)
    assert [s.concurrency for s in result.steps] == [1]  # the cut-off step is not counted
    assert result.capacity == 1 and not result.exact
    assert result.stop_reason.startswith("time budget: the step at concurrency 2 was cut off")

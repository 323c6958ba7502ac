"""The capacity sweep: the highest concurrency whose requests still meet the SLO.

:func:`sweep` runs steps of fixed concurrency (closed loop: ``c`` streams always in flight
until the step's requests are done) through a ``run_step(concurrency, requests)`` callable:

1. **doubling** from ``start`` (1, 2, 4 …) while each step meets the SLO;
2. **bisecting** between the last step that met it and the first that did not, down to
   ``resolution`` (1: the exact figure);
3. it **stops early** when the fleet is saturated: a step serves no more requests per
   second than the one before (< ``1 + SATURATION_GAIN``) while its TTFT P50 climbs
   (x ``SATURATION_TTFT``), i.e. more users only queue; or when the time
   (``max_seconds``) or request (``max_requests``) budget would be exceeded by the next step.
   A step still running when the time is up (plus ``OVERRUN_SHARE`` of it) is cut off and
   not counted: the time bound holds even when a step takes far longer than guessed.

The answer is :attr:`Sweep.capacity`: the highest concurrency that met the SLO (0 when not
even ``start`` did), with the reason the sweep stopped.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vllmfleet.bench.slo import SLO, verdict
from vllmfleet.client.load import LoadRun, Stats

#: Saturation: the next step's throughput grew by less than this share …
SATURATION_GAIN = 0.10
#: … while its TTFT P50 grew at least this many times.
SATURATION_TTFT = 1.5

#: How far past ``max_seconds`` a running step may go before it is cut off.
OVERRUN_SHARE = 0.1

RunStep = Callable[[int, int], Awaitable[LoadRun]]
Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Bounds:
    """How far a sweep may go: concurrency, requests in all, seconds in all, per step."""

    start: int = 1
    max_concurrency: int = 64
    max_requests: int = 2000
    max_seconds: float = 300.0
    requests_per_step: int | None = None  # default: max(SLO's minimum, 3 x concurrency)
    resolution: int = 1

    def __post_init__(self) -> None:
        for name in ("start", "max_concurrency", "max_requests", "resolution"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: give a whole number of at least 1")
        if self.start > self.max_concurrency:
            raise ValueError(f"start={self.start} is above max_concurrency="
                             f"{self.max_concurrency}")
        if not (isinstance(self.max_seconds, (int, float)) and self.max_seconds > 0
                and math.isfinite(self.max_seconds)):
            raise ValueError(f"max_seconds={self.max_seconds!r}: give a positive number")
        if self.requests_per_step is not None and self.requests_per_step < 1:
            raise ValueError(f"requests_per_step={self.requests_per_step!r}: give at least 1")

    def requests_for(self, concurrency: int, slo: SLO) -> int:
        if self.requests_per_step is not None:
            return max(self.requests_per_step, concurrency)
        return max(slo.min_requests, 3 * concurrency)


@dataclass(kw_only=True)
class Step:
    """One concurrency level: its requests and what they showed."""

    concurrency: int
    run: LoadRun
    values: dict[str, float | None]  # metric → value at the SLO's percentile
    problems: list[str]  # why it misses the SLO; [] = meets it
    phase: str  # "double" or "bisect"

    @property
    def meets(self) -> bool:
        return not self.problems

    @property
    def requests(self) -> int:
        return len(self.run.results)

    @property
    def ok(self) -> int:
        return sum(r.ok for r in self.run.results)

    @property
    def rate_limited(self) -> int:
        return sum(r.status == 429 for r in self.run.results)

    @property
    def errors(self) -> int:
        return sum(not r.ok and r.status != 429 for r in self.run.results)

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return self.ok / self.run.wall_s if self.run.wall_s > 0 else 0.0

    @property
    def output_tps(self) -> float:
        tokens = sum(r.output_tokens or 0 for r in self.run.results if r.ok)
        return tokens / self.run.wall_s if self.run.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        run = self.run

        def stats(s: Stats) -> dict[str, float | int | None]:
            return s.as_dict()

        return {"concurrency": self.concurrency, "phase": self.phase, "meets_slo": self.meets,
                "problems": self.problems, "requests": self.requests, "ok": self.ok,
                "errors": self.errors, "rate_limited_429": self.rate_limited,
                "wall_s": run.wall_s, "throughput_rps": self.throughput,
                "output_tokens_per_s": self.output_tps, "at_slo_percentile": self.values,
                "e2e_s": stats(run.latency), "ttft_s": stats(run.ttft),
                "itl_s": stats(run.itl), "tpot_s": stats(run.tpot),
                "peak_running": run.peak_running, "peak_waiting": run.peak_waiting,
                "client_overhead": {"work_s": stats(run.client_work),
                                    "loop_lag_s": stats(run.loop_lag)}}


@dataclass(kw_only=True)
class Sweep:
    """All steps, in the order they ran, and the answer."""

    slo: SLO
    bounds: Bounds
    steps: list[Step] = field(default_factory=list)
    stop_reason: str = ""
    wall_s: float = 0.0

    @property
    def capacity(self) -> int:
        """The highest concurrency that met the SLO; 0 when none did."""
        return max((s.concurrency for s in self.steps if s.meets), default=0)

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.steps)

    @property
    def exact(self) -> bool:
        """Whether a step one above the capacity missed the SLO (else the capacity is a lower
        bound: the sweep stopped on saturation, a budget or max_concurrency first)."""
        return any(not s.meets and s.concurrency <= self.capacity + self.bounds.resolution
                   for s in self.steps)


def saturated(before: Step, after: Step) -> str | None:
    """Why ``after`` shows a saturated fleet compared with ``before``; None if it does not."""
    ttft0, ttft1 = before.run.ttft.p50, after.run.ttft.p50
    if before.throughput <= 0 or ttft0 is None or ttft1 is None or ttft0 <= 0:
        return None
    gain = after.throughput / before.throughput - 1
    if gain < SATURATION_GAIN and ttft1 >= SATURATION_TTFT * ttft0:
        queue = "" if after.run.peak_waiting is None else \
            f", up to {after.run.peak_waiting:.0f} waiting at the backend"
        return (f"saturated at concurrency {after.concurrency}: {after.throughput:.2f} req/s "
                f"vs {before.throughput:.2f} at {before.concurrency} ({gain:+.0%}) while TTFT "
                f"P50 rose {ttft1 / ttft0:.1f}x{queue}")
    return None


async def sweep(run_step: RunStep, *, slo: SLO, bounds: Bounds,
                say: Say | None = None) -> Sweep:
    """Ramp concurrency as the module docstring says; return every step and the answer."""
    result = Sweep(slo=slo, bounds=bounds)
    started = time.monotonic()
    tell = say or (lambda _message: None)

    def budget_left(concurrency: int) -> str | None:
        n = bounds.requests_for(concurrency, slo)
        if result.requests + n > bounds.max_requests:
            return (f"request budget: {result.requests} sent, the next step needs {n} "
                    f"(max_requests={bounds.max_requests})")
        spent = time.monotonic() - started
        last = result.steps[-1] if result.steps else None
        guess = last.run.wall_s * n / max(last.requests, 1) * \
            last.concurrency / concurrency if last else 0.0
        if spent + guess > bounds.max_seconds:
            return (f"time budget: {spent:.0f} s spent, the next step would take about "
                    f"{guess:.0f} s more (max_seconds={bounds.max_seconds:g})")
        return None

    async def step(concurrency: int, phase: str) -> Step:
        n = bounds.requests_for(concurrency, slo)
        tell(f"step {len(result.steps) + 1} ({phase}): concurrency {concurrency}, "
             f"{n} requests")
        left = bounds.max_seconds * (1 + OVERRUN_SHARE) - (time.monotonic() - started)
        try:
            run = await asyncio.wait_for(run_step(concurrency, n), timeout=max(left, 0.0))
        except TimeoutError:
            raise _OutOfTime(f"time budget: the step at concurrency {concurrency} was cut off "
                             f"at {time.monotonic() - started:.0f} s (max_seconds="
                             f"{bounds.max_seconds:g}); it is not counted") from None
        values, problems = verdict(run.results, slo)
        done = Step(concurrency=concurrency, run=run, values=values, problems=problems,
                    phase=phase)
        result.steps.append(done)
        tell(line(done, slo))
        return done

    try:
        await _ramp(result, bounds, step, budget_left)
    except _OutOfTime as exc:
        result.stop_reason = str(exc)
    result.wall_s = time.monotonic() - started
    return result


def line(step: Step, slo: SLO) -> str:
    """One step in a progress line."""
    values = ", ".join(f"{m} {slo.label} {v * 1000:.0f} ms"
                       for m, v in step.values.items() if v is not None)
    verdict_text = "meets the SLO" if step.meets else "MISSES: " + "; ".join(step.problems)
    extra = f", {step.rate_limited} x 429" if step.rate_limited else ""
    return (f"  concurrency {step.concurrency}: {step.ok}/{step.requests} ok{extra}, "
            f"{step.throughput:.2f} req/s, {values} — {verdict_text}")


class _OutOfTime(Exception):
    """A step ran past the time budget (internal: ends the sweep)."""


async def _ramp(result: Sweep, bounds: Bounds, step: Callable[[int, str], Awaitable[Step]],
                budget_left: Callable[[int], str | None]) -> None:
    """Doubling, then bisecting (see the module docstring); sets ``result.stop_reason``."""
    best, worst = 0, None
    concurrency, previous = bounds.start, None
    while True:  # doubling
        if (reason := budget_left(concurrency)) is not None:
            result.stop_reason = reason
            break
        current = await step(concurrency, "double")
        if not current.meets:
            worst = concurrency
            break
        best = concurrency
        if previous is not None and (reason := saturated(previous, current)):
            result.stop_reason = reason
            break
        if concurrency >= bounds.max_concurrency:
            result.stop_reason = f"reached max_concurrency={bounds.max_concurrency}"
            break
        previous, concurrency = current, min(concurrency * 2, bounds.max_concurrency)
    while worst is not None and worst - best > bounds.resolution:  # bisecting
        middle = (best + worst) // 2
        if (reason := budget_left(middle)) is not None:
            result.stop_reason = reason
            break
        if (await step(middle, "bisect")).meets:
            best = middle
        else:
            worst = middle
    if not result.stop_reason:
        result.stop_reason = ("concurrency 1 misses the SLO" if best == 0 and worst is not None
                              else f"bisected between {best} (meets) and {worst} (misses)")

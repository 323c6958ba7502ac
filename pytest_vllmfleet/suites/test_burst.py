"""Acceptance criterion 2: a burst is queued, not dropped.

Per selected host and target: ``concurrency`` requests at once to the host's alias through
the proxy (or to the vLLM server directly). Every result is classified (200 — possibly
after waiting in vLLM's queue —, 429 with or without Retry-After, 4xx, 5xx, timeout); the
burst passes with at most ``max_errors`` requests not completed, no 5xx and a Retry-After on
every 429. The backend's /metrics is sampled meanwhile, and the peak running and waiting
requests go into the report. ``@pytest.mark.burst(concurrency=…, max_errors=…)``.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_vllmfleet.checks import describe, fail_with, route_for
from pytest_vllmfleet.fleet import Fleet
from pytest_vllmfleet.markers import Burst
from pytest_vllmfleet.plugin import Recorder
from vllmfleet.client import Result
from vllmfleet.client.load import burst_problems, outcome, run_requests

pytestmark = pytest.mark.burst

MAX_TOKENS = 32


def test_concurrent_requests_complete(fleet: Fleet, fleet_host: str, fleet_target: Any,
                                      burst_settings: Burst, fleet_report: Recorder) -> None:
    route = route_for(fleet, fleet_host, fleet_target)
    n = burst_settings.concurrency
    messages = [[{"role": "user", "content": f"Request {i} of a burst: describe a fleet of "
                                             "ships in a few sentences."}] for i in range(n)]

    async def send(i: int) -> Result:
        return await route.client.chat(model=route.model, messages=messages[i],
                                       max_tokens=MAX_TOKENS, stream=True)

    backend = fleet.client(fleet_host)
    run = fleet.run(run_requests(send, count=n, concurrency=n, metrics=backend.metrics))
    fleet_report.add("burst", run.results, host=fleet_host, target=fleet_target,
                     model=route.model, label=f"{n} at once", run=run)
    problems = burst_problems(run.results, max_errors=burst_settings.max_errors)
    if problems:
        seen = ", ".join(f"{count} x {name}" for name, count in sorted(run.outcomes.items()))
        peaks = (f"peak running {run.peak_running}, waiting {run.peak_waiting} at "
                 f"{fleet_host}" if run.peak_running is not None else "no backend metrics")
        fail_with(f"{fleet_host} via {fleet_target} ({route.model}), {n} requests at once "
                  f"({seen}; {peaks})", problems,
                  (f"#{i}: {outcome(r)} — {describe(r)}" for i, r in enumerate(run.results, 1)))

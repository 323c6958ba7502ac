"""Capacity sweep (opt-in: ``-m capacity``): how many concurrent streams each host serves
within the SLO, directly and through its alias at the proxy.

Per selected host and target, :func:`vllmfleet.bench.run_sweep` ramps concurrency (doubling,
then bisecting; early stop when the fleet saturates) with prompts of half the alias's
``max_input_tokens``, exact by /tokenize, and streamed answers of ``output_tokens``. The
test passes when the capacity is at least ``min_capacity``; each step's requests go into the
session's reports (``capacity_test_results.csv``, the JSON summary with ITL/TPOT and the
client's overhead) and the sweep writes its own JSON, CSV and HTML (plots) into the
artifacts folder. ``@pytest.mark.capacity(ttft_s=…, itl_s=…, max_concurrency=…, …)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_vllmfleet.fleet import Fleet
from pytest_vllmfleet.markers import Capacity
from pytest_vllmfleet.plugin import Recorder
from vllmfleet import bench

pytestmark = pytest.mark.capacity


def test_capacity_meets_the_slo(fleet: Fleet, fleet_host: str, fleet_target: Any,
                                capacity_settings: Capacity, fleet_report: Recorder,
                                fleet_artifacts: Path) -> None:
    kind: Literal["direct", "proxy"] = "direct" if fleet_target == "direct" else "proxy"
    alias = fleet.primary_alias(fleet_host)
    if kind == "proxy" and alias is None:
        pytest.skip(f"no alias of {fleet.inventory.path} routes to {fleet_host}")
    name = fleet_host if kind == "direct" or alias is None else alias.name
    goal = bench.target(fleet.inventory, fleet.endpoints, kind=kind, name=name)
    load = bench.load_for(goal, output_tokens=min(capacity_settings.output_tokens,
                                                  goal.max_output_tokens))
    bounds = bench.Bounds(max_concurrency=capacity_settings.max_concurrency,
                          max_seconds=capacity_settings.max_seconds)
    result = fleet.run(bench.run_sweep(goal, load, slo=capacity_settings.slo(), bounds=bounds))
    for step in result.steps:
        fleet_report.add("capacity", step.run.results, host=fleet_host, target=fleet_target,
                         model=goal.model, max_input_tokens=goal.max_input_tokens,
                         label=f"{step.concurrency} stream{'s' if step.concurrency > 1 else ''}",
                         run=step.run)
    bench.write(result, goal, load, fleet_artifacts, fleet=fleet.mode)
    if result.capacity < capacity_settings.min_capacity:
        pytest.fail(f"capacity of {goal.describe()}: {result.capacity} concurrent streams, "
                    f"below min_capacity={capacity_settings.min_capacity}\n"
                    + bench.summary(result, goal), pytrace=False)

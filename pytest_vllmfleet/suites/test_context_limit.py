"""Acceptance criterion 1: the configured context is effective.

Per selected host: ``/v1/models`` reports the inventory's served name and max_model_len;
``samples`` prompts of ``fraction`` x the host's alias max_input_tokens — an exact count by
the host's own ``/tokenize``, chat template included — succeed direct and via the proxy,
streamed, so the report has TTFT and latency P50/P90; and the server still answers
afterwards (no OOM, no crash). Each sample uses different words, so prefix caching cannot
make later samples cheap. ``@pytest.mark.context_limit(fraction=…, samples=…)``.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_vllmfleet.checks import describe, fail_with, route_for, still_serves, usage_problems
from pytest_vllmfleet.fleet import Fleet
from pytest_vllmfleet.markers import ContextLimit
from pytest_vllmfleet.plugin import Recorder
from vllmfleet.client import Result
from vllmfleet.client.load import Stats
from vllmfleet.health import served_lengths, serving_problems

pytestmark = pytest.mark.context_limit

MAX_TOKENS = 16  # the answer stays short: latency is dominated by the long prompt


@pytest.mark.parametrize("fleet_target", ["direct"])
def test_models_report_the_inventory_max_model_len(fleet: Fleet, fleet_host: str,
                                                   fleet_target: str) -> None:
    vllm = fleet.vllm(fleet_host)
    models = fleet.run(fleet.client(fleet_host).models())
    problems = serving_problems(
        served_lengths(models), served=vllm.served_model_name, max_model_len=vllm.max_model_len,
        absent="serves {listed}, not {served} as the inventory says",
        wrong="max_model_len is {got}, the inventory says {expected}: the running config is "
              "not the inventory's (deploy it, or fix the inventory)")
    if problems:
        fail_with(f"{fleet_host} ({fleet.endpoints.hosts[fleet_host]}/v1/models)", problems)


def test_prompts_at_a_fraction_of_max_input_succeed(
        fleet: Fleet, fleet_host: str, fleet_target: Any,
        context_limit_settings: ContextLimit, fleet_report: Recorder,
        fleet_benchmark: Any) -> None:
    # A 429 here is the proxy's rate limit doing its job (10 long prompts are most of a
    # minute's TPM), not a context failure: wait it out as Retry-After says, twice at most.
    route = route_for(fleet, fleet_host, fleet_target, retry_429=2)
    limit = route.alias.max_input_tokens if route.alias else fleet.vllm(fleet_host).max_model_len
    tokens = int(limit * context_limit_settings.fraction)
    samples = context_limit_settings.samples
    builder = fleet.prompts(fleet_host)
    prompts = [fleet.run(builder.build(tokens, seed=i)) for i in range(samples)]
    results: list[Result] = []

    def one_sample() -> None:
        prompt = prompts[len(results) % samples]
        results.append(fleet.run(route.client.chat(model=route.model, messages=prompt.messages,
                                                   max_tokens=MAX_TOKENS, stream=True)))

    if fleet_benchmark is not None:  # --benchmark-autosave & co: let it time the samples
        fleet_benchmark.pedantic(one_sample, rounds=samples, iterations=1)
    while len(results) < samples:  # all of them, or the rest (benchmarks disabled)
        one_sample()
    fleet_report.add("context", results, host=fleet_host, target=fleet_target,
                     model=route.model, max_input_tokens=limit,
                     label=f"{tokens} tok = {context_limit_settings.fraction:g} x max_input")

    where = (f"{fleet_host} via {fleet_target} ({route.model}), {samples} prompts of "
             f"{tokens} tokens = {context_limit_settings.fraction:g} x {limit}")
    problems: list[str] = []
    failed = [r for r in results if not r.ok]
    if failed:
        problems.append(f"{len(failed)} of {samples} requests failed; first: "
                        f"{describe(failed[0])}")
    # usage is requested (include_usage); direct, its prompt count must be /tokenize's
    problems += usage_problems(results, prompt_tokens=tokens if fleet_target == "direct" else None)
    stats = Stats.of([r.latency_s for r in results if r.ok])
    if not failed and stats.p90 is None:
        problems.append(f"no P90 from {stats.samples} samples (at least 10 are needed)")
    problems += fleet.run(still_serves(route))
    if problems:
        fail_with(where, problems, (f"#{i}: {describe(r)}" for i, r in enumerate(results, 1)))

"""Targets from the inventory, sizes from its limits, and a real sweep against the emulator."""

from __future__ import annotations

import asyncio

import pytest

from vllmfleet.bench import SLO, Bounds, load_for, run_sweep, target
from vllmfleet.emulator import Emulator, parse
from vllmfleet.errors import FleetError
from vllmfleet.inventory import Endpoints, Inventory

ENDPOINTS = Endpoints(hosts={"wintermute": "http://127.0.0.1:8000",
                             "armitage": "http://127.0.0.1:8001"},
                      proxy="http://127.0.0.1:4000", key="sk-test", key_hint="set THE_KEY")


def test_a_host_is_measured_directly_with_its_main_alias_limits(reference: Inventory) -> None:
    goal = target(reference, ENDPOINTS, kind="direct", name="wintermute")
    assert (goal.url, goal.model, goal.key) == ("http://127.0.0.1:8000",
                                                "llama31-8b-wintermute", None)
    assert (goal.max_input_tokens, goal.max_output_tokens) == (14000, 1024)
    # the client gives up before the proxy: 90 % of request_timeout_s (240 s)
    assert goal.timeout_s == pytest.approx(216.0)
    load = load_for(goal)
    assert (load.input_tokens, load.output_tokens) == (7000, 64)


def test_an_alias_is_measured_through_the_proxy_by_any_of_its_names(
        reference: Inventory) -> None:
    goal = target(reference, ENDPOINTS, kind="proxy", name="local/chat")
    assert (goal.url, goal.model, goal.key, goal.host) == (
        "http://127.0.0.1:4000", "local/chat", "sk-test", "armitage")
    assert goal.backend_url == "http://127.0.0.1:8001"  # prompts counted by the backend
    assert load_for(goal, input_tokens=7000, output_tokens=768).input_tokens == 7000


@pytest.mark.parametrize(("kind", "name", "message"), [
    ("proxy", "nope", "alias 'nope' is not in"),
    ("direct", "motoko", "'motoko' is not a vLLM host"),
    ("direct", "ghost", "'ghost' is not a vLLM host"),
])
def test_unknown_targets_are_named(reference: Inventory, kind: str, name: str,
                                   message: str) -> None:
    with pytest.raises(FleetError, match=message):
        target(reference, ENDPOINTS, kind=kind, name=name)  # type: ignore[arg-type]


def test_the_proxy_without_its_key_says_how_to_give_it(reference: Inventory) -> None:
    keyless = Endpoints(hosts=ENDPOINTS.hosts, proxy=ENDPOINTS.proxy, key=None,
                        key_hint="set LITELLM_MASTER_KEY")
    with pytest.raises(FleetError, match="set LITELLM_MASTER_KEY"):
        target(reference, keyless, kind="proxy", name="local/chat")


@pytest.mark.parametrize(("kw", "message"), [
    ({"input_tokens": 14001}, "input_tokens=14001: give 1 to 14000"),
    ({"input_tokens": 0}, "input_tokens=0"),
    ({"output_tokens": 1025}, "output_tokens=1025: give 1 to 1024"),
    ({"input_share": 1.5}, "input_share=1.5"),
])
def test_sizes_beyond_the_limits_are_refused(reference: Inventory, kw: dict[str, float],
                                             message: str) -> None:
    goal = target(reference, ENDPOINTS, kind="direct", name="wintermute")
    with pytest.raises(ValueError, match=message):
        load_for(goal, **kw)  # type: ignore[arg-type]


def test_a_sweep_against_the_emulator_sends_exact_prompts_and_streams(
        reference: Inventory) -> None:
    async def go() -> object:
        emu = Emulator(parse(["--model", "m", "--served-model-name", "llama31-8b-wintermute",
                              "--max-model-len", "16384", "--max-num-seqs", "2",
                              "--emulator-time-scale", "0", "--host", "127.0.0.1",
                              "--port", "0"]))
        await emu.start()
        try:
            endpoints = Endpoints(hosts={"wintermute": emu.url, "armitage": emu.url},
                                  proxy="http://127.0.0.1:1")
            goal = target(reference, endpoints, kind="direct", name="wintermute")
            load = load_for(goal, input_tokens=300, output_tokens=8)
            seen: list[str] = []
            return await run_sweep(goal, load, slo=SLO(ttft_s=30.0, itl_s=None),
                                   bounds=Bounds(max_concurrency=2), say=seen.append), seen
        finally:
            await emu.close()

    result, said = asyncio.run(go())  # type: ignore[misc]
    assert [s.concurrency for s in result.steps][:2] == [1, 2]
    assert result.capacity == 2
    results = [r for s in result.steps for r in s.run.results]
    assert all(r.ok for r in results)
    assert {(r.prompt_tokens, r.completion_tokens) for r in results} == {(300, 8)}
    assert all(len(r.inter_token_s) == 7 and r.client_s is not None for r in results)
    assert said[0].startswith("wintermute directly at ") and "exactly 300 tokens" in said[0]

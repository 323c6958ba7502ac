"""Bursts: vLLM queues up to the proxy's in-flight cap, the proxy answers 429 beyond it."""

from __future__ import annotations

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from tests.integration.fleetkit import LocalFleet, burst, chat


def test_burst_within_the_cap_all_succeed_queued_at_the_engine(local_fleet: LocalFleet) -> None:
    alias = local_fleet.inventory.aliases["llama31-8b-wintermute"]  # 2 running + 4 waiting
    bodies = [chat("local/reasoner", max_tokens=24)] * alias.max_parallel
    result = burst(local_fleet, bodies, watch="wintermute")
    assert result.statuses == [200] * alias.max_parallel, [r.text for r in result.responses]
    assert result.max_waiting >= 1  # beyond max_num_seqs=2 they waited in the emulator


def test_burst_above_the_cap_gets_429s_with_retry_after_and_no_5xx(
        local_fleet: LocalFleet) -> None:
    alias = local_fleet.inventory.aliases["llama31-8b-wintermute-burst"]  # cap 2 + 6 = 8
    bodies = [chat(alias.name, max_tokens=32)] * (alias.max_parallel + 4)
    result = burst(local_fleet, bodies, watch="wintermute")
    assert set(result.statuses) <= {200, 429}, [r.text for r in result.responses]
    limited = [r for r in result.responses if r.status_code == 429]
    assert limited and len(limited) <= len(bodies) - alias.max_parallel + 1
    for r in limited:
        assert r.headers["Retry-After"] == "1"
        assert "max_parallel_requests" in r.json()["error"]["message"]
    assert result.statuses.count(200) >= alias.max_parallel - 1


def test_abandoned_streams_and_errors_do_not_leak_in_flight_slots(
        local_fleet: LocalFleet) -> None:
    alias = local_fleet.inventory.aliases["qwen2.5-7b-armitage"]  # cap 1 + 4 = 5
    with local_fleet.proxy() as client:
        for _ in range(alias.max_parallel):  # a client that reads one chunk and hangs up
            with client.stream("POST", "/v1/chat/completions",
                               json=chat("local/chat", max_tokens=16, stream=True)) as r:
                assert r.status_code == 200
                next(r.iter_lines())
        for _ in range(alias.max_parallel):  # refused by the hooks
            assert client.post("/v1/chat/completions",
                               json=chat("local/chat", max_tokens=10_000)).status_code == 400
    # once the engine has nothing left running or waiting, every slot must be free again
    Retrying(stop=stop_after_delay(30), wait=wait_fixed(0.1), reraise=True,
             retry=retry_if_result(lambda busy: busy))(
        lambda: local_fleet.metrics("armitage")["vllm:num_requests_running"]
        + local_fleet.metrics("armitage")["vllm:num_requests_waiting"] > 0)
    result = burst(local_fleet, [chat("local/chat", max_tokens=8)] * alias.max_parallel,
                   watch="armitage")
    assert result.statuses == [200] * alias.max_parallel, [r.text for r in result.responses]

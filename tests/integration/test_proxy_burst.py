"""Bursts: vLLM queues up to the proxy's in-flight cap, the proxy answers 429 beyond it."""

from __future__ import annotations

from fleetkit import LocalFleet, burst, chat


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

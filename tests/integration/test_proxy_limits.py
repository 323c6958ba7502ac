"""Routing and limits through the real LiteLLM proxy in front of the emulators."""

from __future__ import annotations

import pytest

from tests.integration.fleetkit import LocalFleet, chat

ROUTES = [
    ("llama31-8b-wintermute", "wintermute"),
    ("local/reasoner", "wintermute"),
    ("llama31-8b-wintermute-burst", "wintermute"),
    ("qwen2.5-7b-armitage", "armitage"),
    ("local/chat", "armitage"),
]


@pytest.mark.parametrize(("name", "host"), ROUTES)
def test_every_client_name_reaches_its_host(local_fleet: LocalFleet, name: str,
                                            host: str) -> None:
    other = "armitage" if host == "wintermute" else "wintermute"
    before = local_fleet.requests_done(host), local_fleet.requests_done(other)
    with local_fleet.proxy() as client:
        response = client.post("/v1/chat/completions", json=chat(name, max_tokens=8))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    # the emulator answers 404 to any model name but its served one, so a 200 that it
    # counted means the proxy sent the served name to the right host
    after = local_fleet.requests_done(host), local_fleet.requests_done(other)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 0)


def test_over_max_input_is_a_400_before_the_backend(local_fleet: LocalFleet) -> None:
    prompt = "word " * 7200  # ~7200 tokens by the backend's /tokenize; the limit is 7000
    before = local_fleet.metrics("armitage")["vllm:prompt_tokens_total"]
    with local_fleet.proxy() as client:
        response = client.post("/v1/chat/completions", json=chat("local/chat", prompt,
                                                                max_tokens=8))
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "max_input_tokens=7000" in message and "backend's own tokenizer" in message
    assert local_fleet.metrics("armitage")["vllm:prompt_tokens_total"] == before


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_over_max_output_is_a_400_naming_the_limit(local_fleet: LocalFleet, field: str) -> None:
    before = local_fleet.requests_done("wintermute")
    with local_fleet.proxy() as client:
        response = client.post("/v1/chat/completions",
                               json=chat("local/reasoner", **{field: 1025}))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "max_output_tokens=1024" in error["message"]
    assert error["param"] == field
    assert local_fleet.requests_done("wintermute") == before


def test_over_max_output_is_clamped_where_configured(local_fleet: LocalFleet) -> None:
    with local_fleet.proxy() as client:
        response = client.post("/v1/chat/completions", json=chat("probe-clamp", max_tokens=500))
    assert response.status_code == 200, response.text
    assert response.headers["x-vllmfleet-max-tokens-clamped"] == "500->32"
    assert response.json()["usage"]["completion_tokens"] <= 32


def test_rpm_exhaustion_is_a_429_with_retry_after(local_fleet: LocalFleet) -> None:
    # rpm 3 per clock minute: 7 quick requests put at least 4 into one minute
    with local_fleet.proxy() as client:
        responses = [client.post("/v1/chat/completions", json=chat("probe-rpm", max_tokens=4))
                     for _ in range(7)]
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    limited = [r for r in responses if r.status_code == 429]
    assert limited, statuses
    for r in limited:
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert "RPM limit=3" in r.json()["error"]["message"]


@pytest.mark.parametrize("key", [None, "sk-not-the-master-key"])
def test_requests_without_the_key_are_401(local_fleet: LocalFleet, key: str | None) -> None:
    with local_fleet.proxy(key=key) as client:
        response = client.post("/v1/chat/completions", json=chat("local/chat", max_tokens=4))
    assert response.status_code == 401, response.text


def test_readiness_needs_no_key(local_fleet: LocalFleet) -> None:
    with local_fleet.proxy(key=None) as client:
        assert client.get("/health/readiness").status_code == 200


@pytest.mark.parametrize(("route", "body"), [
    ("/v1/responses", {"model": "local/reasoner", "input": "hi", "max_output_tokens": 5000}),
    ("/v1/messages", {"model": "local/reasoner", "max_tokens": 5000,
                      "messages": [{"role": "user", "content": "hi"}]}),
])
def test_other_generation_routes_meet_the_output_limit(local_fleet: LocalFleet, route: str,
                                                       body: dict[str, object]) -> None:
    before = local_fleet.requests_done("wintermute")
    with local_fleet.proxy() as client:
        response = client.post(route, json=body)
    assert response.status_code == 400, response.text
    assert "max_output_tokens=1024" in response.text
    assert local_fleet.requests_done("wintermute") == before


def test_a_backend_fault_is_not_turned_into_a_rate_limit(local_fleet: LocalFleet) -> None:
    """One deployment per alias: a backend error must not put the alias in cooldown, which
    would answer the next requests 429 'No deployments available' and hide the fault."""
    with local_fleet.proxy() as client:
        # a response id the backend does not have: a 404 from the backend (emulator and vLLM)
        fault = client.post("/v1/responses", json={"model": "local/chat", "input": "hi",
                                                   "max_output_tokens": 8,
                                                   "previous_response_id": "resp_unknown"})
        assert fault.status_code == 404, fault.text
        after = [client.post("/v1/chat/completions", json=chat("local/chat", max_tokens=4))
                 for _ in range(2)]
    assert [r.status_code for r in after] == [200, 200], after[-1].text

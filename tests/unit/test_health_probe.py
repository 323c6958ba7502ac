"""The one-token probe of ``inv health``: a 200 must carry an answer; a 429 is the alias's
limit at work (n/a, never FAIL); the fleet check spends one request per alias, not one per
name (each request counts against the alias's RPM)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from vllmfleet import health
from vllmfleet.inventory import Endpoints, Inventory

ANSWER = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"},
                       "finish_reason": "length"}], "usage": {"completion_tokens": 1}}


def probe(response: httpx.Response) -> health.Check:
    transport = httpx.MockTransport(lambda request: response)
    with httpx.Client(transport=transport) as client:
        return health.one_token("m", "http://h", "local/chat", key="sk", client=client)


def test_an_answer_is_ok() -> None:
    check = probe(httpx.Response(200, json=ANSWER))
    assert check.ok is True and check.detail.startswith("1 token in")


@pytest.mark.parametrize("body", [{"choices": []}, {"choices": None}, {}, {"choices": [{}]},
                                  {"choices": [{"message": None}]}, {"choices": "OK"}, [1],
                                  "not json"])
def test_a_200_without_an_answer_fails(body: Any) -> None:
    response = (httpx.Response(200, text=body) if isinstance(body, str)
                else httpx.Response(200, json=body))
    check = probe(response)
    assert check.ok is False and "HTTP 200 without an answer" in check.detail


@pytest.mark.parametrize(("headers", "said"), [({"Retry-After": "3"}, "Retry-After 3 s"),
                                               ({}, "HTTP 429)")])
def test_a_rate_limited_alias_is_not_a_failure(headers: dict[str, str], said: str) -> None:
    check = probe(httpx.Response(429, headers=headers,
                                 json={"error": {"message": "rpm limit reached"}}))
    assert check.ok is None and "rate-limited" in check.detail and said in check.detail
    assert health.healthy([check])


@pytest.mark.parametrize("status", [400, 401, 404, 500, 503])
def test_other_errors_still_fail(status: int) -> None:
    check = probe(httpx.Response(status, json={"error": {"message": "boom"}}))
    assert check.ok is False and f"HTTP {status}: boom" in check.detail


def test_the_fleet_check_probes_each_alias_once(reference: Inventory,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions":
            sent.append(json.loads(request.content)["model"])
            return httpx.Response(200, json=ANSWER)
        if request.url.path == "/v1/models":
            names = [n for a in reference.aliases.values() for n in a.names]
            return httpx.Response(200, json={"data": [{"id": n} for n in names]})
        return httpx.Response(200, json={})

    monkeypatch.setattr(health, "http_client", lambda *a, **k: httpx.Client(
        transport=httpx.MockTransport(handle)))
    proxy_host = reference.proxy.host
    endpoints = Endpoints(proxy="http://proxy", hosts={}, key="sk")
    rows = health.check_fleet(reference, [proxy_host], endpoints, adapter=None)
    assert sorted(sent) == sorted(reference.aliases)  # one request per alias, no also-name
    assert len(sent) < sum(len(a.names) for a in reference.aliases.values())
    assert all(r.ok is not False for r in rows), rows

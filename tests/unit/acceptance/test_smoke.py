"""The smoke report against scripted servers (httpx.MockTransport): checks that must fail."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import REFERENCE
from vllmfleet.acceptance import smoke
from vllmfleet.client import FleetClient
from vllmfleet.inventory import Endpoints, Inventory, load

Handler = Callable[[httpx.Request], httpx.Response]


def _answer(model: str, usage: dict[str, int] | None) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "choices": [{"message": {"content": "hello"},
                                                          "finish_reason": "stop"}]}
    if usage is not None:
        body["usage"] = usage
    return httpx.Response(200, json=body)


def _fleet(*, models: list[dict[str, Any]] | None = None, clamp_usage: bool = True,
           limit_message: Callable[[int], str] = lambda n: f"limit={n}") -> Handler:
    """A healthy fleet of the reference inventory, but for what the arguments change."""
    inv = load(REFERENCE)

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/health"):
            return httpx.Response(200)
        port = request.url.port
        if path == "/v1/models":
            host = {8001: "wintermute", 8002: "armitage"}[port or 0]
            vllm = inv.hosts[host].vllm
            assert vllm is not None
            cards = models if models is not None else [
                {"id": vllm.served_model_name, "max_model_len": vllm.max_model_len}]
            return httpx.Response(200, json={"object": "list", "data": cards})
        body = json.loads(request.content)
        name = body["model"]
        alias = next((a for a in inv.aliases.values() if name in a.names), None)
        if alias is None:  # direct
            return _answer(name, {"prompt_tokens": 5, "completion_tokens": 2})
        content = body["messages"][0]["content"]
        if len(content.split()) > alias.max_input_tokens:
            return httpx.Response(400, json={"error": {
                "message": limit_message(alias.max_input_tokens)}})
        if body["max_tokens"] > alias.max_output_tokens:
            if name == "qwen2.5-7b-armitage":  # the clamping alias of _clamping()
                return _answer(name, {"prompt_tokens": 5, "completion_tokens": 2}
                               if clamp_usage else None)
            return httpx.Response(400, json={"error": {
                "message": limit_message(alias.max_output_tokens)}})
        return _answer(name, {"prompt_tokens": 5, "completion_tokens": 2})
    return handle


def _clamping(inv: Inventory) -> Inventory:
    name = "qwen2.5-7b-armitage"
    aliases = {**inv.aliases,
               name: dataclasses.replace(inv.aliases[name], on_max_output="clamp")}
    return dataclasses.replace(inv, aliases=aliases)


def _run(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> smoke.SmokeReport:
    real = FleetClient

    def client(url: str, **kw: Any) -> FleetClient:
        return real(url, transport=httpx.MockTransport(handler), **kw)

    monkeypatch.setattr(smoke, "FleetClient", client)
    endpoints = Endpoints(proxy="http://127.0.0.1:4000", key="sk-test",
                          hosts={"wintermute": "http://127.0.0.1:8001",
                                 "armitage": "http://127.0.0.1:8002"})
    return asyncio.run(smoke.run_smoke(_clamping(load(REFERENCE)), endpoints))


def _failed(report: smoke.SmokeReport) -> list[smoke.Check]:
    return [c for c in report.checks if not c.ok]


def test_a_healthy_fleet_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _run(monkeypatch, _fleet())
    assert report.ok, smoke.format_smoke(report)


def test_an_empty_model_list_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    failed = _failed(_run(monkeypatch, _fleet(models=[])))
    assert {(c.name, c.what) for c in failed} == {("wintermute", "models"),
                                                  ("armitage", "models")}
    assert all("lists no model" in c.detail and "as the inventory says" in c.detail
               for c in failed)


def test_a_clamped_answer_without_usage_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    failed = _failed(_run(monkeypatch, _fleet(clamp_usage=False)))
    # the limits are checked once per alias, on its own name
    assert [(c.name, c.what) for c in failed] == [("qwen2.5-7b-armitage", "max_output clamp")]
    assert "no usage" in failed[0].detail


def test_a_refusal_that_names_a_longer_number_does_not_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # "10240" contains 1024 and "140000" contains 14000, but neither names the limit
    failed = _failed(_run(monkeypatch, _fleet(limit_message=lambda n: f"at most {n}0 tokens")))
    assert {c.what for c in failed} == {"max_output 1024", "max_input 14000", "max_input 15000",
                                        "max_input 7000"}

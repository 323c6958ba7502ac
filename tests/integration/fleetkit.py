"""Helpers of the integration tests: the session's local fleet as tests use it, bursts.

The session fleet (see conftest.py) is the reference inventory (configs/fleet.yaml) plus
two probe aliases on armitage, written to a temporary inventory so that one LiteLLM start
serves every test:

- ``probe-rpm``: rpm 3, so RPM exhaustion is reached in a handful of requests;
- ``probe-clamp``: ``on_max_output: clamp`` with max_output_tokens 32;
- ``probe-out``: max_output_tokens 16, below the emulator's natural reply length, so that
  an output limit that is not enforced shows as more completion tokens than the limit.

Each alias has its own rate counters, so the tests here stay well inside the reference
aliases' RPM (60/40 per minute). Requests go through httpx, the OpenAI SDK, or both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import REFERENCE
from vllmfleet import inventory, localfleet
from vllmfleet.inventory import Inventory

PROBES: dict[str, dict[str, Any]] = {
    "probe-rpm": {"host": "armitage", "max_input_tokens": 7000, "max_output_tokens": 64,
                  "tpm": 100000, "rpm": 3, "concurrency": 1, "queue_depth": 4},
    "probe-clamp": {"host": "armitage", "max_input_tokens": 7000, "max_output_tokens": 32,
                    "tpm": 100000, "rpm": 100, "concurrency": 1, "queue_depth": 4,
                    "on_max_output": "clamp"},
    "probe-out": {"host": "armitage", "max_input_tokens": 7000, "max_output_tokens": 16,
                  "tpm": 1000000, "rpm": 1000, "concurrency": 1, "queue_depth": 8},
}


@dataclass
class LocalFleet:
    """The running fleet as the tests use it."""

    inventory: Inventory
    state: localfleet.FleetState
    startup_s: float

    @property
    def key(self) -> str:
        return self.state.master_key

    @property
    def proxy_v1(self) -> str:
        return self.state.proxy_url + "/v1"

    def emulator_v1(self, host: str) -> str:
        return self.state.emulator_url(host) + "/v1"

    def proxy(self, *, key: str | None = "default", timeout: float = 60.0) -> httpx.Client:
        headers = {} if key is None else {
            "Authorization": f"Bearer {self.key if key == 'default' else key}"}
        return httpx.Client(base_url=self.state.proxy_url, headers=headers, timeout=timeout,
                            trust_env=False)

    def metrics(self, host: str) -> dict[str, float]:
        """The emulator's /metrics, summed per sample name over labels."""
        text = httpx.get(self.state.emulator_url(host) + "/metrics", timeout=5.0,
                         trust_env=False).text
        out: dict[str, float] = {}
        for name, value in _samples(text):
            out[name] = out.get(name, 0.0) + value
        return out

    def requests_done(self, host: str) -> float:
        return self.metrics(host).get("vllm:request_success_total", 0.0)


def _samples(text: str) -> Iterator[tuple[str, float]]:
    from prometheus_client.parser import text_string_to_metric_families  # the [proxy] extra

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, sample.value


def chat(model: str, content: str = "Say hello to the fleet.", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **fields}


@dataclass
class Burst:
    """What a burst of concurrent requests got, and the most requests seen waiting."""

    responses: list[httpx.Response]
    max_waiting: float

    @property
    def statuses(self) -> list[int]:
        return sorted(r.status_code for r in self.responses)


def burst(fleet: LocalFleet, bodies: Sequence[dict[str, Any]], *, watch: str,
          route: str = "/v1/chat/completions") -> Burst:
    """Send ``bodies`` at once to ``route`` of the proxy; poll ``watch``'s metrics meanwhile."""

    async def run() -> Burst:
        headers = {"Authorization": f"Bearer {fleet.key}"}
        limits = httpx.Limits(max_connections=len(bodies) + 2)
        async with httpx.AsyncClient(base_url=fleet.state.proxy_url, headers=headers,
                                     timeout=120.0, limits=limits, trust_env=False) as client, \
                httpx.AsyncClient(timeout=5.0, trust_env=False) as poller:
            sends = [asyncio.ensure_future(client.post(route, json=b))
                     for b in bodies]
            most = 0.0
            while not all(s.done() for s in sends):
                page = await poller.get(fleet.state.emulator_url(watch) + "/metrics")
                for name, value in _samples(page.text):
                    if name == "vllm:num_requests_waiting":
                        most = max(most, value)
                await asyncio.wait(sends, timeout=0.02)
            return Burst(responses=[s.result() for s in sends], max_waiting=most)

    return asyncio.run(run())


def inventory_with_probes(folder: Path) -> Inventory:
    """The reference inventory plus :data:`PROBES`, written to ``folder``."""
    data = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    data["aliases"].update(PROBES)
    path = folder / "fleet.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return inventory.load(path)

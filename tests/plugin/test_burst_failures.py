"""The burst suite fails when it should: a server that crashes mid-burst, and a proxy that
answers 429 without Retry-After. (Before these, only context_limit and rejection had a
failure demonstration; an error budget equal to the burst passed every test.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest_plugins = ["pytester"]


def test_a_server_that_crashes_mid_burst_fails_the_burst_suite(
        pytester: pytest.Pytester, emulators: object) -> None:
    emulators.start("wintermute", "--emulator-crash-after", "2")  # type: ignore[attr-defined]
    inventory = emulators.inventory(pytester.path / "fleet.yaml")  # type: ignore[attr-defined]
    result = pytester.runpytest_subprocess("-m", "burst", "--fleet", "inventory",
                                           "--target", "direct", "--host", "wintermute",
                                           "--fleet-config", str(inventory), timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*wintermute via direct (llama31-8b-wintermute), 5 requests at once *:",
        "*- [345] of 5 requests did not complete (allowed: 1)*",
    ])


class _Bare429(BaseHTTPRequestHandler):
    """A "proxy" that rate-limits every request and never says when to come back."""

    def do_GET(self) -> None:
        self._send(200, {"data": [], "object": "list"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._send(429, {"error": {"message": "Rate limit exceeded", "code": "429"}})

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def bare_429_proxy() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bare429)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_429s_without_retry_after_fail_the_burst_suite(
        pytester: pytest.Pytester, emulators: object, bare_429_proxy: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    emulators.start("wintermute")  # type: ignore[attr-defined]
    emulators.proxy_port = bare_429_proxy  # type: ignore[attr-defined]
    inventory = emulators.inventory(pytester.path / "fleet.yaml")  # type: ignore[attr-defined]
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-test")
    result = pytester.runpytest_subprocess("-m", "burst", "--fleet", "inventory",
                                           "--target", "proxy", "--host", "wintermute",
                                           "--fleet-config", str(inventory), timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*wintermute via proxy (llama31-8b-wintermute), 5 requests at once (5 x 429*",
        "*- 5 x 429 without a Retry-After header: clients cannot tell when to come back*",
    ])

"""``python -m vllmfleet.emulator`` as a process: start-up, capacity refusal, faults, SIGTERM.

These start real processes (about half a second each), so there are only a few; the
behaviour behind them is covered in-process by the other emulator tests.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.conftest import REFERENCE
from vllmfleet.inventory import load
from vllmfleet.localfleet.facts import emulator_facts
from vllmfleet.render import vllm_args

RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def _launch(host: str, *extra: str) -> list[str]:
    inventory = load(REFERENCE)
    args = vllm_args(inventory.hosts[host], bind="127.0.0.1", port=0)
    return [sys.executable, "-m", "vllmfleet.emulator", *args,
            *emulator_facts(inventory, host, launch=args), *extra]


class Server:
    """A running emulator process whose merged output is read line by line."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 20) -> re.Match[str]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("no line matching " + pattern.pattern + " in:\n"
                                     + "".join(self.seen)) from None
            self.seen.append(line)
            match = pattern.search(line)
            if match:
                return match

    def get(self, port: int, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def server() -> object:
    started: list[Server] = []

    def start(cmd: list[str]) -> Server:
        started.append(Server(cmd))
        return started[-1]
    yield start
    for s in started:
        s.stop()


def test_rendered_launch_starts_logs_kv_cache_and_stops_on_sigterm(server: object) -> None:
    s = server(_launch("wintermute", "--emulator-time-scale", "1",  # type: ignore[operator]
                       "--emulator-decode-tps", "1", "--enable-log-requests"))
    port = int(s.wait_for(RUNNING).group(1))
    log = "".join(s.seen)
    assert re.search(r"GPU KV cache size: [\d,]+ tokens", log)
    assert "Maximum concurrency for 16,384 tokens per request:" in log
    assert "Application startup complete." in log
    status, body = s.get(port, "/v1/models")
    assert status == 200
    assert json.loads(body)["data"][0]["max_model_len"] == 16384
    # a request still generating (1 token/s) when SIGTERM arrives is cancelled
    outcome: list[object] = []
    pending = threading.Thread(target=_post, args=(port, outcome), daemon=True)
    pending.start()
    s.wait_for(re.compile(r"Received request cmpl-"))
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=15) == 0
    pending.join(timeout=10)
    assert outcome and not isinstance(outcome[0], int)  # cut off, no answer


def _post(port: int, outcome: list[object]) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", method="POST",
                                 data=b'{"prompt": "hi", "max_tokens": 50}',
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            outcome.append(r.status)
    except Exception as exc:
        outcome.append(exc)


def test_capacity_failure_exits_1_with_vllms_message() -> None:
    done = subprocess.run(_launch("wintermute", "--max-model-len", "131072"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "ValueError: To serve at least one request with the models's max seq len (131072)" \
        in done.stderr
    assert re.search(r"the estimated maximum model length is \d+\.", done.stderr)
    assert "Uvicorn running" not in done.stdout


def test_injected_start_failure_exits_1_with_the_message() -> None:
    done = subprocess.run(_launch("armitage", "--emulator-fail-at-start", "CUDA out of memory",
                                  "--emulator-slow-start", "0.1"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "RuntimeError: CUDA out of memory" in done.stderr


def test_unknown_flag_exits_2_before_anything_starts() -> None:
    done = subprocess.run(_launch("armitage", "--max-num-seq", "1"), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "unrecognized arguments: --max-num-seq" in done.stderr


def test_crash_after_n_requests_health_503_then_nonzero_exit(server: object) -> None:
    s = server(_launch("armitage", "--emulator-time-scale", "0",  # type: ignore[operator]
                       "--emulator-crash-after", "1", "--emulator-crash-linger", "2"))
    port = int(s.wait_for(RUNNING).group(1))
    outcome: list[object] = []
    _post(port, outcome)
    assert outcome == [200]
    assert s.get(port, "/health")[0] == 503
    assert s.proc.wait(timeout=15) == 1

"""Health checks against fake servers (httpx MockTransport) and fake hosts: what the table
says for healthy, wrong and unreachable servers, and GPU memory with and without nvidia-smi."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from vllmfleet import health
from vllmfleet.errors import DeployError
from vllmfleet.health import Expect
from vllmfleet.remote import CommandResult, HostAdapter, RemoteFile, ServiceStatus


def client(routes: dict[str, Any]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        answer = routes.get(f"{request.method} {request.url.path}")
        if answer is None:
            return httpx.Response(404, json={"error": {"message": "not found"}})
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    return httpx.Client(base_url="http://h", transport=httpx.MockTransport(handle))


MODELS = {"data": [{"id": "llama", "max_model_len": 16384}]}


def test_vllm_checks() -> None:
    good = client({"GET /health": {}, "GET /v1/models": MODELS})
    checks = health.vllm_checks("w", "http://h", served="llama", max_model_len=16384,
                                client=good)
    assert [(c.what, c.ok) for c in checks] == [("vllm /health", True),
                                               ("vllm /v1/models", True)]
    wrong = health.vllm_checks("w", "http://h", served="llama", max_model_len=12288,
                               client=good)
    assert wrong[1].ok is False and "max_model_len 16384, expected 12288" in wrong[1].detail
    other = health.vllm_checks("w", "http://h", served="qwen", max_model_len=1, client=good)
    assert "serves llama, not qwen" in other[1].detail
    dead = client({"GET /health": httpx.Response(503)})
    assert [c.ok for c in health.vllm_checks("w", "http://h", served="llama",
                                             max_model_len=1, client=dead)] == [False, False]


def test_serving_problems_is_the_one_served_model_check() -> None:
    lengths = health.served_lengths(MODELS)
    assert lengths == health.served_lengths(MODELS["data"]) == {"llama": 16384}
    assert health.serving_problems(lengths, served="llama", max_model_len=16384) == []
    assert health.serving_problems(lengths, served="llama", max_model_len=8192) == [
        "llama: max_model_len 16384, expected 8192"]
    assert health.serving_problems({}, served="qwen", max_model_len=1, nothing="no model",
                                   absent="lists {listed}, not {served}") == [
        "lists no model, not qwen"]
    assert health.serving_problems(lengths, served="llama", max_model_len=1, wrong=None) == []
    for bad in ({}, {"data": [{"name": "x"}]}, "text", None):
        assert health.serving_problems(health.served_lengths(bad), served="llama",
                                       max_model_len=1) == ["not a model list"]


def test_proxy_checks_need_the_key_and_every_alias_to_answer() -> None:
    routes: dict[str, Any] = {
        "GET /health/liveliness": {}, "GET /health/readiness": {},
        "GET /v1/models": {"data": [{"id": "a"}, {"id": "b"}]},
        "POST /v1/chat/completions": {"choices": [{"message": {"content": "OK"}}]},
    }
    checks = health.proxy_checks("m", "http://h", key="sk", models=["a", "b"],
                                 client=client(routes), key_hint="set K")
    assert all(c.ok for c in checks) and [c.what for c in checks][-2:] == ["alias a", "alias b"]
    missing = health.proxy_checks("m", "http://h", key="sk", models=["a", "c"],
                                  client=client(routes), key_hint="set K")
    assert "missing c" in missing[2].detail
    nokey = health.proxy_checks("m", "http://h", key=None, models=["a"],
                                client=client(routes), key_hint="set K")
    assert nokey[-1].ok is False and "set K" in nokey[-1].detail
    routes["POST /v1/chat/completions"] = httpx.Response(
        500, json={"error": {"message": "Connection error"}})
    broken = health.proxy_checks("m", "http://h", key="sk", models=["a"],
                                 client=client(routes), key_hint="")
    assert broken[-1].ok is False and "HTTP 500: Connection error" in broken[-1].detail


class FakeHost(HostAdapter):
    host, platform = "w", "linux"

    def __init__(self, result: CommandResult, state: str = "running") -> None:
        self.result, self.state = result, state

    @property
    def connection_count(self) -> int:
        return 1

    def put(self, remote_path: str, content: bytes, *, mode: int = 0o644) -> None: ...

    def read_file(self, remote_path: str) -> RemoteFile | None:
        return None

    def remove(self, remote_path: str) -> None: ...

    def run(self, command: str, *, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        return self.result

    def restart(self, *, service: Any = None) -> None: ...

    def status(self, *, service: Any = None) -> ServiceStatus:
        return ServiceStatus(service="vllm", running=self.state == "running", state=self.state,
                             detail=f"container x: {self.state}")

    def logs(self, *, lines: int = 200, service: Any = None) -> str:
        return ""

    def close(self) -> None: ...


def test_gpu_memory_from_nvidia_smi_or_na() -> None:
    ok = FakeHost(CommandResult(command="", exit_code=0, stdout="5123, 12282\n", stderr=""))
    check = health.gpu_memory("w", ok)
    assert check.ok is True and check.detail == "5123/12282 MiB (42%)"
    missing = FakeHost(CommandResult(command="", exit_code=127, stdout="",
                              stderr="bash: nvidia-smi: command not found\n"))
    check = health.gpu_memory("w", missing)
    assert check.ok is None and check.detail.startswith("n/a (bash: nvidia-smi")
    assert health.healthy([check])


def test_table_and_verdict() -> None:
    rows = [health.Check(host="w", what="vllm /health", ok=True, detail="200 in 3 ms"),
            health.Check(host="w", what="gpu memory", ok=None, detail="n/a"),
            health.Check(host="m", what="alias a", ok=False, detail="HTTP 500")]
    table = health.format_table(rows).splitlines()
    assert table[0].split() == ["HOST", "CHECK", "RESULT", "DETAIL"]
    assert table[2].split()[-2:] == ["n/a", "n/a"] and "FAIL" in table[3]
    assert not health.healthy(rows)


def test_wait_gives_up_at_once_when_the_container_exits(tmp_path: Path) -> None:
    expect = Expect(service="vllm", url="http://127.0.0.1:9", timeout_s=60)
    dead = FakeHost(CommandResult(command="", exit_code=0, stdout="", stderr=""), state="exited")
    with pytest.raises(DeployError, match=r"stopped during start-up \(container x: exited\)"):
        health.wait_healthy(dead, expect)
    alive = FakeHost(CommandResult(command="", exit_code=0, stdout="", stderr=""))
    with pytest.raises(DeployError, match="did not answer 200 within 0 s"):
        health.wait_healthy(alive, expect, timeout_s=0.2)




def test_a_long_health_wait_says_what_it_waits_for() -> None:
    """A 900 s vLLM start is not silence: the wait names the URL, the time and the state."""
    expect = Expect(service="vllm", url="http://127.0.0.1:9", timeout_s=60)
    loading = FakeHost(CommandResult(command="", exit_code=0, stdout="", stderr=""))
    said: list[str] = []
    with pytest.raises(DeployError, match="did not answer 200") as failed:
        health.wait_healthy(loading, expect, timeout_s=1.0, say=said.append, say_every_s=0.2)
    assert said, "nothing was said during the wait"
    assert all(line.startswith("waiting for vllm at http://127.0.0.1:9/health: ")
               and " of 1 s (" in line for line in said)
    assert failed.value.host == loading.host
    quiet: list[str] = []
    with pytest.raises(DeployError):
        health.wait_healthy(loading, expect, timeout_s=0.3, say=quiet.append, say_every_s=60)
    assert quiet == []

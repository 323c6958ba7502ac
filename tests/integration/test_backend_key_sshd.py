"""The backend key over the real sshd (issue 9, item 5): ``deploy_all`` installs it 0600 on
the vLLM host (the emulator, started by the docker shim from the compose ``env_file``, then
requires it on /v1) and in the proxy's env file (the real LiteLLM passes it on); a new key
is rotated on both sides in one health-gated run; a rotation that fails on a host is rolled
back there and on the proxy. The key is never in a backup or a message."""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.docker_host import DockerShim, emulate, inventory_data, write_inventory
from tests.integration.sshd import Sshd
from vllmfleet.deploy.apply import Options
from vllmfleet.deploy.run import Access, deploy_all, summary
from vllmfleet.inventory import Host, Inventory
from vllmfleet.localfleet.hosts import LocalHosts
from vllmfleet.remote import HostAdapter, adapter_for


@pytest.fixture
def hub() -> Iterator[list[LocalHosts]]:
    started: list[LocalHosts] = []
    yield started
    for hosts in started:
        hosts.close()


def _direct(inventory: Inventory, key: str | None) -> int:
    host = inventory.hosts["gpu1"]
    assert host.vllm is not None
    return httpx.get(f"http://127.0.0.1:{host.vllm.port}/v1/models", trust_env=False,
                     timeout=10, headers={"Authorization": f"Bearer {key}"} if key else {}
                     ).status_code


def _chat(inventory: Inventory, master: str) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{inventory.proxy.port}/v1/chat/completions",
                      timeout=60, trust_env=False, headers={"Authorization": f"Bearer {master}"},
                      json={"model": "chat-gpu1", "max_tokens": 2,
                            "messages": [{"role": "user", "content": "hi"}]})


def _everything(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_the_backend_key_is_installed_rotated_and_rolled_back_on_hosts_and_proxy(
        tmp_path: Path, sshd_server: Sshd, docker_shim: DockerShim,
        hub: list[LocalHosts]) -> None:
    if importlib.util.find_spec("litellm") is None:
        pytest.skip("the proxy needs `pip install -e .[proxy]`")
    data = inventory_data(tmp_path, sshd_server, ["gpu1"])
    inventory = write_inventory(tmp_path, data)
    emulate(docker_shim, inventory)
    master = "sk-" + secrets.token_urlsafe(16)
    local = LocalHosts(inventory, tmp_path / "local", key=master)
    hub.append(local)

    def adapter(host: Host) -> HostAdapter:
        if host.platform == "local":
            return local.adapter(host)
        return adapter_for(host, proxy=inventory.proxy, known_hosts=sshd_server.known_hosts)

    access = Access(factory=adapter, templates=tmp_path / "templates")
    said: list[str] = []
    first, second = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    host_file = Path(inventory.hosts["gpu1"].base_dir) / "vllm.env"
    proxy_file = tmp_path / "local" / "hub" / inventory.proxy.env_file.lstrip("/")
    proxy_file.parent.mkdir(parents=True, exist_ok=True)
    kept = f"# the operator's lines stay\n{inventory.proxy.master_key_env}={master}\nOTHER=1\n"
    proxy_file.write_text(kept)

    def run(inv: Inventory, key: str) -> list[tuple[str, str, bool | None]]:
        outcomes = deploy_all(inv, access=access, say=said.append, options=Options(
            store=tmp_path / "backups", master_key=master, backend_key=key))
        said.append(summary(outcomes))
        said.extend(o.report for o in outcomes)
        return [(o.host, o.result, o.restored) for o in outcomes]

    assert run(inventory, first) == [("gpu1", "deployed", None), ("hub", "deployed", None)]
    assert host_file.read_text() == f"VLLM_API_KEY={first}\n"
    assert host_file.stat().st_mode & 0o777 == 0o600
    assert proxy_file.read_text() == kept + f"{inventory.proxy.backend_key_env}={first}\n"
    assert proxy_file.stat().st_mode & 0o777 == 0o600
    assert _direct(inventory, None) == 401 and _direct(inventory, "wrong" * 8) == 401
    assert _direct(inventory, first) == 200
    assert _chat(inventory, master).status_code == 200

    # rotation: one run, hosts first, then the proxy; both restarted and verified
    assert run(inventory, second) == [("gpu1", "deployed", None), ("hub", "deployed", None)]
    assert _direct(inventory, first) == 401 and _direct(inventory, second) == 200
    assert f"={second}\n" in proxy_file.read_text() and first not in proxy_file.read_text()
    answer = _chat(inventory, master)
    assert answer.status_code == 200, answer.text

    # a rotation whose host change fails: the host keeps its old key (rolled back), so the
    # proxy with the new one cannot reach it, fails its verification and is rolled back too
    third = secrets.token_urlsafe(32)
    data["hosts"]["gpu1"]["vllm"]["max_model_len"] = 100000  # does not fit
    changed = write_inventory(tmp_path, data)
    assert run(changed, third) == [("gpu1", "failed", True), ("hub", "failed", True)]
    assert host_file.read_text() == f"VLLM_API_KEY={second}\n"
    assert f"={second}\n" in proxy_file.read_text()
    assert _direct(inventory, second) == 200
    assert _chat(inventory, master).status_code == 200

    stored = _everything(tmp_path / "backups")
    text = "\n".join(said)
    for key in (first, second, third):  # (the master key is the operator's line, kept)
        assert key.encode() not in stored and key not in text

"""deploy.all for real: two GPU hosts over the test sshd (containers = the vLLM emulator,
deployed in parallel, one SSH connection each), then the proxy — the real LiteLLM on this
machine as a deployable local host. A host whose new config does not fit fails and is
rolled back; the other host and the proxy still deploy, and the summary names the failure.
"""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.docker_host import (
    DockerShim,
    compose_path,
    emulate,
    inventory_data,
    write_inventory,
)
from tests.integration.sshd import Sshd
from vllmfleet.deploy.apply import Options
from vllmfleet.deploy.run import Access, deploy_all, summary
from vllmfleet.inventory import Host, Inventory
from vllmfleet.localfleet.hosts import LocalHosts
from vllmfleet.remote import HostAdapter, adapter_for


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[list[LocalHosts]]:
    started: list[LocalHosts] = []
    yield started
    for hosts in started:
        hosts.close()


def test_deploy_all_runs_gpu_hosts_in_parallel_then_the_proxy_and_reports_failures(
        tmp_path: Path, sshd_server: Sshd, docker_shim: DockerShim,
        hub: list[LocalHosts]) -> None:
    if importlib.util.find_spec("litellm") is None:
        pytest.skip("the proxy needs `pip install -e .[proxy]`")
    data = inventory_data(tmp_path, sshd_server, ["gpu1", "gpu2"])
    inventory = write_inventory(tmp_path, data)
    emulate(docker_shim, inventory)
    key = "sk-" + secrets.token_urlsafe(16)
    local = LocalHosts(inventory, tmp_path / "local", key=key)
    hub.append(local)

    def adapter(host: Host) -> HostAdapter:
        if host.platform == "local":
            return local.adapter(host)
        return adapter_for(host, proxy=inventory.proxy, known_hosts=sshd_server.known_hosts)

    access = Access(factory=adapter, templates=tmp_path / "templates")
    options = Options(store=tmp_path / "backups", master_key=key)
    said: list[str] = []

    def run(inv: Inventory) -> list[tuple[str, str, bool | None, int]]:
        outcomes = deploy_all(inv, access=access, options=options, say=said.append)
        print(summary(outcomes))
        return [(o.host, o.result, o.restored, o.connections) for o in outcomes]

    assert run(inventory) == [("gpu1", "deployed", None, 1), ("gpu2", "deployed", None, 1),
                              ("hub", "deployed", None, 0)]
    assert "[hub] proxy verified" in said  # every alias answered one token via LiteLLM
    proxy = f"http://127.0.0.1:{inventory.proxy.port}"
    answer = httpx.post(f"{proxy}/v1/chat/completions", timeout=30, trust_env=False,
                        headers={"Authorization": f"Bearer {key}"},
                        json={"model": "chat-gpu2", "max_tokens": 2,
                              "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200, answer.text

    before = compose_path(inventory.hosts["gpu1"]).read_bytes()
    data["hosts"]["gpu1"]["vllm"]["max_model_len"] = 100000  # does not fit: rolled back
    data["hosts"]["gpu2"]["vllm"]["max_model_len"] = 12288
    changed = write_inventory(tmp_path, data)
    said.clear()
    # vLLM-only changes leave every proxy file identical: the proxy is not restarted
    assert run(changed) == [("gpu1", "failed", True, 1), ("gpu2", "deployed", None, 1),
                            ("hub", "unchanged", None, 0)]
    assert compose_path(inventory.hosts["gpu1"]).read_bytes() == before
    models = httpx.get("http://127.0.0.1:{}/v1/models".format(data["hosts"]["gpu2"]["vllm"]
                                                             ["port"]), trust_env=False).json()
    assert models["data"][0]["max_model_len"] == 12288
    assert any(s.startswith("[gpu1] deploy FAILED") for s in said)

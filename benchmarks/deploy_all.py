"""deploy.all's wall time against the slowest single-host deploy, and SSH connections per host.

Runs the real flow over OpenSSH's sshd on 127.0.0.1 (the throw-away server of the
integration tests, so /usr/sbin/sshd must exist: scripts/install-os-deps), with N GPU hosts
whose "container" is the vLLM emulator behind the tests' docker shim, each start slowed by
``--slow-start`` seconds to stand in for model loading, plus the proxy (the real LiteLLM
through the local adapter). First each host is deployed alone, one after another; then a
fresh copy of the same fleet is deployed with deploy_all. Prints JSON: per-host seconds and
connections, the GPU phase of deploy_all, and the ratio to the slowest single deploy
(target <= 1.3).

    python benchmarks/deploy_all.py [--hosts 3] [--slow-start 3]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import sshd as sshd_mod  # the integration tests' helpers
from docker_host import SHIM, DockerShim, emulate, inventory_data, write_inventory

from vllmfleet.deploy.apply import Options
from vllmfleet.deploy.run import Access, deploy_all, deploy_host
from vllmfleet.inventory import Host
from vllmfleet.localfleet.hosts import LocalHosts
from vllmfleet.remote import HostAdapter, adapter_for


def _phase(phase: str, root: Path, server: Any, shim: DockerShim, state: Path,
           hosts: int, slow: str) -> Any:
    folder = root / phase
    names = [f"gpu{i}" for i in range(1, hosts + 1)]
    data = inventory_data(folder, server, names)
    for name in names:
        data["hosts"][name]["vllm"]["container_name"] = f"vllm-{phase}-{name}"
    inv = write_inventory(folder, data)
    emulate(shim, inv)
    for name in names:
        vllm = inv.hosts[name].vllm
        assert vllm is not None
        extra = json.loads((state / f"{vllm.container_name}.extra.json").read_text())
        shim.set_extra(vllm.container_name, [*extra, "--emulator-slow-start", slow])
    key = "sk-" + secrets.token_urlsafe(8)
    local = LocalHosts(inv, folder / "local", key=key)

    def factory(host: Host) -> HostAdapter:
        if host.platform == "local":
            return local.adapter(host)
        return adapter_for(host, proxy=inv.proxy, known_hosts=server.known_hosts)

    access = Access(factory=factory, templates=folder / "templates")
    options = Options(store=folder / "backups", master_key=key)
    try:
        if phase == "single":
            rows = []
            for name in names:
                started = time.monotonic()
                out = deploy_host(inv, name, access=access, options=options, say=lambda m: None)
                rows.append({"host": name, "seconds": round(time.monotonic() - started, 2),
                             "result": out.result, "ssh_connections": out.connections})
            return rows
        started = time.monotonic()
        outs = deploy_all(inv, access=access, options=options, say=lambda m: None)
        total = time.monotonic() - started
        proxy = outs[-1]
        return {"total_s": round(total, 2), "proxy_s": round(proxy.seconds, 2),
                "gpu_phase_s": round(total - proxy.seconds, 2),
                "hosts": [{"host": o.host, "result": o.result, "seconds": round(o.seconds, 2),
                           "ssh_connections": o.connections} for o in outs]}
    finally:
        local.close()
        shim.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3, help="GPU hosts (default 3)")
    parser.add_argument("--slow-start", default="3", help="emulated model load, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vllmfleet-bench-") as tmp:
        root = Path(tmp)
        server = sshd_mod.start_sshd(root / "sshd")
        state = root / "docker"
        state.mkdir()
        script = server.bin_dir / "docker"
        script.write_text(f'#!/bin/sh\nexec {sys.executable} {SHIM} --state {state} "$@"\n')
        script.chmod(0o755)
        shim = DockerShim(state=state)
        try:
            single = _phase("single", root, server, shim, state, args.hosts, args.slow_start)
            every = _phase("all", root, server, shim, state, args.hosts, args.slow_start)
        finally:
            script.unlink()
            server.stop()
    slowest = max(row["seconds"] for row in single)
    print(json.dumps({"single": single, "all": every,
                      "ratio_gpu_phase_vs_slowest_single": round(every["gpu_phase_s"] / slowest,
                                                                 3)}, indent=1))


if __name__ == "__main__":
    main()

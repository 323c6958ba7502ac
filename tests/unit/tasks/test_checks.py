"""The Invoke tasks as a user runs them: `inv …` in a subprocess, exit codes and output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REFERENCE, TEMPLATES, run_inv


def test_list_shows_the_checks_with_help() -> None:
    out = run_inv("--list").stdout
    for name in ("validate", "plan", "render"):
        assert f"  {name} " in out, out


def test_validate_passes_on_the_shipped_inventory() -> None:
    result = run_inv("validate")
    assert result.returncode == 0, result.stderr
    assert "valid: 3 hosts (2 vLLM), 3 aliases, 2 models, 0 warning(s)" in result.stdout


def test_validate_reports_a_broken_inventory_without_traceback(tmp_path: Path) -> None:
    text = REFERENCE.read_text()
    bad = tmp_path / "fleet.yaml"
    bad.write_text(text.replace("max_num_seqs: 2", "max_num_seq: 2"))
    result = run_inv("validate", "--inventory", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "hosts.wintermute.vllm.max_num_seq" in result.stderr
    assert "did you mean 'max_num_seqs'?" in result.stderr


def test_inventory_comes_from_the_environment(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = run_inv("validate", env={"INVOKE_VLLMFLEET_INVENTORY": str(missing)})
    assert result.returncode == 1
    assert str(missing) in result.stderr and "not found" in result.stderr


def test_plan_shows_both_gpu_hosts() -> None:
    result = run_inv("plan")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wintermute" in result.stdout and "armitage" in result.stdout
    assert "motoko" not in result.stdout  # the proxy host has no GPU to plan


def test_plan_rejects_an_unknown_host() -> None:
    result = run_inv("plan", "--host", "wintermut")
    assert result.returncode == 2
    assert "'wintermut' is not one of the inventory's vLLM hosts" in result.stderr


@pytest.mark.parametrize("host", ["wintermute", "armitage", "motoko"])
def test_render_writes_every_file_of_a_host(tmp_path: Path, host: str) -> None:
    result = run_inv("render", "--out", str(tmp_path), "--host", host)
    assert result.returncode == 0, result.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written, result.stdout
    assert all(str(p) in result.stdout for p in written)


def test_validate_with_litellm_loads_the_rendered_proxy_config() -> None:
    done = run_inv("validate", "--litellm", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LiteLLM here loads the rendered proxy config" in done.stdout


def test_render_with_litellm_fails_on_a_config_litellm_cannot_load(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    config = templates / "litellm_config.yaml.j2"
    # valid YAML (the last model_list wins), but not a config LiteLLM can load
    config.write_text(config.read_text(encoding="utf-8") + "\nmodel_list: 42\n",
                      encoding="utf-8")
    inventory = tmp_path / "fleet.yaml"
    shutil.copyfile(REFERENCE, inventory)
    done = run_inv("render", "--litellm", "--inventory", str(inventory), "--out",
                   str(tmp_path / "out"), timeout=240)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "LiteLLM cannot load the rendered proxy config" in done.stdout + done.stderr

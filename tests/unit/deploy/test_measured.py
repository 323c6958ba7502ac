"""deploy.measured: vLLM's start-up figures kept per host, compared and calibrated on."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import run_inv
from vllmfleet.deploy import measured
from vllmfleet.errors import DeployError
from vllmfleet.inventory import Inventory
from vllmfleet.inventory.plan import input_for
from vllmfleet.vllm.capacity import estimate
from vllmfleet.vllm.capacity_report import format_table

# what a start of wintermute logged (v0.11 wording), with a KV cache 0.4 GiB smaller than
# the planner predicts for it
LOG = """\
(EngineCore_DP0 pid=1) INFO [gpu_model_runner.py:2653] Model loading took 5.3700 GiB memory and 3.1 seconds
(EngineCore_DP0 pid=1) INFO [gpu_worker.py:298] Available KV cache memory: 4.72 GiB
(EngineCore_DP0 pid=1) INFO [kv_cache_utils.py:1087] GPU KV cache size: 77,328 tokens
(EngineCore_DP0 pid=1) INFO [kv_cache_utils.py:1091] Maximum concurrency for 16,384 tokens per request: 4.72x
"""  # noqa: E501


def test_record_keeps_the_newest_last(tmp_path: Path, reference: Inventory) -> None:
    host = reference.hosts["wintermute"]
    m = measured.from_log(LOG, host)
    assert m is not None and m.figures.kv_cache_tokens == 77328 and m.max_model_len == 16384
    for _ in range(measured.KEEP + 3):
        measured.record(tmp_path, m)
    assert len(measured.history(tmp_path, "wintermute")) == measured.KEEP
    assert measured.last(tmp_path, "wintermute") == m
    assert measured.last(tmp_path, "armitage") is None
    assert measured.from_log("INFO Uvicorn running", host) is None


def test_a_corrupt_file_is_named(tmp_path: Path) -> None:
    (tmp_path / measured.FOLDER).mkdir()
    (tmp_path / measured.FOLDER / "wintermute.json").write_text("{not json")
    with pytest.raises(DeployError, match=r"wintermute\.json: not a readable measurement"):
        measured.history(tmp_path, "wintermute")


def test_calibration_uses_the_measured_non_kv_memory(tmp_path: Path,
                                                     reference: Inventory) -> None:
    host = reference.hosts["wintermute"]
    m = measured.from_log(LOG, host)
    assert m is not None
    measured.record(tmp_path, m)
    inp = input_for(reference, "wintermute")
    got = measured.last_comparable(tmp_path, host, inp)
    assert got is not None and got.calibrated is not None
    non_kv = 12 * 0.92 - 4.72
    assert got.calibrated.kv_budget_gib == pytest.approx(12 * 0.92 - non_kv)
    # another length on the same V1 engine: the same non-KV memory, a longer request
    longer = measured.last_comparable(tmp_path, host, replace(inp, max_model_len=32768))
    assert longer is not None and longer.calibrated is not None
    assert longer.calibrated.kv_budget_gib == pytest.approx(4.72)
    assert longer.calibrated.max_concurrency == pytest.approx(4.72 * 2**30 / 65536 / 32768,
                                                             abs=0.01)
    # another image: not comparable
    other = replace(host, vllm=replace(host.vllm, image="vllm/vllm-openai:v0.14.0"))
    assert measured.last_comparable(tmp_path, other, inp) is None
    text = format_table([("wintermute", estimate(inp))], {"wintermute": got})
    assert "measured at the last start" in text and "4.72 GiB" in text
    assert "calibrated on that start" in text


def test_inv_plan_shows_measured_beside_predicted(tmp_path: Path, reference: Inventory) -> None:
    m = measured.from_log(LOG, reference.hosts["wintermute"])
    assert m is not None
    measured.record(tmp_path, m)
    env = {"INVOKE_VLLMFLEET_BACKUPS_DIR": str(tmp_path)}
    out = run_inv("plan", "--host", "wintermute", env=env)
    assert out.returncode == 0, out.stderr
    assert "measured at the last start" in out.stdout and "77,328" in out.stdout
    data = json.loads(run_inv("plan", "--host", "wintermute", "--json", env=env).stdout)
    assert data["hosts"][0]["measured"]["kv_cache_gib"] == 4.72

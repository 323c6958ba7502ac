"""deploy.fit without a host: a fake deploy answers as vLLM would (the emulator's start-up
checks on the inventory's card), so every branch of the search is exercised quickly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REFERENCE
from vllmfleet.deploy import fit, measured
from vllmfleet.deploy.apply import Outcome
from vllmfleet.emulator import startup
from vllmfleet.emulator.config import EmulatorConfig, GPUFacts
from vllmfleet.errors import DeployError
from vllmfleet.inventory import Inventory, load


def vllm_like(store: Path, *, free_gib: float | None = None, graph_oom: bool = False,
              estimate: bool = True) -> Any:
    """A deploy that starts the config the way the emulator (vLLM's rules) would."""
    def deploy(inv: Inventory, name: str) -> Outcome:
        host = inv.hosts[name]
        assert host.vllm is not None and host.gpu is not None
        model = inv.model_of(host)
        v = host.vllm
        cfg = EmulatorConfig(
            model="m", served_model_names=("m",), max_model_len=v.max_model_len,
            max_num_seqs=v.max_num_seqs, gpu_memory_utilization=v.gpu_memory_utilization,
            kv_cache_dtype=v.kv_cache_dtype, gpu=GPUFacts(vram_gib=host.gpu.vram_gib,
                                                          reserved_gib=host.gpu.reserved_gib),
            architecture=model.architecture, weights_gib=model.weights_gib["awq"],
            version=v.image.rsplit(":v", 1)[1])
        if free_gib is not None and v.gpu_memory_utilization * host.gpu.vram_gib > free_gib:
            message = (f"Free memory on device cuda:0 ({free_gib}/{host.gpu.vram_gib} GiB) on "
                       f"startup is less than desired GPU memory utilization "
                       f"({v.gpu_memory_utilization}, 11.04 GiB).")
            return Outcome(host=name, action="deploy", services=("vllm",), result="failed",
                           report=message)
        if graph_oom:
            return Outcome(host=name, action="deploy", services=("vllm",), result="failed",
                           report="Capturing CUDA graphs (decode, FULL): 40%\n"
                                  "torch.OutOfMemoryError: CUDA out of memory.")
        checked = startup.capacity(cfg)
        if checked.error is not None:
            text = checked.error.message
            if not estimate:
                text = text.split(" Based on")[0]
            return Outcome(host=name, action="deploy", services=("vllm",), result="failed",
                           report=text)
        found = measured.from_log("\n".join(checked.log_lines), host)
        assert found is not None
        measured.record(store, found)
        return Outcome(host=name, action="deploy", services=("vllm",), result="deployed")
    return deploy


@pytest.fixture
def reference(reference_v011: Inventory) -> Inventory:
    """These tests walk the search of versions before auto-fit (vLLM 0.11)."""
    return reference_v011


def run(reference: Inventory, store: Path, **kw: Any) -> fit._Fit:
    return fit._Fit(reference, "wintermute", deploy=vllm_like(store, **kw), store=store,
                    say=lambda m: None)


def test_old_version_reads_the_estimate_and_confirms_it(reference: Inventory,
                                                        tmp_path: Path) -> None:
    f = run(reference, tmp_path)
    fits, tokens, util = f.search()
    assert [p.max_model_len for p in f.probes] == [131072, fits]
    assert not f.probes[0].started and f.probes[1].started
    assert tokens == fits and util == 0.92
    pin = f.pin(fits, tokens)
    assert pin == fits // 2 // 256 * 256                      # room for max_num_seqs 2
    changes = f.changes(pin, util)
    assert changes[("hosts", "wintermute", "vllm", "max_model_len")] == pin
    base = changes[("aliases", "llama31-8b-wintermute", "max_input_tokens")]
    burst = changes[("aliases", "llama31-8b-wintermute-burst", "max_input_tokens")]
    assert 0.80 * pin <= base < burst <= 0.95 * pin           # shares kept, burst >= base


def test_auto_fit_starts_once(reference: Inventory, tmp_path: Path) -> None:
    host = reference.hosts["wintermute"]
    assert host.vllm is not None
    newer = replace(reference, hosts={**reference.hosts, "wintermute": replace(
        host, vllm=replace(host.vllm, image="vllm/vllm-openai:v0.14.0"))})
    f = fit._Fit(newer, "wintermute", deploy=vllm_like(tmp_path), store=tmp_path,
                 say=lambda m: None)
    fits, _, _ = f.search()
    assert [p.max_model_len for p in f.probes] == [fit.AUTO]
    assert f.probes[0].figures is not None and f.probes[0].figures.auto_fit_to == fits


def test_free_memory_lowers_the_utilisation(reference: Inventory, tmp_path: Path) -> None:
    f = run(reference, tmp_path, free_gib=10.5)
    _, _, util = f.search()
    assert util == pytest.approx(0.86)                        # floor(10.5/12 x 100)/100 - .01
    assert f.probes[0].refused is not None and f.probes[0].refused.kind == "free-memory"


def test_without_an_estimate_the_ladder_descends(reference: Inventory, tmp_path: Path) -> None:
    f = run(reference, tmp_path, estimate=False)
    f.search()
    lengths = [p.max_model_len for p in f.probes]
    assert lengths[:2] == [131072, 98304] and f.probes[-1].started


def test_graph_oom_is_a_choice_and_nothing_fits_is_said(reference: Inventory,
                                                        tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"A choice: lower .*enforce_eager"):
        run(reference, tmp_path, graph_oom=True).search()
    with pytest.raises(DeployError, match="leaves under 256 tokens"):
        run(reference, tmp_path).pin(300, 300)


def test_dry_run_plans_without_starting(reference: Inventory) -> None:
    current = load(REFERENCE)  # vLLM 0.32: auto-fit, one start
    assert "start once with --max-model-len auto" in fit.plan_only(current, "wintermute")
    text = fit.plan_only(reference, "wintermute")
    assert "nothing is started" in text and "vLLM's estimate" in text
    with pytest.raises(DeployError, match="'motoko' is not a vLLM host"):
        fit.plan_only(reference, "motoko")

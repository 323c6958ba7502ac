"""The emulator prints the start-up lines of the version it emulates, auto-fit included, and
vllm.startup_log reads them back to the figures the planner computed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vllmfleet.emulator import startup
from vllmfleet.emulator.config import EmulatorConfig, GPUFacts
from vllmfleet.vllm.architecture import Architecture
from vllmfleet.vllm.startup_log import parse, refusal

LLAMA = Architecture(layers=32, kv_heads=8, head_dim=128, hidden_size=4096,
                     intermediate_size=14336, vocab_size=128256, max_position_embeddings=131072)
CARD = EmulatorConfig(model="llama", served_model_names=("llama",), max_model_len=16384,
                      max_num_seqs=2, gpu_memory_utilization=0.92, kv_cache_dtype="fp8",
                      gpu=GPUFacts(vram_gib=12, reserved_gib=0.5), architecture=LLAMA,
                      weights_gib=5.37, version="0.11.0")


def _log(cfg: EmulatorConfig) -> str:
    checked = startup.capacity(cfg)
    assert checked.error is None, checked.error
    return "\n".join([startup.weights_line(cfg, 3.2), *checked.log_lines])


@pytest.mark.parametrize(("version", "weights", "lines"), [
    ("0.10.2", "Model loading took 5.3700 GiB and", 2),
    ("0.11.0", "Model loading took 5.3700 GiB memory and", 2),
    ("0.19.0", "Model loading took 5.37 GiB memory and", 2),
    ("0.32.0", "Model loading took 5.37 GiB memory and", 1),
])
def test_each_version_prints_its_own_wording(version: str, weights: str, lines: int) -> None:
    cfg = replace(CARD, version=version)
    text = _log(cfg)
    assert weights in text
    kv_lines = [line for line in text.splitlines() if "KV cache size" in line
                or "Maximum concurrency" in line]
    assert len(kv_lines) == lines
    figures = parse(text)
    checked = startup.capacity(cfg)
    assert figures.kv_cache_tokens == checked.kv_capacity_tokens
    assert figures.weights_gib == pytest.approx(5.37)
    assert figures.concurrency_len == 16384 and figures.max_concurrency


def test_v0_prints_blocks() -> None:
    text = _log(replace(CARD, version="0.6.4"))
    assert "Loading model weights took 5.3700 GB" in text and "# GPU blocks:" in text
    assert parse(text).kv_cache_tokens == startup.capacity(replace(CARD, version="0.6.4")
                                                           ).kv_capacity_tokens


@pytest.mark.parametrize("version", ["0.14.0", "0.32.0"])
def test_auto_fit_reduces_and_says_so(version: str) -> None:
    cfg = replace(CARD, version=version, max_model_len=startup.AUTO)
    checked = startup.capacity(cfg)
    assert checked.error is None and checked.max_model_len is not None
    assert checked.max_model_len < LLAMA.max_position_embeddings
    figures = parse("\n".join(checked.log_lines))
    assert (figures.auto_fit_from, figures.auto_fit_to) == (131072, checked.max_model_len)
    assert figures.max_concurrency == pytest.approx(1.0, abs=0.01)   # the pool for one request


def test_auto_fit_full_context_and_refusals() -> None:
    short = replace(CARD, version="0.14.0", max_model_len=startup.AUTO,
                    architecture=replace(LLAMA, max_position_embeddings=8192))
    full = parse("\n".join(startup.capacity(short).log_lines))
    assert full.auto_fit_full == 8192 and full.auto_fit_to is None
    old = startup.capacity(replace(CARD, max_model_len=startup.AUTO))          # 0.11
    assert old.error is not None and "invalid value 'auto'" in old.error.message
    starved = startup.capacity(replace(CARD, version="0.14.0", max_model_len=startup.AUTO,
                                       gpu_memory_utilization=0.46))
    assert starved.error is not None
    r = refusal(starved.error.message)
    assert r is not None and r.kind == "cannot-auto-fit"


def test_a_length_that_does_not_fit_quotes_vllms_estimate() -> None:
    checked = startup.capacity(replace(CARD, max_model_len=131072))
    assert checked.error is not None
    r = refusal(checked.error.message)
    assert r is not None and r.kind == "kv-too-small"
    assert r.estimated_max_model_len == startup.capacity(
        replace(CARD, version="0.14.0", max_model_len=startup.AUTO)).max_model_len


@pytest.mark.parametrize("value", ["auto", "-1"])
def test_the_cli_takes_auto(value: str) -> None:
    from vllmfleet.emulator import cli

    cfg = cli.parse(["--model", "m", "--max-model-len", value])
    assert cfg.max_model_len == startup.AUTO

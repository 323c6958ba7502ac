"""The emulator's command line: vLLM's flags as `vllm serve` takes them, and its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmfleet.emulator import parse

BASE = ["--model", "org/m", "--max-model-len", "4096"]


def _rejected(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_unknown_flag_is_rejected_like_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    err = _rejected([*BASE, "--max-model-length", "4096"], capsys)
    assert "unrecognized arguments: --max-model-length" in err


def test_abbreviated_flag_is_not_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert "unrecognized arguments" in _rejected([*BASE, "--max-num-s", "2"], capsys)


@pytest.mark.parametrize(("flag", "value"), [("--kv-cache-dtype", "fp9"),
                                             ("--quantization", "awq-marlin"),
                                             ("--dtype", "fp17")])
def test_invalid_choice_is_rejected(flag: str, value: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert f"argument {flag}" in _rejected([*BASE, flag, value], capsys)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "0", "-5", "0.4", "0k", "lots"])
def test_max_model_len_out_of_range_is_an_argparse_error(value: str,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    err = _rejected(["--model", "org/m", f"--max-model-len={value}"], capsys)
    assert f"argument --max-model-len: invalid max model length {value!r}" in err
    assert "Traceback" not in err


def test_every_listed_vllm_flag_is_accepted() -> None:
    cfg = parse([
        "--model", "org/m", "--served-model-name", "a", "b", "--host", "127.0.0.1",
        "--port", "8001", "--max-model-len", "16k", "--max-num-seqs", "4",
        "--max-num-batched-tokens", "2048", "--gpu-memory-utilization", "0.85",
        "--kv-cache-dtype", "fp8_e5m2", "--quantization", "awq", "--tensor-parallel-size", "1",
        "--enforce-eager", "--dtype", "half", "--trust-remote-code", "--download-dir", "/d",
        "--disable-log-requests", "--api-key", "k1", "--uvicorn-log-level", "warning",
        "--generation-config", "vllm", "--chat-template", "t.jinja", "--seed", "0",
        "--enable-prefix-caching", "--swap-space", "4", "--no-enable-chunked-prefill"])
    assert cfg.served_model_names == ("a", "b")
    assert (cfg.max_model_len, cfg.port, cfg.api_keys) == (16000, 8001, ("k1",))
    assert cfg.enforce_eager and cfg.log_level == "warning"


@pytest.mark.parametrize("argv", [
    ["serve", "org/m", "--max-model-len", "4096"],
    ["org/m", "--max-model-len", "4096"],
    ["--model=org/m", "--max_model_len=4096"],
    ["--model", "org/m", "--max_model_len", "4096"],
])
def test_model_positional_equals_and_underscore_forms(argv: list[str]) -> None:
    cfg = parse(argv)
    assert (cfg.model, cfg.served_model_names, cfg.max_model_len) == ("org/m", ("org/m",), 4096)


def test_config_file_supplies_flags(tmp_path: Path) -> None:
    config = tmp_path / "vllm.yaml"
    config.write_text("model: org/m\nmax_model_len: 2048\nenforce_eager: true\n"
                      "served_model_name: [x, y]\n")
    cfg = parse(["--config", str(config)])
    assert (cfg.model, cfg.max_model_len, cfg.enforce_eager) == ("org/m", 2048, True)
    assert cfg.served_model_names == ("x", "y")


def test_without_a_model_config_max_model_len_is_required(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert "--max-model-len" in _rejected(["--model", "org/m"], capsys)


def test_gpu_without_architecture_names_the_missing_flags(
        capsys: pytest.CaptureFixture[str]) -> None:
    err = _rejected([*BASE, "--emulator-gpu-vram-gib", "12", "--emulator-layers", "32"], capsys)
    assert "--emulator-kv-heads" in err and "--emulator-weights-gib" in err


def test_the_emulator_takes_no_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    # GPU and model facts arrive as --emulator-… flags (vllmfleet.localfleet.facts)
    err = _rejected([*BASE, "--emulator-inventory", "configs/fleet.yaml",
                     "--emulator-host", "wintermute"], capsys)
    assert "unrecognized arguments: --emulator-inventory" in err


def test_bad_emulator_version_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "MAJOR.MINOR" in _rejected([*BASE, "--emulator-vllm-version", "latest"], capsys)


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "from-env")
    assert parse(BASE).api_keys == ("from-env",)
    assert parse([*BASE, "--api-key", "flag"]).api_keys == ("flag",)

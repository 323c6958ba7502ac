"""The pinned vLLM version decides which flags an inventory may use (``inv validate``)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REFERENCE
from vllmfleet.errors import InventoryError, Problem
from vllmfleet.inventory import parse

TEXT = REFERENCE.read_text(encoding="utf-8")
IMAGE = re.search(r"image: (vllm/vllm-openai:\S+)", TEXT)
assert IMAGE is not None


def _wintermute(image: str, extra: str | None = None) -> str:
    """The reference fleet with wintermute pinned to ``image`` and given ``extra_args``."""
    text = TEXT.replace(f"image: {IMAGE[1]}", f"image: {image}", 1)
    if extra is not None:
        text = text.replace("      tensor_parallel_size: 1\n",
                            f"      tensor_parallel_size: 1\n      extra_args: {extra}\n", 1)
    return text


def _problems(text: str) -> list[Problem]:
    try:
        return parse(text, file="fleet.yaml").warnings
    except InventoryError as exc:
        return exc.problems


@pytest.mark.parametrize("extra", ['["--max-num-queued-reqs", "6"]',
                                   '["--max-num-queued-reqs=6"]',
                                   '["--enforce-eager", "--max-num-queued-tokens", "9000"]'])
def test_a_flag_the_pinned_version_lacks_is_refused(extra: str) -> None:
    text = _wintermute("vllm/vllm-openai:v0.11.0", extra)
    with pytest.raises(InventoryError) as info:
        parse(text, file="fleet.yaml")
    (problem,) = [p for p in info.value.problems if p.path == "hosts.wintermute.vllm.extra_args"]
    assert "does not exist in vLLM 0.11.0" in problem.message
    assert "vllm/vllm-openai:v0.11.0" in problem.message
    assert "from vLLM 0.29.0" in problem.message and "PR #49445" in problem.message
    assert "pin vllm/vllm-openai:v0.29.0 or later" in problem.fix
    assert problem.line == text[:text.index("extra_args:")].count("\n") + 1


def test_max_model_len_auto_needs_0_14() -> None:
    problems = _problems(_wintermute("vllm/vllm-openai:v0.11.0",
                                     '["--max-model-len", "auto"]'))
    assert any("--max-model-len auto does not exist in vLLM 0.11.0" in p.message
               for p in problems if p.severity == "error")


@pytest.mark.parametrize("image", ["vllm/vllm-openai:v0.32.0", "vllm/vllm-openai:v0.29.1"])
def test_the_same_flag_is_fine_where_it_exists(image: str) -> None:
    problems = _problems(_wintermute(image, '["--max-num-queued-reqs", "6"]'))
    assert not [p for p in problems if p.path.startswith("hosts.wintermute.vllm")]


def test_flags_the_table_does_not_know_are_left_alone() -> None:
    problems = _problems(_wintermute("vllm/vllm-openai:v0.11.0", '["--enable-prefix-caching"]'))
    assert not [p for p in problems if p.path.startswith("hosts.wintermute.vllm")]


@pytest.mark.parametrize(("image", "says"), [
    ("vllm/vllm-openai:nightly", "names no vLLM version"),
    ("vllm/vllm-openai:v0.40.0", "outside the versions vllmfleet knows"),
    ("vllm/vllm-openai:v0.4.2", "outside the versions vllmfleet knows"),
])
def test_an_unknown_version_is_a_warning(image: str, says: str) -> None:
    warnings = [p for p in _problems(_wintermute(image))
                if p.path == "hosts.wintermute.vllm.image"]
    assert [p.severity for p in warnings] == ["warning"]
    assert says in warnings[0].message and warnings[0].fix


def test_the_0_11_test_fleet_stays_valid_and_emulates_0_11() -> None:
    from tests.conftest import ROOT
    from vllmfleet.inventory import load
    from vllmfleet.localfleet.facts import emulator_facts

    old = load(ROOT / "tests" / "fleets" / "fleet-v0.11.yaml")
    assert not old.warnings
    flags = emulator_facts(old, "wintermute")
    assert flags[flags.index("--emulator-vllm-version") + 1] == "0.11.0"

"""inventory.edit: values change, comments and layout stay."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REFERENCE
from vllmfleet.errors import InventoryError
from vllmfleet.inventory import load
from vllmfleet.inventory.edit import edited, write

MML = ("hosts", "wintermute", "vllm", "max_model_len")


def test_only_the_changed_values_differ(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    shutil.copy(REFERENCE, path)
    new, diff = edited(path, {MML: 8192,
                              ("aliases", "llama31-8b-wintermute", "max_input_tokens"): 7000,
                              ("aliases", "llama31-8b-wintermute-burst", "max_input_tokens"):
                              7100})
    changed = [line for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [
        "-      max_model_len: 16384         # OOM ladder: 16384 -> 12288 -> 8192",
        "+      max_model_len: 8192          # OOM ladder: 16384 -> 12288 -> 8192",
        "-    max_input_tokens: 14000",
        "+    max_input_tokens: 7000",
        "-    max_input_tokens: 15000",
        "+    max_input_tokens: 7100",
    ]
    old_lines, new_lines = REFERENCE.read_text().splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    assert [c for c in old_lines if "#" in c and "max_model_len" not in c] == \
        [c for c in new_lines if "#" in c and "max_model_len" not in c]
    write(path, new)
    assert load(path).hosts["wintermute"].vllm.max_model_len == 8192  # type: ignore[union-attr]


def test_a_key_that_is_not_there_is_named(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"hosts\.nowhere\.vllm\.max_model_len"):
        edited(REFERENCE, {("hosts", "nowhere", "vllm", "max_model_len"): 1})
    with pytest.raises(InventoryError, match="not set in the file"):
        edited(REFERENCE, {("hosts", "wintermute", "vllm", "max_num_batched_tokens"): 1})

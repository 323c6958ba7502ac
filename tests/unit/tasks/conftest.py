"""Fixtures of the task tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture
def clean_invoke_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user config file, no INVOKE_* settings, no running `inv` leak into a test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in [n for n in os.environ if n.startswith("INVOKE_")]:
        monkeypatch.delenv(name)
    monkeypatch.delitem(sys.modules, "invoke.main", raising=False)

"""What every test folder shares: the repository's paths, the reference inventory, ``inv``.

- ``ROOT``, ``REFERENCE`` (configs/fleet.yaml, the reference fleet), ``TEMPLATES``
  (configs/templates) and ``GOLDEN`` (tests/golden): import them, never derive them from
  ``__file__``.
- ``reference``: the reference inventory, loaded once per session. An :class:`Inventory` is
  frozen; tests that need a variant make one with ``dataclasses.replace`` (never mutate it).
- :func:`run_inv`: the Invoke tasks as a user runs them (``inv …`` in a subprocess of this
  venv's Python, tasks found from the repository root), with cwd and environment to choose.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from vllmfleet.inventory import Inventory, load

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "configs" / "fleet.yaml"
TEMPLATES = ROOT / "configs" / "templates"
FLEET_V011 = ROOT / "tests" / "fleets" / "fleet-v0.11.yaml"
GOLDEN = ROOT / "tests" / "golden"
INV = (sys.executable, "-m", "invoke", "--search-root", str(ROOT))


def run_inv(*args: str, env: Mapping[str, str] | None = None, cwd: Path = ROOT,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``inv *args`` (this venv's Invoke on the repository's tasks.py) and capture its
    output as text; ``env`` is added to this process's environment."""
    return subprocess.run([*INV, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def reference() -> Inventory:
    """The reference inventory (configs/fleet.yaml), loaded once for the session."""
    return load(REFERENCE)


@pytest.fixture(scope="session")
def reference_v011() -> Inventory:
    """The reference fleet pinned to vLLM 0.11.0 (tests/fleets/fleet-v0.11.yaml): the
    behaviour of versions before auto-fit and the clamp-era length rules."""
    return load(FLEET_V011)

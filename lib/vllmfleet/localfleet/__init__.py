"""The local fleet on 127.0.0.1: an engine per vLLM host (the emulator or the real vLLM) and
the real LiteLLM proxy.

==========  =======================================================================================
fleet       :func:`up`, :func:`down`, :func:`status` (``inv fleet.*``)
processes   starting, health-waiting and stopping processes we started (by PID and start time)
state       ``state.json``: what runs where, the 0600 master key, the per-folder lock
facts       an inventory host's GPU and model as the emulator's ``--emulator-…`` flags
engines     how each host's engine starts: the emulator, or the real vLLM (CPU build)
tinymodel   a tiny random-weight Llama for the real vLLM, generated (nothing downloaded)
hosts       the inventory as deployable local hosts (deploy/rollback without SSH)
==========  =======================================================================================
"""

from __future__ import annotations

from vllmfleet.localfleet.engines import ENGINES, VLLM_VERSION, Engine, vllm_venv
from vllmfleet.localfleet.fleet import (
    DEFAULT_BUILD_DIR,
    SPEED_RANGE,
    ComponentStatus,
    FleetStatus,
    Progress,
    down,
    status,
    up,
)
from vllmfleet.localfleet.state import FleetState, Process

__all__ = [
    "DEFAULT_BUILD_DIR",
    "ENGINES",
    "SPEED_RANGE",
    "VLLM_VERSION",
    "ComponentStatus",
    "Engine",
    "FleetState",
    "FleetStatus",
    "Process",
    "Progress",
    "down",
    "status",
    "up",
    "vllm_venv",
]

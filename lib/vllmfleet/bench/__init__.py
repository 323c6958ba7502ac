"""Capacity sweeps: how many concurrent streams a host (or an alias through the proxy) serves
within latency targets, and the reports that say so.

=========  ========================================================================================
slo        :class:`SLO` (TTFT / ITL / E2E at a percentile, error budget, 429s apart), the verdict
sweep      :func:`sweep`: doubling, then bisecting; early stop on saturation; time and request
           bounds
runner     :func:`target` from the inventory, :func:`load_for` (sizes from its limits),
           :func:`run_sweep` (exact-size prompts, streamed requests)
report     JSON, CSV and the terminal summary; html: the self-contained HTML page (inline SVG)
=========  ========================================================================================
"""

from __future__ import annotations

from vllmfleet.bench.report import summary, write
from vllmfleet.bench.runner import Load, Target, alias_of, load_for, run_sweep, target
from vllmfleet.bench.slo import SLO
from vllmfleet.bench.sweep import Bounds, Step, Sweep, sweep

__all__ = ["SLO", "Bounds", "Load", "Step", "Sweep", "Target", "alias_of", "load_for",
           "run_sweep", "summary", "sweep", "target", "write"]

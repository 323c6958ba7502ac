"""The reports of a capacity sweep: JSON, CSV, a self-contained HTML page, a terminal summary.

:func:`write` puts three files in the artifacts folder, named after the target
(``capacity_wintermute.json``, ``.csv``, ``.html``; ``capacity_proxy_<alias>…`` through the
proxy):

- JSON: the target, request sizes, SLO, bounds, the answer (``capacity``, ``stop_reason``)
  and every step with its percentiles (E2E, TTFT, ITL, TPOT), 429s and errors counted
  apart, throughput and the client's own overhead (work per request, loop lag);
- CSV: one row per step, the same figures in columns (times in seconds);
- HTML: :mod:`vllmfleet.bench.html` (inline SVG plots, nothing fetched).

:func:`summary` is the terminal's version: a table of the steps and the answer in one line.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from vllmfleet.bench.html import render
from vllmfleet.bench.runner import Load, Target
from vllmfleet.bench.sweep import Sweep
from vllmfleet.tables import table

CSV_COLUMNS: tuple[str, ...] = (
    "concurrency", "phase", "meets_slo", "requests", "ok", "errors", "rate_limited_429",
    "throughput_rps", "output_tokens_per_s", "e2e_p50", "e2e_p90", "e2e_p99", "ttft_p50",
    "ttft_p90", "ttft_p99", "itl_p50", "itl_p90", "itl_p99", "tpot_p50", "tpot_p90",
    "peak_running", "peak_waiting", "client_work_p50", "loop_lag_p90", "problems",
)


def stem(goal: Target) -> str:
    name = goal.name if goal.kind == "direct" else f"proxy_{goal.name}"
    return "capacity_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def document(sweep: Sweep, goal: Target, load: Load, **meta: Any) -> dict[str, Any]:
    """Everything the reports show, as one JSON-ready dict."""
    return {
        **meta,
        "target": {"kind": goal.kind, "name": goal.name, "host": goal.host, "url": goal.url,
                   "model": goal.model},
        "load": {"input_tokens": load.input_tokens, "output_tokens": load.output_tokens,
                 "streamed": True},
        "slo": sweep.slo.as_dict(),
        "bounds": {"start": sweep.bounds.start, "max_concurrency": sweep.bounds.max_concurrency,
                   "max_requests": sweep.bounds.max_requests,
                   "max_seconds": sweep.bounds.max_seconds},
        "capacity": sweep.capacity,
        "capacity_exact": sweep.exact,  # false: a lower bound (stopped before a step missed)
        "stop_reason": sweep.stop_reason,
        "requests": sweep.requests,
        "wall_s": sweep.wall_s,
        "percentiles": "a percentile q needs at least 1/(1-q) samples (P50: 2, P90: 10, "
                       "P99: 100); below that it is null",
        "steps": [s.as_dict() for s in sweep.steps],
    }


def _row(step: dict[str, Any]) -> dict[str, Any]:
    row = {k: step[k] for k in ("concurrency", "phase", "meets_slo", "requests", "ok",
                                "errors", "rate_limited_429", "peak_running", "peak_waiting")}
    row["throughput_rps"] = f"{step['throughput_rps']:.3f}"
    row["output_tokens_per_s"] = f"{step['output_tokens_per_s']:.1f}"
    for metric in ("e2e", "ttft", "itl", "tpot"):
        for q in ("p50", "p90", "p99"):
            if f"{metric}_{q}" in CSV_COLUMNS:
                value = step[f"{metric}_s"][q]
                row[f"{metric}_{q}"] = "" if value is None else f"{value:.4f}"
    overhead = step["client_overhead"]
    for column, series, q in (("client_work_p50", "work_s", "p50"),
                              ("loop_lag_p90", "loop_lag_s", "p90")):
        value = overhead[series][q]
        row[column] = "" if value is None else f"{value:.6f}"
    row["problems"] = "; ".join(step["problems"])
    return row


def write(sweep: Sweep, goal: Target, load: Load, directory: Path, **meta: Any) -> list[Path]:
    """Write the JSON, CSV and HTML reports into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = document(sweep, goal, load, **meta)
    base = directory / stem(goal)
    paths = [base.with_suffix(".json"), base.with_suffix(".csv"), base.with_suffix(".html")]
    paths[0].write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    with paths[1].open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(_row(s) for s in doc["steps"])
    paths[2].write_text(render(doc), encoding="utf-8")
    return paths


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f} ms"


def summary(sweep: Sweep, goal: Target) -> str:
    """The steps as a table, then the answer."""
    label = sweep.slo.label
    head = ("conc", "ok/n", "429", "err", "req/s", f"ttft {label}", f"itl {label}",
            f"e2e {label}", "lag p90", "verdict")
    steps = sorted(sweep.steps, key=lambda s: s.concurrency)
    rows = [(str(s.concurrency), f"{s.ok}/{s.requests}", str(s.rate_limited), str(s.errors),
             f"{s.throughput:.2f}", _ms(s.values["ttft"]), _ms(s.values["itl"]),
             _ms(s.values["e2e"]), _ms(s.run.loop_lag.p90 or s.run.loop_lag.max),
             "meets" if s.meets else "misses: " + "; ".join(s.problems)) for s in steps]
    lines = table(rows, header=head)
    lines.insert(1, "-" * len(lines[0]))
    targets = ", ".join(f"{m} {label} <= {v * 1000:.0f} ms"
                        for m, v in sweep.slo.targets().items())
    bound = "" if sweep.exact else "at least "
    lines += ["", f"capacity of {goal.describe()}: {bound}{sweep.capacity} concurrent streams "
              f"within {targets} (errors <= {sweep.slo.error_budget:.0%})",
              f"stopped: {sweep.stop_reason}; {sweep.requests} requests in {sweep.wall_s:.0f} s"]
    return "\n".join(lines)

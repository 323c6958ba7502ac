"""Present capacity reports: a plain-text table for people, JSON for tools.

:func:`verdict` says in words why a config does (not) fit and what to change; the table
and the JSON both use it, so ``inv plan`` and ``inv plan --json`` always agree.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace

from vllmfleet.vllm.capacity import CapacityReport, GiB, estimate
from vllmfleet.vllm.startup_log import StartupFigures


@dataclass(frozen=True, kw_only=True)
class Measured:
    """The last start-up figures of a host, beside the plan: what was measured, under which
    config, and the planner's prediction recalibrated on it (None: not comparable)."""

    figures: StartupFigures
    taken: str
    max_model_len: int
    gpu_memory_utilization: float
    calibrated: CapacityReport | None = None


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """FITS / DOES NOT FIT, the reason, and the change that would make it fit."""

    fits: bool
    reason: str
    suggestion: str

    @property
    def label(self) -> str:
        return "FITS" if self.fits else "DOES NOT FIT"


def verdict(report: CapacityReport) -> Verdict:
    """Explain ``report`` in one reason and one suggestion, in vLLM's order of checks."""
    inp = report.input
    mml, most = inp.max_model_len, inp.architecture.max_position_embeddings
    if report.too_long_for_model:
        return Verdict(fits=False,
                       reason=f"max_model_len {mml:,} is above the model's "
                              f"max_position_embeddings {most:,}",
                       suggestion=f"set max_model_len to at most {most:,}")
    if report.exceeds_free:
        return Verdict(fits=False, reason=(
            f"vLLM refuses to start: it asks for {report.requested_gib:.2f} GiB "
            f"({inp.vram_gib:.2f} GiB x {inp.gpu_memory_utilization}) but only "
            f"{report.free_at_start_gib:.2f} GiB is free at start"),
            suggestion=_lower_utilization(report))
    if report.graph_headroom_short:
        room = report.free_at_start_gib - (report.requested_gib - report.activation_gib)
        util = max(0.0, math.floor((report.free_at_start_gib - report.cuda_graph_gib
                                    + report.activation_gib) * 100 / inp.vram_gib) / 100)
        return Verdict(fits=False, reason=(
            f"out of memory during CUDA-graph capture: vLLM captures "
            f"{report.cuda_graph_gib:.2f} GiB of graphs after the KV cache, and only "
            f"{room:.2f} GiB is left beyond it"),
            suggestion=(f"a choice: set gpu_memory_utilization to {util} or less, or set "
                        "enforce_eager (no graphs; slower decoding)"))
    if report.kv_budget_bytes <= 0:
        used = report.requested_gib - report.kv_budget_gib
        return Verdict(fits=False, reason=(
            f"no memory left for the KV cache: weights and overheads take {used:.2f} GiB "
            f"of the {report.requested_gib:.2f} GiB requested"),
            suggestion="raise gpu_memory_utilization, or serve a smaller (quantised) model")
    if not report.fits:
        needed = report.kv_needed_bytes / GiB
        fix = (f"set max_model_len to at most {report.largest_max_model_len:,}"
               if report.largest_max_model_len > 0 else "")
        others = "raise gpu_memory_utilization"
        if inp.kv_cache_dtype in ("auto", "bfloat16", "float16"):
            others = "use kv_cache_dtype fp8, or " + others
        return Verdict(fits=False, reason=(
            f"one request of {mml:,} tokens needs {needed:.2f} GiB of KV cache; only "
            f"{report.kv_budget_gib:.2f} GiB is available"),
            suggestion=f"{fix}, or {others}" if fix else others)
    return Verdict(fits=True, reason=(
        f"the KV cache holds {report.kv_capacity_tokens:,} tokens: "
        f"{report.max_concurrency:.2f} requests of {mml:,} tokens"),
        suggestion=f"max_model_len could go up to {report.largest_max_model_len:,}")


def _lower_utilization(report: CapacityReport) -> str:
    util = report.suggested_utilization
    if not util:
        return "free GPU memory on the host; nothing fits in what is free now"
    after = estimate(replace(report.input, gpu_memory_utilization=util))
    text = f"set gpu_memory_utilization to {util} or less"
    if after.fits:
        return (f"{text} (at {util}: {after.kv_capacity_tokens:,} KV tokens, "
                f"max_model_len {report.input.max_model_len:,} fits)")
    return f"{text}; then: {verdict(after).suggestion}"


def _rows(report: CapacityReport) -> list[tuple[str, str, str]]:
    inp = report.input
    gib = "{:.2f} GiB".format
    graphs = (f"{len(inp.cuda_graph_sizes)} capture sizes" if not inp.enforce_eager
              else "enforce_eager: none")
    return [
        ("GPU memory", gib(inp.vram_gib), ""),
        ("kept by desktop/driver", gib(inp.reserved_gib), "gpu.reserved_gib"),
        ("vLLM's CUDA context", gib(inp.cuda_context_gib), "estimate"),
        ("free at start", gib(report.free_at_start_gib), ""),
        ("requested", gib(report.requested_gib),
         f"{inp.vram_gib:.2f} GiB x gpu_memory_utilization {inp.gpu_memory_utilization}"),
        ("model weights", gib(report.weights_gib),
         f"per GPU, tensor_parallel_size {inp.tensor_parallel_size}"
         if inp.tensor_parallel_size > 1 else ""),
        ("non-torch memory", gib(report.non_torch_gib), "estimate"),
        ("activation peak", gib(report.activation_gib),
         f"estimate, {inp.batched_tokens:,} batched tokens"),
        ("CUDA graphs", gib(report.cuda_graph_gib),
         f"estimate, {graphs}" + ("" if report.graphs_in_budget
                                  else "; captured after the KV cache, outside the budget")),
        ("KV cache budget", gib(report.kv_budget_gib),
         f"MEASURED: requested minus the {inp.measured_non_kv_gib:.2f} GiB of non-KV memory "
         "a start on this host logged" if inp.measured_non_kv_gib is not None
         else "requested minus the lines above" if report.graphs_in_budget
         else "requested minus the lines above, graphs excepted"),
        ("KV bytes per token", f"{report.kv_bytes_per_token:,} B",
         f"kv_cache_dtype {inp.kv_cache_dtype}, {inp.kv_heads_per_gpu} KV heads per GPU"),
        ("KV capacity", f"{report.kv_capacity_tokens:,} tokens", "whole 16-token blocks"),
        ("max_model_len", f"{inp.max_model_len:,} tokens", ""),
        ("max concurrency", f"{report.max_concurrency:.2f}x",
         f"requests of {inp.max_model_len:,} tokens"),
        ("largest max_model_len", f"{report.largest_max_model_len:,} tokens",
         "the KV cache holds, up to max_position_embeddings"),
    ]


def _diff(predicted: float, measured: float) -> str:
    if not measured:
        return ""
    return f"{(predicted - measured) / measured:+.0%}"


def measured_rows(report: CapacityReport, m: Measured) -> list[tuple[str, str, str, str]]:
    """(figure, predicted, measured, difference) for what the last start logged."""
    f, rows = m.figures, []
    if f.kv_cache_gib is not None:
        rows.append(("KV cache budget", f"{report.kv_budget_gib:.2f} GiB",
                     f"{f.kv_cache_gib:.2f} GiB", _diff(report.kv_budget_gib, f.kv_cache_gib)))
    if f.kv_cache_tokens is not None:
        rows.append(("KV capacity", f"{report.kv_capacity_tokens:,}", f"{f.kv_cache_tokens:,}",
                     _diff(report.kv_capacity_tokens, f.kv_cache_tokens)))
    if f.max_concurrency is not None:
        rows.append(("max concurrency", f"{report.max_concurrency:.2f}x",
                     f"{f.max_concurrency:.2f}x", _diff(report.max_concurrency,
                                                        f.max_concurrency)))
    if f.weights_gib is not None:
        rows.append(("model weights", f"{report.weights_gib:.2f} GiB", f"{f.weights_gib:.2f} GiB",
                     _diff(report.weights_gib, f.weights_gib)))
    if f.activation_gib is not None:
        rows.append(("activation peak", f"{report.activation_gib:.2f} GiB",
                     f"{f.activation_gib:.2f} GiB", _diff(report.activation_gib,
                                                          f.activation_gib)))
    return rows


def _measured_block(report: CapacityReport, m: Measured) -> list[str]:
    inp = report.input
    same = (m.max_model_len, m.gpu_memory_utilization) == (inp.max_model_len,
                                                          inp.gpu_memory_utilization)
    lines = [f"  measured at the last start ({m.taken}; max_model_len {m.max_model_len:,}, "
             f"gpu_memory_utilization {m.gpu_memory_utilization}"
             + ("" if same else "; NOT this config: compare with care") + "):",
             f"    {'':<22}{'predicted':>16}{'measured':>16}{'diff':>7}"]
    lines += [f"    {a:<22}{b:>16}{c:>16}{d:>7}" for a, b, c, d in measured_rows(report, m)]
    if m.calibrated is not None:
        cal = m.calibrated
        lines.append(f"  calibrated on that start (measured non-KV memory, estimates for the "
                     f"rest): KV {cal.kv_budget_gib:.2f} GiB, {cal.kv_capacity_tokens:,} tokens, "
                     f"{cal.max_concurrency:.2f}x; {verdict(cal).label}")
    return lines


def format_table(rows: list[tuple[str, CapacityReport]],
                 measured: dict[str, Measured] | None = None) -> str:
    """One block per host: every figure, then the verdict, its reason and the fix; where a
    host has a measurement, the measured figures beside the predicted ones."""
    blocks = []
    measured = measured or {}
    for host, report in rows:
        v = verdict(report)
        lines = [f"{host}: {v.label}"]
        for label, value, note in _rows(report):
            lines.append(f"  {label:<24}{value:>16}  {note}".rstrip())
        lines.extend(f"  warning: {w}" for w in report.warnings)
        lines.append(f"  why: {v.reason}")
        lines.append(f"  {'fix' if not v.fits else 'room'}: {v.suggestion}")
        if host in measured:
            lines += _measured_block(report, measured[host])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _host_json(host: str, report: CapacityReport) -> dict[str, object]:
    v = verdict(report)
    figures = {k: (round(val, 4) if isinstance(val, float) else val)
               for k, val in asdict(report).items() if k != "input"}
    return {
        "host": host, "verdict": v.label, "reason": v.reason, "suggestion": v.suggestion,
        **figures,
        "max_num_batched_tokens": report.input.batched_tokens,
        "cuda_graph_sizes": report.input.cuda_graph_sizes,
        "suggested_gpu_memory_utilization": report.suggested_utilization,
        "vllm_error": report.vllm_error(), "vllm_log_lines": report.vllm_log_lines(),
        "input": report.input.flat(),
    }


def to_json(rows: list[tuple[str, CapacityReport]],
            measured: dict[str, Measured] | None = None) -> str:
    """``{"hosts": [...]}``, one object per host with every figure and the verdict (and
    ``measured``: the last start's figures, where there is one)."""
    hosts = []
    for h, r in rows:
        item = _host_json(h, r)
        if measured and h in measured:
            m = measured[h]
            item["measured"] = {
                "taken": m.taken, "max_model_len": m.max_model_len,
                "gpu_memory_utilization": m.gpu_memory_utilization, **m.figures.to_json(),
                "calibrated_kv_budget_gib": (round(m.calibrated.kv_budget_gib, 4)
                                             if m.calibrated else None)}
        hosts.append(item)
    return json.dumps({"hosts": hosts}, indent=2)

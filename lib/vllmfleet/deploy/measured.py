"""What vLLM reported at start, kept per host beside its backups.

After every start that ``deploy``, ``rollback`` or ``fit`` waits for, the vLLM log is read
(:func:`from_log`, through :mod:`vllmfleet.vllm.startup_log`) and the figures are recorded
with the config they were measured under (:class:`Measurement`) in
``<store>/.startup/<host>.json`` (beside the backups, outside any host's backup folder),
newest last (at most :data:`KEEP`). ``inv plan`` shows the
last one beside its prediction, and :func:`calibrated` lets the planner reuse the host's
measured non-KV memory for other lengths and utilisations of the same model and version.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from vllmfleet.errors import DeployError
from vllmfleet.inventory import Host
from vllmfleet.vllm.capacity import CapacityInput, estimate
from vllmfleet.vllm.capacity_report import Measured
from vllmfleet.vllm.startup_log import StartupFigures, parse

FOLDER: Final = ".startup"
KEEP: Final = 20


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One start's figures and the config they belong to."""

    host: str
    taken: str  # UTC, ISO 8601
    image: str | None  # None: a local host without an image (the CPU build)
    model: str
    max_model_len: int
    gpu_memory_utilization: float
    kv_cache_dtype: str
    max_num_seqs: int
    figures: StartupFigures
    vram_gib: float | None = None  # the inventory's, where the log prints no total

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["figures"] = self.figures.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        return cls(**{**data, "figures": StartupFigures.from_json(data.get("figures") or {})})

    def same_setup(self, host: Host) -> bool:
        """Measured with this host's image and model (other lengths/utilisations may differ)."""
        v = host.vllm
        return v is not None and (v.image, v.model) == (self.image, self.model)

    def non_kv_gib(self) -> float | None:
        """The memory of the requested share that was not KV cache: weights, activation,
        non-torch (and graphs where the version counts them in), as observed."""
        kv, total = self.figures.kv_cache_gib, self.figures.total_gpu_gib or self.vram_gib
        if kv is None:
            return None
        requested = self.figures.requested_gib
        if requested is None and total is not None:
            requested = total * self.gpu_memory_utilization
        return None if requested is None else requested - kv


def describe(f: StartupFigures) -> str:
    """The figures in one line, as a deploy says them."""
    parts = []
    if f.kv_cache_gib is not None:
        parts.append(f"KV cache {f.kv_cache_gib:.2f} GiB")
    if f.kv_cache_tokens is not None:
        parts.append(f"{f.kv_cache_tokens:,} tokens")
    if f.max_concurrency is not None and f.concurrency_len is not None:
        parts.append(f"{f.max_concurrency:.2f}x requests of {f.concurrency_len:,}")
    if f.auto_fit_to is not None:
        parts.append(f"auto-fit {f.auto_fit_from} -> {f.auto_fit_to}")
    if f.weights_gib is not None:
        parts.append(f"weights {f.weights_gib:.2f} GiB")
    if f.free_at_start_gib is not None:
        parts.append(f"free at start {f.free_at_start_gib:.2f} GiB")
    return ", ".join(parts) or "nothing"


def from_log(text: str, host: Host) -> Measurement | None:
    """The measurement in a start's log, or None when vLLM printed none of the figures."""
    figures = parse(text)
    if figures.empty or host.vllm is None:
        return None
    v = host.vllm
    return Measurement(
        host=host.name, taken=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        image=v.image, model=v.model,
        max_model_len=figures.max_model_len or v.max_model_len,
        gpu_memory_utilization=v.gpu_memory_utilization, kv_cache_dtype=v.kv_cache_dtype,
        max_num_seqs=v.max_num_seqs, figures=figures,
        vram_gib=host.gpu.vram_gib if host.gpu else None)


def _path(store: Path, host: str) -> Path:
    return Path(store) / FOLDER / f"{host}.json"


def history(store: Path, host: str) -> list[Measurement]:
    """Every kept measurement of ``host``, oldest first ([] when none or unreadable)."""
    path = _path(store, host)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Measurement.from_json(item) for item in data]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        raise DeployError(f"{path}: not a readable measurement file ({exc}); delete it, the "
                          "next deploy writes a new one", host=host) from exc


def last(store: Path, host: str) -> Measurement | None:
    found = history(store, host)
    return found[-1] if found else None


def record(store: Path, measurement: Measurement) -> Path:
    """Append ``measurement`` to its host's file (atomically), keeping the last :data:`KEEP`."""
    path = _path(store, measurement.host)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        kept = history(store, measurement.host)
    except DeployError:
        kept = []
    items = [m.to_json() for m in [*kept, measurement][-KEEP:]]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".startup-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(items, out, indent=1)
    os.replace(tmp, path)
    return path


def calibrated(inp: CapacityInput, measurement: Measurement | None) -> CapacityInput:
    """``inp`` with the host's measured non-KV memory, when it was measured on the same card
    (``measurement.same_setup`` is the caller's check) at the same batch shape."""
    if measurement is None:
        return inp
    non_kv = measurement.non_kv_gib()
    if non_kv is None or measurement.max_num_seqs != inp.max_num_seqs:
        return inp
    # V0 profiled max_model_len tokens: its non-KV memory holds for that length only
    if not inp.v1_engine and measurement.max_model_len != inp.max_model_len:
        return inp
    return replace(inp, measured_non_kv_gib=non_kv)


def last_comparable(store: Path, host: Host, inp: CapacityInput) -> Measured | None:
    """The host's last measurement as ``inv plan`` shows it (None when there is none, or it
    was taken with another image or model), with the prediction recalibrated on it."""
    m = last(store, host.name)
    if m is None or not m.same_setup(host):
        return None
    adjusted = calibrated(inp, m)
    return Measured(figures=m.figures, taken=m.taken, max_model_len=m.max_model_len,
                    gpu_memory_utilization=m.gpu_memory_utilization,
                    calibrated=estimate(adjusted) if adjusted is not inp else None)

"""The calibration corpus: real vLLM start-ups, and how well the capacity planner predicts them.

``corpus.yaml`` (beside this module) holds each case's source, vLLM version, GPU, config
and the figures its log printed. :func:`load` reads it; :func:`evaluate` runs the planner
on every case it can predict and compares the KV-cache budget (GiB, within
:data:`TOLERANCE`) and the fit/no-fit verdict with the log; :func:`summary` gives the
shares, over all cases and over the versions the planner claims to model
(:data:`CLAIMED_FROM`). ``benchmarks/calibration.py`` prints the table; a unit test holds
the targets.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from vllmfleet.errors import CapacityError
from vllmfleet.vllm.architecture import Architecture
from vllmfleet.vllm.capacity import CapacityInput, CapacityReport, estimate
from vllmfleet.vllm.versions import Version, parse_version

CORPUS: Final = Path(__file__).with_name("corpus.yaml")
TOLERANCE: Final = 0.15
# The planner models V0 from 0.6.4 (per-instance utilisation, the profiling it describes)
# and every V1 release; older cases are kept but reported apart.
CLAIMED_FROM: Final[Version] = (0, 6, 4)


@dataclass(frozen=True, kw_only=True)
class Case:
    """One logged start-up (see corpus.yaml for the fields)."""

    id: str
    source: str
    version: Version
    gpu: str
    model: str
    logged: dict[str, Any]
    inputs: CapacityInput | None = None
    fit_only: bool = False
    note: str = ""
    features: tuple[str, ...] = field(default=())

    @property
    def claimed(self) -> bool:
        return self.version >= CLAIMED_FROM


@dataclass(frozen=True, kw_only=True)
class Result:
    """The planner against one case."""

    case: Case
    report: CapacityReport

    @property
    def kv_error(self) -> float | None:
        """(predicted - logged) / logged KV budget; None when the log has no KV figure."""
        logged = self.case.logged.get("kv_cache_gib")
        if self.case.fit_only or not logged:
            return None
        return float((self.report.kv_budget_gib - logged) / logged)

    @property
    def within(self) -> bool | None:
        error = self.kv_error
        return None if error is None else abs(error) <= TOLERANCE

    @property
    def fit_right(self) -> bool:
        return self.report.fits == bool(self.case.logged["started"])


def load(path: Path = CORPUS) -> list[Case]:
    """Every case of the corpus; a malformed one raises :class:`CapacityError` naming it."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    archs = data["architectures"]
    cases = []
    for raw in data["cases"]:
        try:
            cases.append(_case(raw, archs))
        except (KeyError, TypeError, ValueError) as exc:
            raise CapacityError(f"{path}: case {raw.get('id', '?')!r} is malformed: "
                                f"{exc!r}") from exc
    return cases


def _case(raw: dict[str, Any], archs: dict[str, dict[str, int]]) -> Case:
    version = parse_version(str(raw["vllm_version"]))
    features = tuple(k for k in ("multimodal", "moe", "lora") if raw.get(k))
    common: dict[str, Any] = dict(
        id=raw["id"], source=raw["source"], version=version, gpu=raw["gpu"],
        model=raw["model"], logged=raw["logged"], note=raw.get("note", ""), features=features)
    if raw.get("predict") is False:
        return Case(**common)
    config = raw["config"]
    if raw.get("fit_only"):
        # only the free-memory check matters: any model that loads will do
        arch = Architecture(layers=1, kv_heads=1, head_dim=1, hidden_size=1,
                            intermediate_size=1, vocab_size=1, max_position_embeddings=1)
        inputs = CapacityInput(
            vram_gib=config["vram_gib"], reserved_gib=config["reserved_gib"],
            gpu_memory_utilization=config["gpu_memory_utilization"], weights_gib=1.0,
            architecture=arch, kv_cache_dtype="auto", max_model_len=1, max_num_seqs=1,
            vllm_version=version)
        return Case(**common, inputs=inputs, fit_only=True)
    inputs = CapacityInput(
        vram_gib=config["vram_gib"], reserved_gib=config.get("reserved_gib", 0.0),
        gpu_memory_utilization=config["gpu_memory_utilization"],
        weights_gib=config["weights_gib"], architecture=Architecture(**archs[raw["architecture"]]),
        kv_cache_dtype=config["kv_cache_dtype"], max_model_len=config["max_model_len"],
        max_num_seqs=config["max_num_seqs"],
        max_num_batched_tokens=config.get("max_num_batched_tokens"),
        enforce_eager=config.get("enforce_eager", False), vllm_version=version,
        gpu_name=raw["gpu"], multimodal="multimodal" in features, moe="moe" in features)
    return Case(**common, inputs=inputs)


Estimator = Callable[[CapacityInput], CapacityReport]


def evaluate(cases: list[Case], estimator: Estimator = estimate) -> list[Result]:
    """The planner on every case that has inputs."""
    return [Result(case=c, report=estimator(c.inputs)) for c in cases if c.inputs is not None]


@dataclass(frozen=True, kw_only=True)
class Summary:
    kv_cases: int
    kv_within: int
    fit_cases: int
    fit_right: int
    median_error: float | None
    mean_error: float | None

    @property
    def kv_share(self) -> float:
        return self.kv_within / self.kv_cases if self.kv_cases else 0.0

    @property
    def fit_share(self) -> float:
        return self.fit_right / self.fit_cases if self.fit_cases else 0.0


def summary(results: list[Result], *, claimed_only: bool = False) -> Summary:
    picked = [r for r in results if r.case.claimed or not claimed_only]
    errors = [e for r in picked if (e := r.kv_error) is not None]
    return Summary(
        kv_cases=len(errors), kv_within=sum(abs(e) <= TOLERANCE for e in errors),
        fit_cases=len(picked), fit_right=sum(r.fit_right for r in picked),
        median_error=statistics.median(abs(e) for e in errors) if errors else None,
        mean_error=statistics.mean(errors) if errors else None)


def format_results(results: list[Result]) -> str:
    """One line per case, then the summaries (what ``benchmarks/calibration.py`` prints)."""
    lines = [f"{'case':<28}{'vLLM':>8}  {'logged':>8}  {'planned':>8}  {'error':>7}  "
             f"{'fit':>10}"]
    for r in results:
        logged = r.case.logged.get("kv_cache_gib")
        error = r.kv_error
        started = "starts" if r.case.logged["started"] else "refused"
        mark = "ok" if r.fit_right else "WRONG"
        lines.append(
            f"{r.case.id:<28}{'.'.join(map(str, r.case.version)):>8}  "
            f"{(f'{logged:.2f}' if logged and not r.case.fit_only else '-'):>8}  "
            f"{(f'{r.report.kv_budget_gib:.2f}' if not r.case.fit_only else '-'):>8}  "
            f"{(f'{error:+.0%}' if error is not None else '-'):>7}  {started:>7} {mark}")
    for label, claimed in (("all cases", False), ("vLLM >= 0.6.4 (claimed)", True)):
        s = summary(results, claimed_only=claimed)
        lines.append(
            f"{label}: KV within ±{TOLERANCE:.0%}: {s.kv_within}/{s.kv_cases} "
            f"({s.kv_share:.0%}), median |error| "
            f"{(s.median_error or 0):.0%}, mean error {(s.mean_error or 0):+.0%}; "
            f"fit/no-fit right: {s.fit_right}/{s.fit_cases} ({s.fit_share:.0%})")
    return "\n".join(lines)

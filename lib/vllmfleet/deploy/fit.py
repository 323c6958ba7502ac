"""``inv fit.<host>``: find the largest max_model_len that really starts on a host, and pin a
value that leaves KV room for the host's concurrency.

1. Probe (each probe is a health-gated deploy of the vLLM service with one setting changed;
   a start that fails is rolled back as every deploy is, and its log tail is read):

   - a version with auto-fit (``facts_for(version).auto_fit``): start once with
     ``--max-model-len -1`` (auto) and read "Auto-fit max_model_len: reduced from X to Y";
   - an older one: start with the model's own limit and read vLLM's estimate from the
     refusal ("… the estimated maximum model length is N"); confirm it by starting with it;
     with no estimate, descend the ladder (x 3/4, whole 1024s).

   vLLM's other refusals are handled the same way: less free memory than the utilisation
   asks for → the utilisation that fits what was free (from vLLM's own message);
   out of memory during CUDA-graph capture → stop and say the choice (lower utilisation or
   enforce_eager); nothing fits → stop and say so. Every step says what it tried and what
   vLLM answered.
2. Pin: ``max_model_len = min(what fits, the model's limit, KV tokens / max_num_seqs)`` in
   whole 256s; each alias of the host keeps its share of max_model_len as max_input_tokens
   (clamped to the 80-95 % rule) and its max_output_tokens where they still fit.
3. The change is shown as a diff of the inventory file (comments and layout kept); with
   ``apply`` it is written and the host deployed as usual — health-gated, rolled back on
   failure (the proxy's limits follow with ``inv deploy.proxy``, as said). Without
   ``apply`` the host keeps running the last probe (one that started) and the output says
   how to go back.

``dry_run`` probes nothing: it shows the steps it would take and the planner's prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from vllmfleet.deploy import measured
from vllmfleet.deploy.apply import Options, Outcome, Say
from vllmfleet.deploy.run import Access, deploy_host
from vllmfleet.errors import DeployError
from vllmfleet.inventory import Host, Inventory, load
from vllmfleet.inventory.edit import Key, edited, write
from vllmfleet.inventory.plan import input_for
from vllmfleet.inventory.rules import INPUT_SHARE
from vllmfleet.vllm.capacity import estimate
from vllmfleet.vllm.startup_log import Refusal, StartupFigures, refusal
from vllmfleet.vllm.versions import facts_for, format_version, version_of_image

AUTO: Final = -1
PIN_STEP: Final = 256
MAX_PROBES: Final = 6
LADDER: Final = 0.75


@dataclass(frozen=True, kw_only=True)
class Probe:
    """One start tried: the settings, and what vLLM answered."""

    max_model_len: int
    gpu_memory_utilization: float
    started: bool
    figures: StartupFigures | None = None
    refused: Refusal | None = None


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """What fit found and what it proposes (``changes``: inventory key → new value)."""

    host: str
    probes: tuple[Probe, ...]
    fits: int
    kv_tokens: int | None
    pin: int
    gpu_memory_utilization: float
    changes: dict[Key, Any]
    diff: str
    text: str
    applied: Outcome | None = None


Deploy = Callable[[Inventory, str], Outcome]


def _with(inventory: Inventory, name: str, **vllm: Any) -> Inventory:
    host = inventory.hosts[name]
    assert host.vllm is not None
    new_host = replace(host, vllm=replace(host.vllm, **vllm))
    return replace(inventory, hosts={**inventory.hosts, name: new_host})


def _vllm_host(inventory: Inventory, name: str) -> Host:
    host = inventory.hosts.get(name)
    if host is None or host.vllm is None:
        raise DeployError(f"{name!r} is not a vLLM host of {inventory.path}; vLLM hosts: "
                          + ", ".join(inventory.vllm_hosts), host=name)
    return host


class _Fit:
    def __init__(self, inventory: Inventory, name: str, *, deploy: Deploy, store: Any,
                 say: Say) -> None:
        self.inventory, self.name, self.deploy, self.store, self.say = (
            inventory, name, deploy, store, say)
        self.host = _vllm_host(inventory, name)
        assert self.host.vllm is not None
        self.vllm = self.host.vllm
        version = version_of_image(self.vllm.image)
        self.version = version
        self.facts = facts_for(version) if version else None
        self.model_max = inventory.model_of(self.host).architecture.max_position_embeddings
        self.probes: list[Probe] = []

    @property
    def auto_fit(self) -> bool:
        return bool(self.facts and self.facts.auto_fit)

    def describe_version(self) -> str:
        return f"vLLM {format_version(self.version)}" if self.version else "an unpinned vLLM"

    def probe(self, length: int, util: float) -> Probe:
        shown = "auto" if length == AUTO else f"{length:,}"
        self.say(f"[fit {self.name}] trying max_model_len {shown}, gpu_memory_utilization "
                 f"{util}")
        trial = _with(self.inventory, self.name, max_model_len=length,
                      gpu_memory_utilization=util)
        outcome = self.deploy(trial, self.name)
        if outcome.ok:
            last = measured.last(self.store, self.name)
            figures = last.figures if last is not None else None
            self.say(f"[fit {self.name}] vLLM started: "
                     + (measured.describe(figures) if figures else "(no figures in its log)"))
            result = Probe(max_model_len=length, gpu_memory_utilization=util, started=True,
                           figures=figures)
        else:
            refused = refusal(outcome.report)
            answer = refused.line if refused else "(no known refusal; see the report)"
            if refused and refused.estimated_max_model_len and refused.kind == "kv-too-small":
                answer += (" … the estimated maximum model length is "
                           f"{refused.estimated_max_model_len}")
            self.say(f"[fit {self.name}] vLLM answered: {answer}")
            result = Probe(max_model_len=length, gpu_memory_utilization=util, started=False,
                           refused=refused)
            if refused is None:
                raise DeployError(f"fit {self.name}: the start failed for a reason fit does "
                                  f"not handle:\n{outcome.report}", host=self.name)
        self.probes.append(result)
        return result

    def search(self) -> tuple[int, int | None, float]:
        """(the longest length that started, its KV tokens, the utilisation used)."""
        util = self.vllm.gpu_memory_utilization
        length = AUTO if self.auto_fit else self.model_max
        for _ in range(MAX_PROBES):
            p = self.probe(length, util)
            if p.started:
                f = p.figures
                fits = ((f.auto_fit_to or f.auto_fit_full) if f else None) or (
                    self.model_max if length == AUTO else length)
                return fits, f.kv_cache_tokens if f else None, util
            r = p.refused
            assert r is not None
            if r.kind == "free-memory" and r.free_gib and r.total_gib:
                util = math.floor(r.free_gib / r.total_gib * 100) / 100 - 0.01
                self.say(f"[fit {self.name}] only {r.free_gib} of {r.total_gib} GiB free at "
                         f"start: gpu_memory_utilization {util} fits what is free")
            elif r.kind == "kv-too-small":
                tried = self.model_max if length == AUTO else length
                if r.estimated_max_model_len:
                    length = r.estimated_max_model_len
                    self.say(f"[fit {self.name}] vLLM's own estimate: {length:,} tokens; "
                             "confirming it")
                else:
                    length = max(PIN_STEP, int(tried * LADDER) // 1024 * 1024)
                    self.say(f"[fit {self.name}] no estimate in vLLM's answer: down the "
                             f"ladder to {length:,}")
            elif r.kind == "cuda-graph-oom":
                raise DeployError(
                    f"fit {self.name}: vLLM ran out of memory capturing CUDA graphs at "
                    f"gpu_memory_utilization {util}. A choice: lower "
                    f"hosts.{self.name}.vllm.gpu_memory_utilization (e.g. to "
                    f"{round(util - 0.03, 2)}), or set enforce_eager: true (no graphs, slower "
                    "decoding); then run fit again", host=self.name)
            else:
                raise DeployError(
                    f"fit {self.name}: nothing fits on this card ({r.line}); raise "
                    "gpu_memory_utilization, use kv_cache_dtype fp8 or a smaller (quantised) "
                    "model", host=self.name)
        raise DeployError(f"fit {self.name}: no start succeeded in {MAX_PROBES} tries",
                          host=self.name)

    def pin(self, fits: int, kv_tokens: int | None) -> int:
        seqs = self.vllm.max_num_seqs
        room = (kv_tokens or fits) // seqs
        pin = min(fits, self.model_max, room) // PIN_STEP * PIN_STEP
        if pin < PIN_STEP:
            raise DeployError(f"fit {self.name}: the KV cache ({kv_tokens or fits:,} tokens) "
                              f"leaves under {PIN_STEP} tokens for each of max_num_seqs "
                              f"{seqs} requests; lower max_num_seqs", host=self.name)
        return pin

    def changes(self, pin: int, util: float) -> dict[Key, Any]:
        out: dict[Key, Any] = {}
        if pin != self.vllm.max_model_len:
            out[("hosts", self.name, "vllm", "max_model_len")] = pin
        if util != self.vllm.gpu_memory_utilization:
            out[("hosts", self.name, "vllm", "gpu_memory_utilization")] = util
        old = self.vllm.max_model_len
        for alias in self.inventory.aliases.values():
            if alias.host != self.name:
                continue
            share = min(max(alias.max_input_tokens / old, INPUT_SHARE[0]), INPUT_SHARE[1])
            output = min(alias.max_output_tokens, pin - int(pin * INPUT_SHARE[0]))
            inp = min(int(pin * share), pin - output)
            if inp != alias.max_input_tokens:
                out[("aliases", alias.name, "max_input_tokens")] = inp
            if output != alias.max_output_tokens:
                out[("aliases", alias.name, "max_output_tokens")] = output
        return out


def plan_only(inventory: Inventory, name: str) -> str:
    """``--dry-run``: the steps fit would take and the planner's prediction."""
    host = _vllm_host(inventory, name)
    assert host.vllm is not None
    version = version_of_image(host.vllm.image)
    auto = bool(version and facts_for(version).auto_fit)
    model_max = inventory.model_of(host).architecture.max_position_embeddings
    report = estimate(input_for(inventory, name, max_model_len=model_max))
    seqs = host.vllm.max_num_seqs
    predicted = min(report.largest_max_model_len, model_max,
                    report.kv_capacity_tokens // seqs) // PIN_STEP * PIN_STEP
    first = ("start once with --max-model-len auto and read vLLM's auto-fit line" if auto
             else f"start with max_model_len {model_max:,} (the model's limit) and read "
                  "vLLM's estimate from its refusal, then confirm it")
    return "\n".join([
        f"fit {name} (dry run: nothing is started):",
        f"  1. {first} ({'vLLM ' + format_version(version) if version else 'unpinned'}, "
        f"gpu_memory_utilization {host.vllm.gpu_memory_utilization});",
        "  2. pin min(what fits, the model's limit, KV tokens / max_num_seqs "
        f"{seqs}) in whole {PIN_STEP}s and re-derive the aliases' max_input/max_output;",
        "  3. show the inventory diff; --apply writes it and deploys (health-gated, "
        "rolled back on failure).",
        f"  the planner predicts: {report.kv_capacity_tokens:,} KV tokens, "
        f"max_model_len {predicted:,} (now {host.vllm.max_model_len:,})",
    ])


def fit_host(inventory: Inventory, name: str, *, access: Access, options: Options, say: Say,
             apply: bool = False) -> FitResult:
    """Probe ``name``, propose the pin, and (``apply``) write and deploy it."""
    probe_options = replace(options, dry_run=False)

    def deploy(inv: Inventory, host: str) -> Outcome:
        return deploy_host(inv, host, access=access, options=probe_options, say=say,
                           services=("vllm",), task=f"fit.{host}")

    fit = _Fit(inventory, name, deploy=deploy, store=options.store, say=say)
    fits, kv_tokens, util = fit.search()
    pin = fit.pin(fits, kv_tokens)
    changes = fit.changes(pin, util)
    new_text, diff = edited(inventory.path, changes) if changes else ("", "")
    held = f"{kv_tokens:,} KV tokens" if kv_tokens else "its KV cache"
    text = (f"fit {name}: the longest max_model_len that starts is {fits:,} ({held}); "
            f"pinned {pin:,} = min(that, the model's {fit.model_max:,}, KV tokens / "
            f"max_num_seqs {fit.vllm.max_num_seqs}) in whole {PIN_STEP}s")
    applied = None
    if apply and changes:
        write(inventory.path, new_text)
        say(f"[fit {name}] wrote {inventory.path}")
        fitted = load(inventory.path)
        applied = deploy_host(fitted, name, access=access, options=probe_options, say=say,
                              task=f"fit.{name}")
        if any(k[0] == "aliases" for k in changes):
            text += ("\nthe aliases' limits changed: `inv deploy.proxy` gives them to LiteLLM "
                     "(its own health-gated deploy)")
    else:
        last = fit.probes[-1]
        shown = "auto" if last.max_model_len == AUTO else f"{last.max_model_len:,}"
        text += (f"\n{name} now runs the last probe (max_model_len {shown}, "
                 f"gpu_memory_utilization {last.gpu_memory_utilization}), which started; "
                 f"`inv deploy.{name}` puts the inventory's config back")
    return FitResult(host=name, probes=tuple(fit.probes), fits=fits, kv_tokens=kv_tokens,
                     pin=pin, gpu_memory_utilization=util, changes=changes, diff=diff,
                     text=text, applied=applied)

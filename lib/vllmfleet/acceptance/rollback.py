"""Acceptance criterion 4 as a procedure: baseline → deploy a changed config → see the
change → roll back → files byte-identical and behaviour equal to the baseline.

:func:`observe` records what a user can see of the fleet: the sha256 of every deployed file
on the touched hosts, what each vLLM server reports on ``/v1/models`` (served names and
max_model_len), and at the proxy every model name listed and the limits ``/model/info``
shows (max_input/max_output tokens, rpm, tpm). :func:`changed_inventory` steps one host's
max_model_len down the fleet's OOM ladder (x 3/4: 16384 → 12288, 8192 → 6144) and scales
its aliases' max_input_tokens so the inventory stays valid. :func:`run_cycle` does the
whole round trip through the real deploy and rollback code and always rolls back what it
deployed, even when a step fails.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vllmfleet import render
from vllmfleet.deploy.apply import Options, Outcome, Say
from vllmfleet.deploy.run import Access, deploy_host, rollback_host
from vllmfleet.errors import DeployError
from vllmfleet.health import http_client, served_lengths, serving_problems
from vllmfleet.inventory import Inventory, load, proxy_url, vllm_url

LIMIT_KEYS = ("max_input_tokens", "max_output_tokens", "rpm", "tpm")


@dataclass(frozen=True, kw_only=True)
class Observation:
    """What the fleet shows: file digests, vLLM's models, the proxy's names and limits."""

    files: dict[str, dict[str, str | None]] = field(default_factory=dict)
    served: dict[str, dict[str, Any]] = field(default_factory=dict)
    proxy_models: tuple[str, ...] = ()
    proxy_limits: dict[str, dict[str, Any]] = field(default_factory=dict)

    def differences(self, other: Observation) -> list[str]:
        """Every way ``other`` differs from this observation, in words."""
        out = []
        for host in sorted(set(self.files) | set(other.files)):
            mine, theirs = self.files.get(host, {}), other.files.get(host, {})
            for path in sorted(set(mine) | set(theirs)):
                if mine.get(path) != theirs.get(path):
                    out.append(f"{host}:{path}: sha256 {_short(mine.get(path))} -> "
                               f"{_short(theirs.get(path))}")
        for host in sorted(set(self.served) | set(other.served)):
            if self.served.get(host) != other.served.get(host):
                out.append(f"{host} /v1/models: {self.served.get(host)} -> "
                           f"{other.served.get(host)}")
        if set(self.proxy_models) != set(other.proxy_models):
            out.append(f"proxy /v1/models: {sorted(self.proxy_models)} -> "
                       f"{sorted(other.proxy_models)}")
        for name in sorted(set(self.proxy_limits) | set(other.proxy_limits)):
            if self.proxy_limits.get(name) != other.proxy_limits.get(name):
                out.append(f"proxy limits of {name}: {self.proxy_limits.get(name)} -> "
                           f"{other.proxy_limits.get(name)}")
        return out


def _short(digest: str | None) -> str:
    return "absent" if digest is None else digest[:12]


def observe(inventory: Inventory, hosts: Sequence[str], *, access: Access,
            key: str | None) -> Observation:
    """Record what ``hosts`` (files) and the fleet's servers (behaviour) show now."""
    files: dict[str, dict[str, str | None]] = {}
    for name in dict.fromkeys(hosts):
        paths = [f.remote_path for f in render.render_host(inventory, name,
                                                           templates=access.templates)]
        with access.adapter(inventory, inventory.hosts[name]) as adapter:
            found = {p: adapter.read(p) for p in paths}
        files[name] = {p: None if c is None else hashlib.sha256(c).hexdigest()
                       for p, c in found.items()}
    served: dict[str, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with http_client(timeout_s=30.0) as client:
        for name, host in inventory.vllm_hosts.items():
            backend_key = os.environ.get(inventory.proxy.backend_key_env)
            response = client.get(vllm_url(host) + "/v1/models", headers={
                "Authorization": f"Bearer {backend_key}"} if backend_key else {})
            lengths = served_lengths(response.json()) if response.status_code == 200 else None
            served[name] = {"HTTP": response.status_code} if lengths is None else lengths
        base = proxy_url(inventory)
        listed = client.get(base + "/v1/models", headers=headers)
        info = client.get(base + "/model/info", headers=headers)
    models = tuple(sorted(m["id"] for m in listed.json().get("data", []))) \
        if listed.status_code == 200 else (f"HTTP {listed.status_code}",)
    limits = {str(d["model_name"]): {k: (d.get("model_info") or {}).get(k) for k in LIMIT_KEYS}
              for d in info.json().get("data", [])} if info.status_code == 200 else {
        "HTTP": {"status": info.status_code}}
    return Observation(files=files, served=served, proxy_models=models, proxy_limits=limits)


def step_down(max_model_len: int) -> int:
    """The next rung of the fleet's OOM ladder: x 3/4, a multiple of 256."""
    return max(256, max_model_len * 3 // 4 // 256 * 256)


def changed_inventory(inventory: Inventory, host: str, folder: Path, *,
                      max_model_len: int | None = None) -> Inventory:
    """A copy of ``inventory`` in ``folder`` with ``host``'s max_model_len lowered (default
    one rung) and its aliases' max_input_tokens scaled with it (the rules stay met)."""
    vllm = inventory.hosts[host].vllm
    if vllm is None:
        raise DeployError(f"{host} runs no vLLM: pick a vLLM host for the rollback check",
                          host=host)
    new = max_model_len or step_down(vllm.max_model_len)
    data: Any = yaml.safe_load(inventory.path.read_text(encoding="utf-8"))
    data["hosts"][host]["vllm"]["max_model_len"] = new
    for name, alias in data.get("aliases", {}).items():
        if alias.get("host") == host:
            limit = inventory.aliases[name]
            scaled = limit.max_input_tokens * new // vllm.max_model_len
            alias["max_input_tokens"] = max(1, min(scaled, new - limit.max_output_tokens))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / inventory.path.name  # the same name: rendered headers stay the same
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load(path)


@dataclass(frozen=True, kw_only=True)
class Cycle:
    """The three observations of one round trip and what each step did."""

    host: str
    served_model_name: str  # the host's, before and during (the change keeps it)
    max_model_len: tuple[int, int]  # (before, during the changed deploy)
    baseline: Observation
    changed: Observation
    restored: Observation
    deploys: tuple[Outcome, ...]
    rollbacks: tuple[Outcome, ...]

    def problems(self) -> list[str]:
        """Why criterion 4 is not met (none: ``[]``)."""
        out = []
        old, new = self.max_model_len
        seen = self.changed.served.get(self.host, {})
        if serving_problems(seen, served=self.served_model_name, max_model_len=new):
            out.append(f"after the changed deploy {self.host} reports {seen}, not "
                       f"max_model_len {new}: the deploy did not take effect")
        if self.changed.proxy_limits == self.baseline.proxy_limits:
            out.append("after the changed deploy the proxy shows the same limits as before: "
                       "the proxy deploy did not take effect")
        out += [f"not restored: {d}" for d in self.baseline.differences(self.restored)]
        restored = self.restored.served.get(self.host)
        if restored and serving_problems(restored, served=self.served_model_name,
                                         max_model_len=old):
            out.append(f"{self.host} does not report max_model_len {old} again")
        return out


def _report(outcomes: Sequence[Outcome]) -> str:
    return "\n".join(o.report for o in outcomes if not o.ok)


def run_cycle(inventory: Inventory, host: str, *, access: Access, options: Options,
              say: Say, workdir: Path) -> Cycle:
    """Baseline, changed deploy (``host`` and the proxy), observation, rollback, observation."""
    touched = [host, inventory.proxy.host]
    baseline = observe(inventory, touched, access=access, key=options.master_key)
    changed_inv = changed_inventory(inventory, host, workdir / f"changed-{host}")
    vllm_before, vllm_after = inventory.hosts[host].vllm, changed_inv.hosts[host].vllm
    assert vllm_before is not None and vllm_after is not None
    deploys: list[Outcome] = []
    rollbacks: list[Outcome] = []
    try:
        deploys.append(deploy_host(changed_inv, host, access=access, options=options, say=say,
                                   services=("vllm",)))
        if deploys[-1].ok:
            deploys.append(deploy_host(changed_inv, inventory.proxy.host, access=access,
                                       options=options, say=say, services=("proxy",),
                                       task="deploy.proxy"))
        if not all(o.ok for o in deploys):
            raise DeployError("the changed deploy failed:\n" + _report(deploys))
        changed = observe(changed_inv, touched, access=access, key=options.master_key)
    finally:
        for done in reversed(deploys):
            if done.result == "deployed":
                rollbacks.append(rollback_host(inventory, done.host, to=done.backup,
                                               access=access, options=options, say=say))
    if not all(o.ok for o in rollbacks):
        raise DeployError("the rollback failed:\n" + _report(rollbacks))
    restored = observe(inventory, touched, access=access, key=options.master_key)
    return Cycle(host=host, served_model_name=vllm_before.served_model_name,
                 max_model_len=(vllm_before.max_model_len, vllm_after.max_model_len),
                 baseline=baseline, changed=changed, restored=restored, deploys=tuple(deploys),
                 rollbacks=tuple(rollbacks))


def to_json(cycle: Cycle) -> str:
    """The cycle's observations, for a report artifact."""
    def plain(o: Observation) -> dict[str, Any]:
        return {"files": o.files, "served": o.served, "proxy_models": list(o.proxy_models),
                "proxy_limits": o.proxy_limits}

    return json.dumps({"host": cycle.host, "max_model_len": list(cycle.max_model_len),
                       "baseline": plain(cycle.baseline), "changed": plain(cycle.changed),
                       "restored": plain(cycle.restored)}, indent=2)

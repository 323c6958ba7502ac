"""Acceptance criterion 4: after a deploy and a rollback, the files are byte-identical to the
backup and the behaviour (served names, max_model_len, proxy limits) equals the baseline.

Per selected host: record a baseline, deploy a changed config (max_model_len one rung down
the OOM ladder, 16384 → 12288, with the host's aliases' max_input_tokens scaled to match)
to the host and the proxy, observe the change, roll both back to the backups the deploy
took, and compare. The procedure is :func:`vllmfleet.acceptance.rollback.run_cycle`: the real
deploy and rollback code, backups and health gates included.

``--fleet local`` (default): the fleet runs on this machine as deployable local hosts — each
vLLM host's "container" is the emulator started from the deployed compose file, the proxy
is the real LiteLLM on the deployed config — installed from the inventory once per module.
``--fleet inventory``: the real hosts over SSH (host keys from ~/.ssh/known_hosts, the
master key from the variable the inventory names); the deploy CHANGES them for a minute.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_vllmfleet.checks import fail_with
from pytest_vllmfleet.plugin import state_of
from vllmfleet.acceptance.rollback import run_cycle, to_json
from vllmfleet.deploy.apply import Options
from vllmfleet.deploy.run import Access, deploy_all
from vllmfleet.errors import FleetError
from vllmfleet.inventory import Inventory, key_hint, load

pytestmark = pytest.mark.rollback


@dataclass(frozen=True)
class Target:
    """The fleet the round trip runs against and how to reach it."""

    inventory: Inventory
    access: Access
    options: Options
    workdir: Path


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@pytest.fixture(scope="module")
def rollback_target(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The fleet to deploy to: local deployable hosts (installed once) or the real fleet."""
    from vllmfleet.localfleet.hosts import LocalHosts, localize

    state = state_of(request.config)
    inventory = state.require()
    workdir = tmp_path_factory.mktemp("rollback")
    templates = inventory.path.parent / "templates"
    if state.settings.mode == "inventory":
        env = inventory.proxy.master_key_env
        yield Target(inventory=inventory, access=Access(templates=templates),
                     options=Options(master_key=os.environ.get(env) or None,
                                     # the vLLM servers' key: to verify them directly (401
                                     # without it), and kept as it is on the hosts
                                     backend_key=os.environ.get(
                                         inventory.proxy.backend_key_env) or None,
                                     key_hint=key_hint(inventory)),
                     workdir=workdir)
        return
    local = load(localize(inventory, workdir / "inventory"))
    key = "sk-" + secrets.token_urlsafe(24)
    hosts = LocalHosts(local, workdir / "hosts", key=key, emulator_args=[
        "--emulator-time-scale", repr(1.0 / state.settings.speed)])
    try:
        target = Target(inventory=local, access=Access(templates=templates,
                                                       factory=hosts.adapter),
                        options=Options(store=workdir / "backups", master_key=key),
                        workdir=workdir)
        try:
            installed = deploy_all(local, access=target.access, options=target.options,
                                   say=_say)
        except FleetError as exc:
            pytest.fail(f"vllmfleet: installing the local fleet failed: {exc}", pytrace=False)
        failed = [o.report for o in installed if not o.ok]
        if failed:
            pytest.fail("vllmfleet: installing the local fleet failed:\n" + "\n".join(failed),
                        pytrace=False)
        yield target
    finally:
        hosts.close()


def test_deploy_then_rollback_restores_files_and_behaviour(rollback_target: Target,
                                                           fleet_host: str) -> None:
    t = rollback_target
    try:
        cycle = run_cycle(t.inventory, fleet_host, access=t.access, options=t.options,
                          say=_say, workdir=t.workdir)
    except FleetError as exc:
        pytest.fail(f"vllmfleet: the round trip on {fleet_host} failed: {exc}", pytrace=False)
    (t.workdir / f"rollback-{fleet_host}.json").write_text(to_json(cycle))
    problems = cycle.problems()
    if problems:
        before, during = cycle.max_model_len
        fail_with(f"{fleet_host}: deploy (max_model_len {before} -> {during}) and rollback",
                  problems)

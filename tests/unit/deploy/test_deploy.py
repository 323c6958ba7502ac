"""The deploy flow on a local adapter (files in a temp folder, a recording fake service) with
the health probes replaced: ordering, what is restored after each kind of failure, the
lock, the diagnosis text and the summary."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from vllmfleet import health
from vllmfleet.deploy import apply as deploy
from vllmfleet.deploy import backups, locks
from vllmfleet.deploy.apply import Options, Outcome
from vllmfleet.deploy.plan import Desired
from vllmfleet.errors import DeployError, HostError
from vllmfleet.health import Expect
from vllmfleet.inventory import Inventory
from vllmfleet.remote import (
    CallableService,
    HostAdapter,
    LocalAdapter,
)

COMPOSE = "/opt/vllmfleet/vllm-compose.yaml"


class Host:
    """A local host whose vLLM "restart" is recorded and may be told to fail."""

    def __init__(self, root: Path) -> None:
        self.events: list[str] = []
        self.fail_restart = False
        service = CallableService(restart_fn=self.restart, is_running_fn=lambda: True,
                                  logs_fn=lambda n: "INFO starting\nERROR boom\n")
        self.adapter = LocalAdapter(host="wintermute", root=root / "host",
                                    services={"vllm": service})
        self.file = root / "host" / COMPOSE.lstrip("/")

    def restart(self) -> None:
        self.events.append(f"restart with {self.file.read_text().strip()}")
        if self.fail_restart:
            raise RuntimeError("docker: no such image")


def want(text: str) -> list[Desired]:
    return [Desired(remote_path=COMPOSE, content=text.encode(), mode=0o644, service="vllm",
                    kind="vllm-launch")]


def run(inventory: Inventory, host: Host, tmp_path: Path, text: str, **options: object) -> Outcome:
    return deploy.apply(inventory=inventory, host=inventory.hosts["wintermute"],
                        adapter=host.adapter, desired=want(text), say=host.events.append,
                        options=Options(store=tmp_path / "backups", **options))  # type: ignore[arg-type]


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[Expect], None]]:
    """Replace the health wait and verification: each call pops a behaviour (default: ok)."""
    plan: list[Callable[[Expect], None]] = []

    def wait(adapter: HostAdapter, expect: Expect, *, timeout_s: float | None = None,
             **_: object) -> float:
        if plan:
            plan.pop(0)(expect)
        return 0.1

    monkeypatch.setattr(health, "wait_healthy", wait)
    monkeypatch.setattr(health, "verify", lambda expect, **_: [])
    return plan


def test_a_deploy_backs_up_before_it_pushes_and_restarts_once(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]]) -> None:
    host = Host(tmp_path)
    host.file.parent.mkdir(parents=True)
    host.file.write_text("old\n")
    outcome = run(reference, host, tmp_path, "new\n")
    assert outcome.result == "deployed" and outcome.changed == (COMPOSE,)
    assert host.events.index("restart with new") > next(
        i for i, e in enumerate(host.events) if e.startswith("backup "))
    backup = backups.load(tmp_path / "backups", "wintermute", outcome.backup or "")
    assert [i.content for i in backups.restore_plan(backup)] == [b"old\n"]
    assert not (host.file.parent / locks.LOCK_NAME).exists()
    assert run(reference, host, tmp_path, "new\n").result == "unchanged"
    assert sum(e.startswith("restart with") for e in host.events) == 1


def test_a_service_that_does_not_come_up_is_restored_and_restarted(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]]) -> None:
    host = Host(tmp_path)
    host.file.parent.mkdir(parents=True)
    host.file.write_text("old\n")

    def dies(_: Expect) -> None:
        raise DeployError("the vllm service stopped during start-up (exited)")

    probes.append(dies)
    outcome = run(reference, host, tmp_path, "new\n")
    assert outcome.result == "failed" and outcome.restored is True
    assert outcome.report.startswith("deploy wintermute: FAILED at wait healthy / verify: "
                                     "the vllm service stopped during start-up (exited)\n")
    assert host.file.read_text() == "old\n"
    assert [e for e in host.events if e.startswith("restart with")] == [
        "restart with new", "restart with old"]
    assert "log tail of vllm" in outcome.report and "    | ERROR boom" in outcome.report
    assert "rolled back:   yes" in outcome.report
    assert "diagnosis:     no known cause recognised" in outcome.report
    assert not (host.file.parent / locks.LOCK_NAME).exists()


def test_a_failed_restart_is_restored_too(reference: Inventory, tmp_path: Path,
                                          probes: list[Callable[[Expect], None]]) -> None:
    host = Host(tmp_path)
    host.file.parent.mkdir(parents=True)
    host.file.write_text("old\n")
    host.fail_restart = True
    outcome = run(reference, host, tmp_path, "new\n")
    assert outcome.result == "failed" and "FAILED at restart" in outcome.report
    assert "docker: no such image" in outcome.report
    assert host.file.read_text() == "old\n" and outcome.restored is False  # restart fails again
    assert "the old config did not come up again" in outcome.report
    assert "the host needs attention NOW" in outcome.report
    assert not (host.file.parent / locks.LOCK_NAME).exists()


def test_a_first_deploy_that_fails_removes_its_files(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]]) -> None:
    host = Host(tmp_path)

    def dies(_: Expect) -> None:
        raise DeployError("exited")

    probes.append(dies)
    outcome = run(reference, host, tmp_path, "new\n")
    assert outcome.result == "failed" and outcome.restored is False
    assert not host.file.exists()  # as it was: absent
    assert "no previous config of vllm to start (first deploy)" in outcome.report
    assert not (host.file.parent / locks.LOCK_NAME).exists()


def test_dry_run_reads_only(reference: Inventory, tmp_path: Path,
                            probes: list[Callable[[Expect], None]]) -> None:
    host = Host(tmp_path)
    outcome = run(reference, host, tmp_path, "new\n", dry_run=True)
    assert outcome.result == "planned" and "+new" in outcome.report
    assert not host.file.exists() and not (tmp_path / "backups").exists()
    assert host.events == []


def test_a_held_lock_changes_nothing(reference: Inventory, tmp_path: Path,
                                     probes: list[Callable[[Expect], None]]) -> None:
    host = Host(tmp_path)
    locks.acquire(host.adapter, locks.lock_path("/opt/vllmfleet"), owner="ann@desk pid 1",
                  action="rollback", task="deploy.wintermute")
    outcome = run(reference, host, tmp_path, "new\n")
    assert outcome.result == "failed" and "ann@desk pid 1 (rollback)" in outcome.report
    assert outcome.report.startswith("deploy wintermute: FAILED at taking the lock: ")
    assert not host.file.exists() and host.events == []
    holder = locks.read(host.adapter, locks.lock_path("/opt/vllmfleet"))
    assert holder is not None and holder.owner == "ann@desk pid 1"  # not ours to remove






def test_options_are_checked() -> None:
    with pytest.raises(DeployError, match="keep at least 1 backup"):
        Options(keep=0)










def test_an_unreachable_host_fails_before_anything(reference: Inventory, tmp_path: Path) -> None:
    class Down(LocalAdapter):
        def read_file(self, remote_path: str) -> None:
            raise HostError("cannot connect", host="wintermute")

    down = Down(host="wintermute", root=tmp_path)
    outcome = deploy.apply(inventory=reference, host=reference.hosts["wintermute"], adapter=down,
                           desired=want("x"), options=Options(store=tmp_path / "b"),
                           say=lambda _: None)
    assert outcome.result == "failed" and "nothing was changed" in outcome.report
    assert outcome.report.startswith("deploy wintermute: FAILED at reading the host's files: "
                                     "wintermute: cannot connect\n")
    assert not (tmp_path / "b").exists()
    assert not list(tmp_path.rglob(locks.LOCK_NAME))








def test_ctrl_c_while_waiting_restores_the_backup_and_propagates(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    host = Host(tmp_path)
    host.file.parent.mkdir(parents=True)
    host.file.write_text("old\n")
    waits: list[float | None] = []

    def wait(adapter: HostAdapter, expect: Expect, *, timeout_s: float | None = None,
             **_: object) -> float:
        waits.append(timeout_s)
        if len(waits) == 1:
            raise KeyboardInterrupt
        return 0.1

    monkeypatch.setattr(health, "wait_healthy", wait)
    with pytest.raises(KeyboardInterrupt):
        run(reference, host, tmp_path, "new\n")
    assert host.file.read_text() == "old\n"
    assert [e for e in host.events if e.startswith("restart with")] == [
        "restart with new", "restart with old"]
    assert not (host.file.parent / locks.LOCK_NAME).exists()
    assert len(waits) == 2 and waits[1] is not None  # the restore waits briefly, not forever
    backup_id = backups.backup_ids(tmp_path / "backups", "wintermute")[0]
    told = "\n".join(host.events)
    assert f"inv rollback.wintermute --to {backup_id}" in told
    assert "INTERRUPTED" in told


def test_a_failed_prune_after_a_deploy_is_a_warning(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(store: Path, host: str, *, keep: int) -> list[str]:
        raise PermissionError(13, "Permission denied", str(store / host))

    monkeypatch.setattr(backups, "prune", broken)
    host = Host(tmp_path)
    outcome = run(reference, host, tmp_path, "new\n")
    assert outcome.result == "deployed" and host.file.read_text() == "new\n"
    warning = next(e for e in host.events if e.startswith("warning:"))
    assert "could not prune" in warning and "Permission denied" in warning
    assert not (host.file.parent / locks.LOCK_NAME).exists()


def test_deploy_all_keeps_every_outcome_when_pruning_fails(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from vllmfleet.deploy.run import Access, deploy_all
    from vllmfleet.inventory import Host as InventoryHost

    def broken(store: Path, host: str, *, keep: int) -> list[str]:
        raise OSError(5, "Input/output error", str(store / host))

    monkeypatch.setattr(backups, "prune", broken)
    service = CallableService(restart_fn=lambda: None, is_running_fn=lambda: True)

    def local(h: InventoryHost) -> HostAdapter:
        name = h.name
        return LocalAdapter(host=name, root=tmp_path / "hosts" / name,
                            services={"vllm": service, "proxy": service})

    said: list[str] = []
    outcomes = deploy_all(reference, access=Access(factory=local), say=said.append,
                          options=Options(store=tmp_path / "backups", master_key="k",
                                          check_proxy_config=False))  # (see test_litellm_check)
    assert [(o.host, o.result) for o in outcomes] == [
        (n, "deployed") for n in [*reference.vllm_hosts, reference.proxy.host]]
    assert sum("could not prune" in s for s in said) == len(outcomes)




PROXY_FILES = {"/etc/litellm/config.yaml": "litellm-config",
               "/etc/litellm/vllmfleet_limits.json": "proxy-limits",
               "/etc/litellm/vllmfleet_hooks.py": "proxy-hooks"}


def test_a_proxy_deploy_whose_second_put_fails_restores_the_first_file(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]]) -> None:
    events: list[str] = []

    class SecondPutFails(LocalAdapter):
        puts = 0

        def put(self, remote_path: str, content: bytes, *, mode: int = 0o644) -> None:
            if remote_path.startswith("/etc/litellm/") and ".vllmfleet-deploy.lock" \
                    not in remote_path:
                SecondPutFails.puts += 1
                if SecondPutFails.puts == 2:
                    raise HostError(f"uploading {remote_path}: the SSH connection was cut",
                                    host="motoko")
            super().put(remote_path, content, mode=mode)

    service = CallableService(restart_fn=lambda: events.append("restart"),
                              is_running_fn=lambda: True)
    adapter = SecondPutFails(host="motoko", root=tmp_path / "host",
                             services={"proxy": service})
    before = {}
    for i, path in enumerate(PROXY_FILES):
        content = f"old {i}\n".encode() * (i + 1)
        mode = 0o640 if i == 0 else 0o644
        LocalAdapter.put(adapter, path, content, mode=mode)
        before[path] = (content, adapter.path_of(path).stat().st_mode & 0o7777)
    desired = [Desired(remote_path=p, content=f"new {p}\n".encode(), mode=0o644,
                       service="proxy", kind=k) for p, k in PROXY_FILES.items()]
    outcome = deploy.apply(inventory=reference, host=reference.hosts["motoko"], adapter=adapter,
                           desired=desired, say=events.append,
                           options=Options(store=tmp_path / "backups", master_key="k",
                                           check_proxy_config=False))  # fake contents
    assert outcome.result == "failed" and "FAILED at push" in outcome.report
    assert outcome.restored is True and "restart" not in events
    assert any(e.startswith("restoring 2 file(s)") for e in events)  # the first was replaced
    after = {p: (adapter.path_of(p).read_bytes(), adapter.path_of(p).stat().st_mode & 0o7777)
             for p in PROXY_FILES}
    assert after == before  # the first file put back byte for byte (and mode); none changed
    assert sorted(p.name for p in (tmp_path / "host" / "etc" / "litellm").iterdir()) == \
        sorted(Path(p).name for p in PROXY_FILES)  # no temp file left
    assert not list(tmp_path.rglob(locks.LOCK_NAME))


def test_a_proxy_config_the_host_litellm_cannot_load_changes_nothing(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]]) -> None:
    events: list[str] = []
    service = CallableService(restart_fn=lambda: events.append("restart"),
                              is_running_fn=lambda: True)
    adapter = LocalAdapter(host="motoko", root=tmp_path / "host", services={"proxy": service})
    for path in PROXY_FILES:
        LocalAdapter.put(adapter, path, b"old\n")
    desired = [Desired(remote_path=p, content=b"model_list: [\n", mode=0o644,
                       service="proxy", kind=k) for p, k in PROXY_FILES.items()]
    # a local proxy host: its LiteLLM is the one installed here
    motoko = dataclasses.replace(reference.hosts["motoko"], platform="local")
    inventory = dataclasses.replace(reference, hosts={**reference.hosts, "motoko": motoko})
    outcome = deploy.apply(inventory=inventory, host=motoko, adapter=adapter,
                           desired=desired, say=events.append,
                           options=Options(store=tmp_path / "backups", master_key="k"))
    assert outcome.result == "failed"
    assert "FAILED at checking the new proxy config with the host's LiteLLM" in outcome.report
    assert "nothing was changed on the host" in outcome.report
    assert "restart" not in events
    assert all(adapter.path_of(p).read_bytes() == b"old\n" for p in PROXY_FILES)


class RecordsRestarts(LocalAdapter):
    """A local proxy host that records how each restart was asked for."""

    restarts: list[tuple[str | None, bool]]

    def restart(self, *, service: object = None, reload_units: bool = False) -> None:
        self.restarts.append((str(service), reload_units))


@pytest.mark.parametrize(("unit_changes", "reload"), [(True, True), (False, False)])
def test_the_proxy_restart_reloads_units_only_when_the_unit_changed(
        reference: Inventory, tmp_path: Path, probes: list[Callable[[Expect], None]],
        unit_changes: bool, reload: bool) -> None:
    unit = "/etc/systemd/system/litellm.service"
    adapter = RecordsRestarts(host="motoko", root=tmp_path / "host")
    adapter.restarts = []
    LocalAdapter.put(adapter, unit, b"[Service]\nExecStart=/old\n")
    desired = [Desired(remote_path="/etc/litellm/config.yaml", content=b"new\n", mode=0o644,
                       service="proxy", kind="litellm-config"),
               Desired(remote_path=unit, mode=0o644, service="proxy", kind="systemd-unit",
                       content=b"[Service]\nExecStart=/new\n" if unit_changes
                       else b"[Service]\nExecStart=/old\n")]
    outcome = deploy.apply(inventory=reference, host=reference.hosts["motoko"], adapter=adapter,
                           desired=desired, say=lambda _: None,
                           options=Options(store=tmp_path / "backups", master_key="k",
                                           check_proxy_config=False))  # fake contents
    assert outcome.result == "deployed", outcome.report
    assert adapter.restarts == [("proxy", reload)]

"""The deploy flow on a local adapter (files in a temp folder, a recording fake service) with
the health probes replaced: ordering, what is restored after each kind of failure, the
lock, the diagnosis text and the summary."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from vllmfleet import health
from vllmfleet.deploy import apply as deploy
from vllmfleet.deploy import backups, locks
from vllmfleet.deploy.apply import Options, Outcome
from vllmfleet.deploy.diagnose import diagnose
from vllmfleet.deploy.plan import Desired
from vllmfleet.deploy.run import restorable, summary
from vllmfleet.errors import DeployError, HostError
from vllmfleet.health import Expect
from vllmfleet.inventory import Inventory
from vllmfleet.remote import (
    CallableService,
    CommandResult,
    HostAdapter,
    LocalAdapter,
    WindowsAdapter,
    follow,
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


def test_lock_is_exclusive_and_released_only_by_its_owner(tmp_path: Path) -> None:
    adapter = LocalAdapter(host="h", root=tmp_path)
    path = "/opt/vllmfleet/" + locks.LOCK_NAME
    first = locks.acquire(adapter, path, owner="a", action="deploy", task="deploy.h")
    with pytest.raises(DeployError,
                       match=r"h: another deploy holds the lock .* a \(deploy\)") as caught:
        locks.acquire(adapter, path, owner="b", action="deploy", task="deploy.h")
    assert caught.value.host == "h"
    second = locks.acquire(adapter, path, owner="b", action="deploy", task="deploy.h",
                           force=True)
    assert second.broke is not None and second.broke.owner == "a"
    assert "now held by b" in first.release()
    assert second.release() == "" and adapter.read(path) is None
    assert not [p for p in (tmp_path / "opt" / "vllmfleet").iterdir()]  # no temp file left


def test_an_unreadable_lock_counts_as_stale(tmp_path: Path) -> None:
    adapter = LocalAdapter(host="h", root=tmp_path)
    path = "/opt/vllmfleet/" + locks.LOCK_NAME
    adapter.put(path, b"garbage")
    with pytest.raises(DeployError, match="STALE") as caught:
        locks.acquire(adapter, path, owner="b", action="deploy", task="deploy.h")
    assert "inv deploy.h --force-unlock" in str(caught.value)


def test_options_are_checked() -> None:
    with pytest.raises(DeployError, match="keep at least 1 backup"):
        Options(keep=0)


def test_kv_oom_leads_to_the_planners_largest_max_model_len(reference: Inventory) -> None:
    log = ("ValueError: To serve at least one request with the models's max seq len (100000), "
           "(6.10 GiB KV cache is needed, which is larger than the available KV cache memory "
           "(5.18 GiB). Based on the available memory, the estimated maximum model length is "
           "84896. Try increasing `gpu_memory_utilization` …")
    text = diagnose(log, inventory=reference, host="wintermute")
    assert "one request of max_model_len 100000 does not fit" in text
    assert "largest max_model_len that fits = 84896" in text
    assert "set hosts.wintermute.vllm.max_model_len to at most 84896" in text


def test_free_memory_and_other_causes(reference: Inventory) -> None:
    log = ("Free memory on device (11.25/12.0 GiB) on startup is less than desired GPU memory "
           "utilization (0.99, 11.88 GiB).")
    text = diagnose(log, inventory=reference, host="wintermute")
    assert "largest gpu_memory_utilization that starts is 0.9" in text
    assert "unrecognized arguments" not in diagnose("error: unrecognized arguments: --x",
                                                    inventory=reference, host="wintermute")
    assert "extra_args" in diagnose("error: unrecognized arguments: --x", inventory=reference,
                                    host="wintermute")
    assert diagnose("", inventory=reference, host="motoko").startswith("no known cause")


def test_rollback_default_skips_the_copies_a_rollback_takes(tmp_path: Path) -> None:
    adapter = LocalAdapter(host="h", root=tmp_path / "host")
    adapter.put("/opt/x", b"1")
    store = tmp_path / "backups"

    def take(note: str) -> str:
        return backups.create(adapter, "h", ["/opt/x"], store=store, inventory_digest="d",
                              note=note).id

    first = take("before deploy of inventory x")
    take("before rollback to y")
    assert restorable(store, "h").id == first
    with pytest.raises(Exception, match="no backups of nobody"):
        restorable(store, "nobody")


def test_summary_names_the_failed_hosts() -> None:
    ok = Outcome(host="a", action="deploy", services=("vllm",), result="deployed",
                 changed=("/x",), backup="20260101T000000Z", seconds=1.25, connections=1)
    bad = Outcome(host="b", action="deploy", services=("vllm",), result="failed",
                  backup="20260101T000000Z", restored=True, seconds=3, connections=1,
                  report="deploy b: FAILED at restart: boom")
    lines = summary([ok, bad]).splitlines()
    assert lines[0].split() == ["HOST", "SERVICES", "RESULT", "CHANGED", "BACKUP", "TIME", "SSH"]
    assert lines[1].split() == ["a", "vllm", "deployed", "1", "20260101T000000Z", "1.2", "s",
                                "1"]
    assert "FAILED (rolled back)" in lines[2] and lines[-1] == "failed: b"
    ok.raise_for_failure()
    with pytest.raises(DeployError) as caught:
        bad.raise_for_failure()
    assert str(caught.value) == caught.value.report == bad.report
    assert caught.value.host == "b" and caught.value.backup == "20260101T000000Z"
    assert caught.value.restored is True


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


class WindowsWire:
    """A Windows host by SFTP files and PowerShell ``Move-Item`` (without -Force: exclusive)."""

    connection_count = 1

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.scripts: list[str] = []

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        script = base64.b64decode(command.rsplit(" ", 1)[1]).decode("utf-16-le")
        self.scripts.append(script)
        put = re.search(r"\$target = '([^']+)'\n\$tmp = '([^']+)'", script)
        if put:  # the adapter's atomic put: Move-Item -Force of the uploaded temp file
            self.files["/" + put[1]] = self.files.pop("/" + put[2])
        move = re.search(r"Move-Item -LiteralPath '([^']+)' -Destination '([^']+)'( -Force)?",
                         script)
        if move:
            src, dst, force = "/" + move[1], "/" + move[2], move[3]
            if dst in self.files and not force:
                return CommandResult(command=command, exit_code=1, stdout="",
                              stderr="Cannot create a file when that file already exists.")
            self.files[dst] = self.files.pop(src)
        return CommandResult(command=command, exit_code=0, stdout="", stderr="")

    def upload(self, path: str, content: bytes) -> None:
        self.files[path] = content

    def download(self, path: str) -> bytes | None:
        return self.files.get(path)

    def stat(self, path: str) -> int | None:
        return 0o644 if path in self.files else None

    def makedirs(self, path: str) -> None: ...

    def remove(self, path: str) -> None:
        self.files.pop(path, None)

    def home(self) -> str:
        return "/C:/Users/ops"

    def close(self) -> None: ...


def test_the_lock_on_windows_is_an_exclusive_move() -> None:
    wire = WindowsWire()
    adapter = WindowsAdapter(host="armitage", transport=wire, base_dir="C:/vllmfleet")
    path = locks.lock_path("C:/vllmfleet")
    held = locks.acquire(adapter, path, owner="a", action="deploy", task="deploy.armitage")
    assert any("Move-Item -LiteralPath 'C:/vllmfleet/.vllmfleet-deploy.lock." in s
               and "-Destination 'C:/vllmfleet/.vllmfleet-deploy.lock'" in s
               and "-Force" not in s.split("Move-Item -LiteralPath 'C:/vllmfleet/.vllmfleet-"
                                           "deploy.lock.")[1].splitlines()[0]
               for s in wire.scripts)
    with pytest.raises(DeployError, match="a \\(deploy\\)"):
        locks.acquire(adapter, path, owner="b", action="deploy", task="deploy.armitage")
    assert held.release() == "" and list(wire.files) == []


def test_follow_prints_new_lines_as_they_come(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    pages = iter(["a\nb\n", "a\nb\nc\n", "b\nc\nd\ne\n"])
    service = CallableService(restart_fn=lambda: None, is_running_fn=lambda: True,
                              logs_fn=lambda n: next(pages))
    adapter = LocalAdapter(host="h", root=tmp_path, services={"vllm": service})
    follow(adapter, "vllm", ["a", "b"], polls=3, every_s=0)
    assert capsys.readouterr().out == "c\nd\ne\n"


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
                          options=Options(store=tmp_path / "backups", master_key="k"))
    assert [(o.host, o.result) for o in outcomes] == [
        (n, "deployed") for n in [*reference.vllm_hosts, reference.proxy.host]]
    assert sum("could not prune" in s for s in said) == len(outcomes)


def test_a_snapshot_whose_prune_fails_still_returns_the_backup(
        reference: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllmfleet.deploy.run import Access, snapshot

    def broken(store: Path, host: str, *, keep: int) -> list[str]:
        raise OSError(30, "Read-only file system", str(store / host))

    monkeypatch.setattr(backups, "prune", broken)
    said: list[str] = []
    backup, _ = snapshot(reference, "wintermute", options=Options(store=tmp_path / "backups"),
                         access=Access(factory=lambda h: LocalAdapter(host=h.name,
                                                                      root=tmp_path / "h")),
                         say=said.append)
    assert backup.path.is_dir()
    assert len(said) == 1 and "could not prune" in said[0] and "Read-only" in said[0]


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
                           options=Options(store=tmp_path / "backups", master_key="k"))
    assert outcome.result == "failed" and "FAILED at push" in outcome.report
    assert outcome.restored is True and "restart" not in events
    assert any(e.startswith("restoring 2 file(s)") for e in events)  # the first was replaced
    after = {p: (adapter.path_of(p).read_bytes(), adapter.path_of(p).stat().st_mode & 0o7777)
             for p in PROXY_FILES}
    assert after == before  # the first file put back byte for byte (and mode); none changed
    assert sorted(p.name for p in (tmp_path / "host" / "etc" / "litellm").iterdir()) == \
        sorted(Path(p).name for p in PROXY_FILES)  # no temp file left
    assert not list(tmp_path.rglob(locks.LOCK_NAME))


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
                           options=Options(store=tmp_path / "backups", master_key="k"))
    assert outcome.result == "deployed", outcome.report
    assert adapter.restarts == [("proxy", reload)]

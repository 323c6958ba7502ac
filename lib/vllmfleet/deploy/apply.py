"""Change one host safely: lock → backup → push → restart → wait healthy → verify → unlock.

:func:`apply` takes the files a host should have (:class:`~vllmfleet.deploy.plan.Desired`:
rendered for a deploy, a backup's for a rollback) and an adapter for the host:

1. read the host's files and compare; nothing differs → done, nothing restarts
   (``dry_run``: return the unified diff and stop here);
2. take the host's deploy lock (:mod:`vllmfleet.deploy.locks`);
3. back up every file it will replace (:func:`vllmfleet.deploy.backups.create`: verified before it
   exists), and compare again against what the backup holds;
4. push each changed file (atomic put) — a failure here puts back the files already pushed
   and restarts nothing (the service still runs the old config);
5. restart the services whose files changed (``systemctl daemon-reload`` first when the
   systemd unit changed), wait until each answers its health URL (tenacity, the
   inventory's ``start_timeout_s``) and verify what it serves;
6. any failure in 5: read the log tail, diagnose it, restore the backup's files, check them
   byte for byte, restart, wait healthy again, and return a failed :class:`Outcome` whose
   ``report`` says all of that. The lock is released in every case.
7. Ctrl-C (or any BaseException) after the push: the same restore, waiting at most
   :data:`INTERRUPTED_WAIT_S`; the backup id and ``inv rollback.<host> --to <id>`` are said,
   then the interrupt goes on.

Only :class:`~vllmfleet.errors.FleetError` (and bugs) reach the caller as a failed outcome;
:class:`Outcome` never raises — :meth:`Outcome.raise_for_failure` does, for one-host callers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from vllmfleet import health
from vllmfleet.deploy import backups, litellm_check, locks, measured
from vllmfleet.deploy.backend_key import SecretLine, merged
from vllmfleet.deploy.diagnose import diagnose
from vllmfleet.deploy.plan import Change, Desired, expectations, services_of, unit_changed
from vllmfleet.errors import DeployError, FleetError
from vllmfleet.health import Expect
from vllmfleet.inventory import Host, Inventory
from vllmfleet.remote import MAX_LOG_LINES, HostAdapter, RemoteFile, ServiceName, sha256

Say = Callable[[str], None]
Action = Literal["deploy", "rollback"]
DeployResult = Literal["unchanged", "planned", "deployed", "failed"]
NOTE_DEPLOY = "before deploy"
NOTE_ROLLBACK = "before rollback"
NOTE_SNAPSHOT = "snapshot"
INTERRUPTED_WAIT_S = 30.0  # the health wait of the restore after a Ctrl-C (the user is waiting)


class Step(StrEnum):
    """Where a deploy is; the value is the text a failure report says (``FAILED at <step>``)."""

    READ = "reading the host's files"
    LOCK = "taking the lock"
    BACKUP = "backup"
    CHECK = "checking the new proxy config with the host's LiteLLM"
    PUSH = "push"
    RESTART = "restart"
    WAIT_VERIFY = "wait healthy / verify"


@dataclass(frozen=True, kw_only=True)
class Options:
    """How a deploy behaves (the tasks fill this from arguments and invoke config)."""

    store: Path = backups.DEFAULT_STORE
    keep: int = 10
    dry_run: bool = False
    force_unlock: bool = False
    owner: str = field(default_factory=locks.default_owner)
    master_key: str | None = field(default=None, repr=False)
    # the vLLM servers' --api-key: installed on the hosts (deploy.backend_key), and used to
    # verify them directly
    backend_key: str | None = field(default=None, repr=False)
    key_hint: str = ""
    log_lines: int = 40
    stale_after_s: float = locks.DEFAULT_STALE_AFTER_S
    check_proxy_config: bool = True  # run the host's LiteLLM on a new proxy config first

    def __post_init__(self) -> None:
        if isinstance(self.keep, bool) or not isinstance(self.keep, int) or self.keep < 1:
            raise DeployError(f"backups_keep={self.keep!r}: keep at least 1 backup per host; "
                              "set vllmfleet.backups_keep in invoke.yaml to 1 or more")
        if not 1 <= self.log_lines <= MAX_LOG_LINES:
            raise DeployError(f"log_lines={self.log_lines!r}: give 1 to {MAX_LOG_LINES} lines")


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a deploy or rollback of one host did."""

    host: str
    action: Action
    services: tuple[ServiceName, ...]
    result: DeployResult
    changed: tuple[str, ...] = ()
    backup: str | None = None
    restored: bool | None = None  # after a failure: host back on the backup and healthy?
    seconds: float = 0.0
    connections: int = 0
    report: str = ""  # the diff (planned) or the failure report (failed)

    @property
    def ok(self) -> bool:
        return self.result != "failed"

    def raise_for_failure(self) -> None:
        """Raise :class:`~vllmfleet.errors.DeployError` (message: the report) if it failed."""
        if not self.ok:
            raise DeployError(self.report, host=self.host, report=self.report,
                              backup=self.backup, restored=self.restored)


class _Failed(Exception):
    def __init__(self, step: Step, error: BaseException) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


def _indent(text: str, prefix: str = "    | ") -> str:
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines()) or prefix + "(empty)"


class _Apply:
    """One run of :func:`apply` (its state between the steps)."""

    def __init__(self, *, inventory: Inventory, host: Host, adapter: HostAdapter,
                 desired: Sequence[Desired], options: Options, say: Say, action: Action,
                 task: str, note: str, secrets: Sequence[SecretLine] = ()) -> None:
        self.inventory, self.host, self.adapter = inventory, host, adapter
        # key files: not in the backup; what the host had is kept here for a restore
        self.secrets = list(secrets)
        self.secret_have: dict[str, RemoteFile | None] = {}
        self.desired, self.options, self.say = list(desired), options, say
        self.action, self.task, self.note = action, task, note
        self.started = time.monotonic()
        self.services = tuple(services_of(self.desired))
        self.backup: backups.Backup | None = None
        self.todo: list[Change] = []
        self.pushed: list[Change] = []
        self.restarted: list[ServiceName] = []

    # -- the outcome ------------------------------------------------------------------------
    def outcome(self, result: DeployResult, *, report: str = "",
                restored: bool | None = None) -> Outcome:
        return Outcome(host=self.host.name, action=self.action, services=self.services,
                       result=result, changed=tuple(c.want.remote_path for c in self.todo),
                       backup=self.backup.id if self.backup else None, restored=restored,
                       seconds=time.monotonic() - self.started,
                       connections=self.adapter.connection_count, report=report)

    # -- the steps --------------------------------------------------------------------------
    def read(self) -> list[Change]:
        return [Change(want=d, have=self.adapter.read_file(d.remote_path))
                for d in self.desired] + self.read_secrets()

    def read_secrets(self) -> list[Change]:
        """The key files as the host has them and as they should be (other lines kept)."""
        out = []
        for line in self.secrets:
            have = self.adapter.read_file(line.remote_path)
            line.check_have(have.content if have else None, host=self.host.name)
            self.secret_have[line.remote_path] = have
            want = Desired(remote_path=line.remote_path, mode=line.mode, service=line.service,
                           content=merged(have.content if have else None, line),
                           kind="backend-key", secret=True)
            out.append(Change(want=want, have=have))
        return out

    def back_up(self) -> None:
        self.backup = backups.create(
            self.adapter, self.host.name, [d.remote_path for d in self.desired],
            store=self.options.store, inventory_digest=self.inventory.digest,
            note=f"{self.note} by {self.options.owner}",
            secret_paths=[self.inventory.proxy.env_file])
        self.say(f"backup {self.options.store}/{self.host.name}/{self.backup.id} (verified)")
        have = {i.remote_path: i for i in backups.restore_plan(self.backup)}
        self.todo = [c for c in (
            Change(want=d, have=None if have[d.remote_path].content is None else RemoteFile(
                content=have[d.remote_path].content or b"", mode=have[d.remote_path].mode or 0))
            for d in self.desired) if c.changed]
        self.todo += [c for c in self.read_secrets() if c.changed]  # again, under the lock

    def check_proxy_config(self) -> None:
        """Before the swap: the host's LiteLLM version, and whether it loads the new bundle."""
        bundle = [c.want for c in self.todo if c.want.kind in litellm_check.BUNDLE_KINDS]
        if not bundle or self.host.name != self.inventory.proxy.host \
                or not self.options.check_proxy_config:
            return
        everything = [d for d in self.desired if d.kind in litellm_check.BUNDLE_KINDS]
        cli = litellm_check.litellm_cli(self.inventory, self.host)
        warning = litellm_check.version_warning(self.adapter, cli)
        if warning:
            self.say(f"warning: {warning}")
        note = litellm_check.validate_on_host(self.adapter, cli=cli, bundle=everything,
                                              config_path=self.inventory.proxy.config_path)
        self.say(f"note: {note}" if note else "the host's LiteLLM loads the new proxy config")

    def push(self) -> None:
        for change in self.todo:
            want = change.want
            # counted before the put: a put that lands but whose answer is lost must be
            # put back too (restoring an unchanged file is a no-op)
            self.pushed.append(change)
            if want.content is None:
                self.adapter.remove(want.remote_path)
            else:
                self.adapter.put(want.remote_path, want.content, mode=want.mode or 0o644)
        self.say(f"pushed {len(self.pushed)} file(s)")

    def restart(self, services: Sequence[ServiceName], changes: Sequence[Change]) -> None:
        for service in services:
            self.restarted.append(service)  # before: a failed restart needs recovery too
            if service == "proxy" and unit_changed(changes):
                self.adapter.restart(service=service, reload_units=True)
            else:
                self.adapter.restart(service=service)
            self.say(f"restarted {service}")

    def wait_and_verify(self, expects: Sequence[Expect], *, verify: bool,
                        timeout_s: float | None = None) -> None:
        for expect in expects:
            took = health.wait_healthy(self.adapter, expect, timeout_s=timeout_s,
                                       say=self.say)
            self.say(f"{expect.service} healthy after {took:.1f} s")
            if verify:
                problems = health.verify(expect, key=self.options.master_key,
                                         key_hint=self.options.key_hint,
                                         backend_key=self.options.backend_key)
                if problems:
                    raise DeployError(f"{expect.service} is up but does not serve what was "
                                      "deployed: " + "; ".join(problems), host=self.host.name)
                self.say(f"{expect.service} verified")

    # -- the run ----------------------------------------------------------------------------
    def go(self) -> Outcome:
        try:
            changes = self.read()
        except FleetError as exc:
            return self.outcome("failed", report=self.nothing_changed(Step.READ, exc))
        self.todo = [c for c in changes if c.changed]
        if self.options.dry_run:
            diff = "".join(c.diff(self.host.name) for c in self.todo)
            return self.outcome("planned" if self.todo else "unchanged", report=diff)
        if not self.todo:
            self.say("up to date: nothing to change, nothing restarted")
            return self.outcome("unchanged")
        try:
            lock = locks.acquire(self.adapter, locks.lock_path(self.host.base_dir),
                                 owner=self.options.owner, action=self.action, task=self.task,
                                 force=self.options.force_unlock,
                                 stale_after_s=self.options.stale_after_s)
        except FleetError as exc:
            return self.outcome("failed", report=self.nothing_changed(Step.LOCK, exc))
        if lock.broke is not None:
            self.say(f"--force-unlock: removed the lock of {lock.broke.describe()}")
        try:
            return self.locked()
        finally:
            try:
                warning = lock.release()
            except FleetError as exc:
                warning = f"could not release the deploy lock {lock.path}: {exc}"
            if warning:
                self.say(f"warning: {warning}")

    def locked(self) -> Outcome:
        step = Step.BACKUP
        try:
            self.back_up()
            if not self.todo:
                self.say("up to date: nothing to change, nothing restarted")
                return self.outcome("unchanged")
            step = Step.CHECK
            self.check_proxy_config()
            step = Step.PUSH
            self.push()
            step = Step.RESTART
            services = services_of(c.want for c in self.todo)
            self.restart(services, self.todo)
            step = Step.WAIT_VERIFY
            expects = [e for e in expectations(self.inventory, self.host, self.desired)
                       if e.service in services]
            self.wait_and_verify(expects, verify=True)
            if "vllm" in services:
                self.measure()
        except Exception as exc:  # every failure after the lock is reported
            if step in (Step.BACKUP, Step.CHECK):
                return self.outcome("failed", report=self.nothing_changed(step, exc))
            return self.recover(_Failed(step, exc))
        except BaseException as exc:  # Ctrl-C: put the host back (briefly), then stop
            if self.pushed:
                self.interrupted(exc)
            raise
        if self.backup is not None:
            warning = backups.prune_or_warn(self.options.store, self.host.name,
                                            keep=self.options.keep)
            if warning:
                self.say(f"warning: {warning}")
        self.say(f"{self.action} done in {time.monotonic() - self.started:.1f} s")
        return self.outcome("deployed")

    def measure(self) -> None:
        """Read what vLLM reported at start and keep it with the host's records."""
        try:
            text = self.adapter.logs(lines=MAX_LOG_LINES, service="vllm")
            found = measured.from_log(text, self.host)
            if found is None:
                self.say("vLLM's start-up figures: none found in its log")
                return
            measured.record(self.options.store, found)
        except Exception as exc:  # a missing measurement must not fail a healthy deploy
            self.say(f"warning: could not record vLLM's start-up figures: {_error(exc)}")
            return
        self.say("vLLM reported: " + measured.describe(found.figures))

    # -- failures ---------------------------------------------------------------------------
    def nothing_changed(self, step: Step, exc: BaseException) -> str:
        return (f"{self.action} {self.host.name}: FAILED at {step}: {_error(exc)}\n"
                "  nothing was changed on the host.\n"
                f"  fix: see the error above, then run `inv {self.task}` again")

    def log_tail(self, services: Sequence[ServiceName]) -> str:
        parts = []
        for service in services:
            try:
                text = self.adapter.logs(lines=self.options.log_lines, service=service)
            except Exception as exc:  # the report must still be written
                text = f"(could not read the log: {_error(exc)})"
            parts.append(f"  log tail of {service} (last {self.options.log_lines} lines):\n"
                         + _indent(text))
        return "\n".join(parts)

    def restore_files(self, changes: Sequence[Change]) -> list[str]:
        """Make ``changes``' files what the backup holds; return what is not byte-identical."""
        assert self.backup is not None
        plan = {i.remote_path: i for i in backups.restore_plan(self.backup)}
        for path, have in self.secret_have.items():  # key files: from memory, never on disk
            plan[path] = backups.RestoreItem(remote_path=path,
                                             content=have.content if have else None,
                                             mode=have.mode if have else None)
        problems = []
        for change in changes:
            item = plan[change.want.remote_path]
            want = "absent" if item.content is None else sha256(item.content)
            now = self.adapter.read(item.remote_path)
            if ("absent" if now is None else sha256(now)) == want:
                continue  # never replaced (e.g. the push was cut before the rename)
            if item.content is None:
                self.adapter.remove(item.remote_path)
            else:
                self.adapter.put(item.remote_path, item.content, mode=item.mode or 0o644)
            now = self.adapter.read(item.remote_path)
            got = "absent" if now is None else sha256(now)
            if got != want:
                problems.append(f"{item.remote_path}: sha256 {got[:16]}, backup {want[:16]}")
        return problems

    def recover(self, failed: _Failed) -> Outcome:
        assert self.backup is not None
        where = f"{self.options.store}/{self.host.name}/{self.backup.id}"
        head = [f"{self.action} {self.host.name}: FAILED at {failed.step}: {_error(failed.error)}",
                f"  changed files: {', '.join(c.want.remote_path for c in self.todo)}",
                f"  backup:        {where} (verified before anything changed)"]
        tail = diagnosis = ""
        if self.restarted:
            tail = self.log_tail(self.restarted)
            diagnosis = diagnose(tail, inventory=self.inventory, host=self.host.name)
        restored, rollback = self.put_back()
        head.append(f"  rolled back:   {rollback}")
        if diagnosis:
            head.append("  diagnosis:     " + diagnosis.replace("\n", "\n                 "))
        if tail:
            head.append(tail)
        head.append(f"  fix: correct the inventory ({self.inventory.path}) and run "
                    f"`inv {self.task}` again"
                    + ("" if restored else "; the host needs attention NOW (see above)"))
        self.say(f"{self.action} FAILED at {failed.step}; "
                 + ("rolled back" if restored else "ROLLBACK FAILED"))
        return self.outcome("failed", report="\n".join(head), restored=restored)

    def interrupted(self, exc: BaseException) -> None:
        """Best-effort restore after an interrupt; say what happened and how to roll back."""
        assert self.backup is not None
        self.say(f"{self.action} INTERRUPTED ({type(exc).__name__}) after the push: restoring "
                 f"backup {self.backup.id} (waiting at most {INTERRUPTED_WAIT_S:.0f} s)")
        try:
            _, rollback = self.put_back(timeout_s=INTERRUPTED_WAIT_S)
        except BaseException as again:  # a second Ctrl-C stops the restore
            rollback = f"the restore was interrupted too ({type(again).__name__})"
        self.say(f"rolled back: {rollback}")
        self.say(f"backup {self.options.store}/{self.host.name}/{self.backup.id}: if the host "
                 f"is not healthy on its old config, run "
                 f"`inv rollback.{self.host.name} --to {self.backup.id}`")

    def put_back(self, *, timeout_s: float | None = None) -> tuple[bool, str]:
        """Restore, restart, wait; (host back on the backup and healthy?, what happened)."""
        assert self.backup is not None
        if not self.pushed:
            return True, "nothing to roll back: no file had been touched yet"
        self.say(f"restoring {len(self.pushed)} file(s) from backup {self.backup.id}")
        try:
            problems = self.restore_files(self.pushed)
        except Exception as exc:
            return False, f"FAILED while restoring the files: {_error(exc)}"
        if problems:
            return False, "FAILED: restored files differ from the backup: " + "; ".join(problems)
        files = f"{len(self.pushed)} file(s) as in the backup, byte-identical (sha256 checked)"
        if not self.restarted:
            return True, f"{files}; no restart needed (the service never saw the new files)"
        services = services_of(c.want for c in self.pushed)
        if all(self.backup_absent(s) for s in services):
            return False, (f"{files}, but there was no previous config of "
                           f"{', '.join(services)} to start (first deploy): the service is "
                           "down until a deploy succeeds")
        try:
            self.restarted = []
            self.restart(services, self.pushed)
            expects = [e for e in expectations(self.inventory, self.host, self.previous())
                       if e.service in services]
            start = time.monotonic()
            self.wait_and_verify(expects, verify=False, timeout_s=timeout_s)
        except Exception as exc:
            return False, (f"{files}, but the old config did not come up again: "
                           f"{_error(exc)}\n" + self.log_tail(services))
        return True, (f"yes: {files}; {', '.join(services)} restarted and healthy again after "
                      f"{time.monotonic() - start:.1f} s")

    def backup_absent(self, service: ServiceName) -> bool:
        assert self.backup is not None
        paths = {d.remote_path for d in self.desired if d.service == service}
        return all(not f.present for f in self.backup.files if f.remote_path in paths)

    def previous(self) -> list[Desired]:
        """The backup's files as desired files (what runs again after the restore)."""
        assert self.backup is not None
        plan = {i.remote_path: i for i in backups.restore_plan(self.backup)}
        return [Desired(remote_path=d.remote_path, content=plan[d.remote_path].content,
                        mode=plan[d.remote_path].mode, service=d.service, kind=d.kind)
                for d in self.desired]


def _error(exc: BaseException) -> str:
    if isinstance(exc, FleetError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def apply(*, inventory: Inventory, host: Host, adapter: HostAdapter,
          desired: Sequence[Desired], options: Options, say: Say, action: Action = "deploy",
          task: str = "", note: str = NOTE_DEPLOY,
          secrets: Sequence[SecretLine] = ()) -> Outcome:
    """Bring ``host`` to ``desired`` safely (see the module docstring); never raises
    FleetError — a failure is an :class:`Outcome` with ``result="failed"`` and a report.

    ``secrets``: key lines to set in 0600 files (:mod:`vllmfleet.deploy.backend_key`); a
    changed one restarts its service like any file, is never shown in a diff and never
    written to the backup (a failed run puts the host's old file back from memory)."""
    return _Apply(inventory=inventory, host=host, adapter=adapter, desired=desired,
                  options=options, say=say, action=action, task=task or f"deploy.{host.name}",
                  note=note, secrets=secrets).go()

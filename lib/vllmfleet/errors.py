"""The one exception tree of vllmfleet.

::

    FleetError                      base: every error we raise on purpose
    ├── InventoryError              the inventory file is missing, unparsable or invalid
    ├── CapacityError               a vLLM config does not fit its GPU (capacity model)
    ├── RenderError                 a template failed to render (missing value, bad template)
    ├── HostError                   talking to a host failed (SSH, command, file transfer)
    ├── BackupError                 a backup is missing, corrupt or escapes the backup store
    ├── DeployError                 a deploy failed; carries the report (and rollback outcome)
    └── LocalFleetError             the local fleet could not start, stop or be found
        └── StartFailed             one of its processes exited or never became healthy

Each exception's message is meant for a person: it names the file, host, field or
value involved and says what to do. Code at the user boundary (Invoke tasks, the
pytest plugin) turns these into exit codes / usage errors; nothing else catches them.

Context travels as attributes, not only inside the text (the style of httpx's
``HTTPStatusError(message, *, request, response)``): the message comes first, the context
after it as keyword-only arguments, and ``str(exc)`` is the message a person reads.
``InventoryError.problems``; ``HostError.host/command/exit_code/stderr``;
``BackupError.host/backup_id``; ``DeployError.host/report/backup/restored``. A context
attribute is ``None`` where the raiser does not know it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


class FleetError(Exception):
    """Base class of every error vllmfleet raises on purpose."""


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One finding about an inventory: where it is, what is wrong, how to fix it."""

    severity: Severity
    path: str
    message: str
    fix: str = ""
    file: str = ""
    line: int | None = None

    def location(self) -> str:
        where = self.file or "<inventory>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.path}" if self.path else where

    def __str__(self) -> str:
        text = f"{self.location()}: {self.severity}: {self.message}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


class InventoryError(FleetError):
    """The inventory cannot be used. ``problems`` lists every error (and warning) found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        head = f"{len(errors)} error(s) in the inventory"
        super().__init__(head + "\n" + "\n".join(str(p) for p in errors))


class CapacityError(FleetError):
    """A vLLM configuration does not fit in its GPU."""


class RenderError(FleetError):
    """A template could not be rendered."""


class HostError(FleetError):
    """An operation on a host failed."""

    def __init__(self, message: str, *, host: str, command: str | None = None,
                 exit_code: int | None = None, stderr: str = "") -> None:
        self.host = host
        self.command = command
        self.exit_code = exit_code
        self.stderr = stderr
        super().__init__(f"{host}: {message}")


class BackupError(FleetError):
    """A backup is missing, corrupt, or its id is not acceptable.

    ``host``: whose backup, as given (even a name refused as a folder name);
    ``backup_id``: the backup concerned, as given (None when the error is not about one
    backup, e.g. the host has none).
    """

    def __init__(self, message: str, *, host: str | None = None,
                 backup_id: str | None = None) -> None:
        self.host = host
        self.backup_id = backup_id
        super().__init__(message)


class DeployError(FleetError):
    """A deploy failed; the message is the report shown to the user.

    ``host``: the host the deploy (or rollback) was for, when one; ``report``: the failure
    report of the deploy (the message itself when raised from a failed
    :class:`~vllmfleet.deploy.apply.Outcome`, empty for errors raised before a deploy ran);
    ``backup``: the id of the backup taken before anything changed (None: none was taken);
    ``restored``: after a failure, whether the host is back on that backup and healthy
    (None: nothing had to be restored, or it is not known).
    """

    def __init__(self, message: str, *, host: str | None = None, report: str = "",
                 backup: str | None = None, restored: bool | None = None) -> None:
        self.host = host
        self.report = report
        self.backup = backup
        self.restored = restored
        super().__init__(message)


class LocalFleetError(FleetError):
    """The local fleet could not be started, stopped or found."""


class StartFailed(LocalFleetError):
    """A process of the local fleet exited or did not become healthy in time."""

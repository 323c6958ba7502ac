"""The ``local`` adapter: no SSH; the host's files live under a folder on this machine.

A remote path maps into ``root``: ``/opt/vllmfleet/x`` → ``<root>/opt/vllmfleet/x`` and
``C:/vllmfleet/x`` → ``<root>/C/vllmfleet/x``. Commands run in ``bash -c`` with ``root`` as
working directory. The "container" is whatever the local fleet runs for the host (the vLLM
emulator or a real engine): pass a :class:`LocalService` (e.g. :class:`CallableService`
wrapping the local fleet's restart function) to make ``restart``/``status``/``logs`` work.

``put`` is atomic like the SSH adapters': write a temp file beside the target, fsync, re-read
it and compare its sha256, chmod, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vllmfleet.errors import FleetError, HostError
from vllmfleet.remote.base import (
    CommandResult,
    HostAdapter,
    RemoteFile,
    ServiceName,
    ServiceStatus,
    Tokens,
    check_lines,
    check_remote_path,
    command_failed,
    random_token,
    sha256,
    temp_name,
)


class LocalService(Protocol):
    """What the local fleet provides for one host's service."""

    def restart(self) -> None: ...

    def is_running(self) -> bool: ...

    def logs(self, lines: int) -> str: ...


@dataclass(frozen=True, kw_only=True)
class CallableService:
    """A :class:`LocalService` from plain callables (``logs`` optional)."""

    restart_fn: Callable[[], None]
    is_running_fn: Callable[[], bool]
    logs_fn: Callable[[int], str] | None = None

    def restart(self) -> None:
        self.restart_fn()

    def is_running(self) -> bool:
        return self.is_running_fn()

    def logs(self, lines: int) -> str:
        return self.logs_fn(lines) if self.logs_fn is not None else ""


class LocalAdapter(HostAdapter):
    """A host whose files are under ``root`` on this machine and whose service is local."""

    platform = "local"

    def __init__(self, *, host: str, root: Path,
                 services: dict[ServiceName, LocalService] | None = None,
                 tokens: Tokens = random_token) -> None:
        self.host = host
        self.root = Path(root)
        self.services = dict(services or {})
        self._tokens = tokens

    @property
    def connection_count(self) -> int:
        return 0

    def path_of(self, remote_path: str) -> Path:
        """Where ``remote_path`` of this host lives on the local disk."""
        path = check_remote_path(self.host, remote_path)
        if path[1:2] == ":":
            path = path[0] + path[2:]
        return self.root / path.lstrip("/")

    def command_path(self, remote_path: str) -> str:
        return str(self.path_of(remote_path))

    def put(self, remote_path: str, content: bytes, *, mode: int = 0o644) -> None:
        target = self.path_of(remote_path)
        tmp = Path(temp_name(str(target), self._tokens()))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            if sha256(tmp.read_bytes()) != sha256(content):
                raise HostError(f"{tmp} does not hold what was written; {target} was not "
                                "changed (check the disk)", host=self.host)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except OSError as exc:
            raise HostError(f"writing {target}: {exc.strerror or exc}; it was not changed",
                            host=self.host) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def read_file(self, remote_path: str) -> RemoteFile | None:
        path = self.path_of(remote_path)
        try:
            return RemoteFile(content=path.read_bytes(), mode=path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HostError(f"reading {path}: {exc.strerror or exc}", host=self.host) from None

    def remove(self, remote_path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_of(remote_path).unlink()

    def run(self, command: str, *, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(["bash", "-c", command], cwd=self.root, capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise HostError(f"command timed out after {timeout} s: {command}", host=self.host,
                            command=command) from None
        result = CommandResult(command=command, exit_code=done.returncode, stdout=done.stdout,
                        stderr=done.stderr)
        if check and not result.ok:
            raise command_failed(self.host, result, what="command")
        return result

    def _service(self, service: ServiceName | None) -> tuple[ServiceName, LocalService]:
        name: ServiceName = service or ("vllm" if "vllm" in self.services or not self.services
                                        else "proxy")
        found = self.services.get(name)
        if found is None:
            raise HostError(f"no local {name} service is attached to this local host: start "
                            "it with the local fleet (inv fleet.up), which passes one",
                            host=self.host)
        return name, found

    def _call(self, what: str, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except FleetError:
            raise
        except Exception as exc:
            raise HostError(f"{what} failed: {type(exc).__name__}: {exc}",
                            host=self.host) from exc

    def restart(self, *, service: ServiceName | None = None, reload_units: bool = False) -> None:
        name, svc = self._service(service)
        self._call(f"restarting the local {name}", svc.restart)

    def status(self, *, service: ServiceName | None = None) -> ServiceStatus:
        name, svc = self._service(service)
        running = bool(self._call(f"reading the local {name} status", svc.is_running))
        state = "running" if running else "stopped"
        return ServiceStatus(service=name, running=running, state=state,
                             detail=f"local {name}: {state}")

    def logs(self, *, lines: int = 200, service: ServiceName | None = None) -> str:
        name, svc = self._service(service)
        count = check_lines(self.host, lines)
        return str(self._call(f"reading the local {name} log", lambda: svc.logs(count)))

    def link_exclusive(self, source: str, target: str) -> str:
        try:
            os.link(self.path_of(source), self.path_of(target))
        except FileExistsError:
            return "the lock exists"
        except OSError as exc:
            return str(exc)
        return ""

    def close(self) -> None:
        return None

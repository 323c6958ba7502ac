"""What every host adapter shares: the interface, results, the transport seam, error messages.

A :class:`HostAdapter` is how the rest of vllmfleet touches one host: put a file atomically,
read or remove a file, run a command, and restart / inspect / tail the service the host runs
(the vLLM container, or the LiteLLM proxy). Platform adapters live in
:mod:`vllmfleet.remote.linux`, :mod:`~vllmfleet.remote.wsl`, :mod:`~vllmfleet.remote.windows`
and :mod:`~vllmfleet.remote.local`; :func:`vllmfleet.remote.adapter_for` picks one for an
inventory host.

SSH-backed adapters talk through a :class:`Transport` (commands + SFTP). The real one is
:class:`vllmfleet.remote.ssh.SSHTransport` (Fabric); tests pass a recording fake, which is
how the Windows and WSL adapters are tested without Windows.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol

from vllmfleet.errors import HostError

ServiceName = Literal["vllm", "proxy"]
Tokens = Callable[[], str]
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 2000


def random_token() -> str:
    """A short random token that makes temp and staging names unique."""
    return secrets.token_hex(6)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    """The outcome of one command on a host."""

    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True, kw_only=True)
class RemoteFile:
    """A file as it is on the host: its bytes and permission bits (e.g. 0o644)."""

    content: bytes
    mode: int


@dataclass(frozen=True, kw_only=True)
class ServiceStatus:
    """What :meth:`HostAdapter.status` found: ``running`` plus the raw state and output."""

    service: ServiceName
    running: bool
    state: str
    detail: str = ""


class Transport(Protocol):
    """Commands and file transfer on one host (SSH + SFTP in production)."""

    connection_count: int

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult: ...

    def upload(self, path: str, content: bytes) -> None: ...

    def download(self, path: str) -> bytes | None: ...

    def stat(self, path: str) -> int | None:
        """The permission bits of ``path``, or None when it does not exist."""
        ...

    def makedirs(self, path: str) -> None: ...

    def remove(self, path: str) -> None: ...

    def home(self) -> str:
        """The SFTP session's home folder as an absolute SFTP path."""
        ...

    def close(self) -> None: ...


def tail(text: str, *, lines: int = STDERR_TAIL_LINES, chars: int = STDERR_TAIL_CHARS) -> str:
    """The last ``lines`` lines (at most ``chars`` characters) of ``text``; NULs removed.

    wsl.exe writes its own errors in UTF-16, which arrive as text with NUL bytes.
    """
    clean = text.replace("\x00", "").rstrip()
    kept = "\n".join(clean.splitlines()[-lines:])
    return kept[-chars:]


def command_failed(host: str, result: CommandResult, *, what: str, fix: str = "") -> HostError:
    """A :class:`HostError` for a command that exited non-zero: exit code and stderr tail."""
    message = f"{what} failed (exit {result.exit_code}): {result.command}"
    err = tail(result.stderr) or tail(result.stdout)
    if err:
        message += "\n    " + err.replace("\n", "\n    ")
    if fix:
        message += f"\n    fix: {fix}"
    return HostError(message, host=host, command=result.command)


def temp_name(remote_path: str, token: str) -> str:
    """The temp file a put writes first: hidden, beside the target, unique per put."""
    folder, name = posixpath.split(remote_path)
    return posixpath.join(folder, f".{name}.vllmfleet-{token}.tmp")


#: A Windows drive path, as Windows OpenSSH's SFTP server shows it (``/C:/x``) or as written
#: in an inventory (``C:/x``). The one drive-letter rule of the windows and wsl adapters.
_DRIVE_PATH = re.compile(r"/?([A-Za-z]):(/.*)?")


def drive_path(path: str) -> tuple[str, str] | None:
    """``(letter, rest)`` of a Windows drive path (rest: ``/x/y`` or ''), or None."""
    match = _DRIVE_PATH.fullmatch(path)
    return None if match is None else (match.group(1), match.group(2) or "")


def check_remote_path(host: str, remote_path: str) -> str:
    """Refuse relative paths, ``..`` and empty names; return the path with '/' separators."""
    path = remote_path.replace("\\", "/")
    parts = path.split("/")
    absolute = path.startswith("/") or (len(path) > 2 and path[1] == ":" and path[2] == "/")
    if not absolute or ".." in parts or not parts[-1] or "\n" in path or "\x00" in path:
        raise HostError(f"refusing remote path {remote_path!r}: use an absolute path to a file "
                        "without '..', e.g. /opt/vllmfleet/vllm-compose.yaml", host=host)
    return path


class HostAdapter(ABC):
    """One host of the fleet, whatever its platform.

    ``put`` never leaves a half-written file: content goes to a temp file in the target's
    folder, its sha256 is checked there, and only then is it renamed over the target.
    Failures raise :class:`~vllmfleet.errors.HostError` with the host, the command, its exit
    code and the tail of its stderr. Use as a context manager, or call :meth:`close`.
    """

    host: str
    platform: str

    @property
    @abstractmethod
    def connection_count(self) -> int:
        """SSH connections this adapter has opened so far (0 for ``local``)."""

    @abstractmethod
    def put(self, remote_path: str, content: bytes, *, mode: int = 0o644) -> None:
        """Replace ``remote_path`` with ``content`` atomically; create its folder if needed."""

    @abstractmethod
    def read_file(self, remote_path: str) -> RemoteFile | None:
        """The file's bytes and mode, or None when it does not exist."""

    def read(self, remote_path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        found = self.read_file(remote_path)
        return None if found is None else found.content

    @abstractmethod
    def remove(self, remote_path: str) -> None:
        """Delete ``remote_path``; nothing happens when it does not exist."""

    @abstractmethod
    def run(self, command: str, *, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        """Run ``command`` (the platform's shell); ``check`` raises on a non-zero exit."""

    @abstractmethod
    def restart(self, *, service: ServiceName | None = None, reload_units: bool = False) -> None:
        """(Re)start the service so that the files just put take effect.

        ``reload_units``: the service's own unit definition changed too (a systemd unit
        file): make the service manager re-read it first (``systemctl daemon-reload``).
        Platforms without such a manager ignore it.
        """

    def command_path(self, remote_path: str) -> str:
        """``remote_path`` as a command run on this host (:meth:`run`) sees it."""
        return remote_path

    def link_exclusive(self, source: str, target: str) -> str:
        """Make the existing file ``source`` appear as ``target`` too, unless ``target``
        exists: an atomic, exclusive create (what the deploy lock is built on).

        Returns '' on success, else why not ("the lock exists", the command's error).
        """
        raise HostError(f"no exclusive create for {type(self).__name__} adapters",
                        host=self.host)

    @abstractmethod
    def status(self, *, service: ServiceName | None = None) -> ServiceStatus:
        """Whether the service runs (not whether it is healthy: that is vllmfleet.health)."""

    @abstractmethod
    def logs(self, *, lines: int = 200, service: ServiceName | None = None) -> str:
        """The last ``lines`` lines of the service's log."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection, if one is open."""

    def __enter__(self) -> HostAdapter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


#: The most log lines an adapter fetches (the tasks' ``log_lines`` setting and
#: ``deploy.apply.Options`` use the same bound).
MAX_LOG_LINES = 10_000


def sftp_read(transport: Transport, path: str) -> RemoteFile | None:
    """A file's bytes and mode over the transport's SFTP, or None when it does not exist."""
    mode = transport.stat(path)
    if mode is None:
        return None
    content = transport.download(path)
    return None if content is None else RemoteFile(content=content, mode=mode)


def check_lines(host: str, lines: int) -> int:
    if isinstance(lines, bool) or not isinstance(lines, int) or not 1 <= lines <= MAX_LOG_LINES:
        raise HostError(f"lines={lines!r}: ask for between 1 and {MAX_LOG_LINES} log lines",
                        host=host)
    return lines

"""Shell scripts and services shared by the ``linux`` and ``wsl`` adapters.

Every script here is POSIX ``sh`` (it runs under dash, bash or busybox) and is built from
``shlex``-quoted values only. ``sudo`` (when an adapter is told to use it) is ``sudo -n``:
never prompt, fail with a message instead, because there is no terminal to type into.

Atomic put, staged variant (``wsl``, and ``linux`` with ``sudo``): the bytes are uploaded by
SFTP to a staging file, then one script copies them to a temp file beside the target, checks
the temp file's sha256, sets the mode and renames it over the target (``mv -f``, atomic on
one filesystem). Any failure removes the temp file and leaves the target untouched.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
import shlex
from abc import abstractmethod
from dataclasses import dataclass
from typing import Protocol

from vllmfleet.errors import HostError
from vllmfleet.remote.base import (
    CommandResult,
    HostAdapter,
    RemoteFile,
    ServiceName,
    ServiceStatus,
    Tokens,
    Transport,
    check_lines,
    check_remote_path,
    command_failed,
    random_token,
    sha256,
    temp_name,
)

q = shlex.quote
_READ_HEADER = re.compile(r"^(absent|present ([0-7]{3,4}))$")


class PosixService(Protocol):
    """Commands that restart and inspect one service on a POSIX host."""

    @property
    def name(self) -> ServiceName: ...

    def restart_command(self) -> str: ...

    def status_command(self) -> str: ...

    def parse_status(self, result: CommandResult) -> ServiceStatus | None:
        """The status, or None when the command itself failed."""
        ...

    def logs_command(self, lines: int) -> str: ...

    def reload_command(self) -> str | None:
        """What makes the service manager re-read changed unit files (None: nothing)."""
        ...

    def restart_fix(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class DockerCompose:
    """The vLLM container, run by docker compose from the rendered compose file."""

    compose_file: str
    container: str
    name: ServiceName = "vllm"

    def restart_command(self) -> str:
        return f"docker compose -f {q(self.compose_file)} up -d --force-recreate"

    def status_command(self) -> str:
        return f"docker inspect --format '{{{{.State.Status}}}}' {q(self.container)}"

    def parse_status(self, result: CommandResult) -> ServiceStatus | None:
        if result.ok:
            state = result.stdout.strip() or "unknown"
            return ServiceStatus(service=self.name, running=state == "running", state=state,
                                 detail=f"container {self.container}: {state}")
        if "no such" in result.stderr.lower():
            return ServiceStatus(service=self.name, running=False, state="missing",
                                 detail=f"container {self.container} does not exist")
        return None

    def reload_command(self) -> str | None:
        return None

    def logs_command(self, lines: int) -> str:
        return f"docker logs --tail {lines} {q(self.container)} 2>&1"

    def restart_fix(self) -> str:
        return (f"check the compose file with `docker compose -f {self.compose_file} config` "
                "on the host, and that the SSH user may run docker")


@dataclass(frozen=True, kw_only=True)
class Systemd:
    """A systemd unit (the LiteLLM proxy); restart needs passwordless ``sudo -n``."""

    unit: str
    sudo: bool = True
    name: ServiceName = "proxy"

    def _sudo(self) -> str:
        return "sudo -n " if self.sudo else ""

    def restart_command(self) -> str:
        return f"{self._sudo()}systemctl restart {q(self.unit)}"

    def status_command(self) -> str:
        return f"systemctl is-active {q(self.unit)}"

    def parse_status(self, result: CommandResult) -> ServiceStatus | None:
        state = result.stdout.strip()
        if not state:
            return None
        return ServiceStatus(service=self.name, running=state == "active", state=state,
                             detail=f"unit {self.unit}: {state}")

    def reload_command(self) -> str | None:
        return f"{self._sudo()}systemctl daemon-reload"

    def logs_command(self, lines: int) -> str:
        return f"{self._sudo()}journalctl -u {q(self.unit)} -n {lines} --no-pager"

    def restart_fix(self) -> str:
        return (f"let the SSH user run `sudo -n systemctl restart {self.unit}` without a "
                f"password (sudoers), and read `journalctl -u {self.unit}` on the host")


def install_script(*, target: str, tmp: str, digest: str, mode: int, sudo: bool,
                   src: str | None = None) -> str:
    """Check ``tmp``'s sha256, chmod it and rename it over ``target``.

    With ``src`` (a line of sh that sets ``$src``), first copy the staged file to ``tmp``.
    """
    s = "sudo -n " if sudo else ""
    folder, name = posixpath.split(target)
    lines = [
        "set -eu",
        f"target={q(target)}",
        f"tmp={q(tmp)}",
        f"trap '{s}rm -f -- \"$tmp\"' EXIT",
    ]
    if src is not None:
        lines += [src, f"{s}mkdir -p -- {q(folder)}", f'{s}cp -- "$src" "$tmp"']
    lines += [
        f'actual=$({s}cat -- "$tmp" | sha256sum)',
        "actual=${actual%% *}",
        f'if [ "$actual" != {digest} ]; then',
        f'  echo "vllmfleet: $tmp has sha256 $actual, expected {digest}:'
        ' the upload was damaged; $target was not changed" >&2',
        "  exit 3",
        "fi",
        f'{s}chmod {mode:04o} -- "$tmp"',
        f'{s}mv -f -- "$tmp" "$target"',
        f"{s}rm -f -- {q(folder)}/{q(f'.{name}.vllmfleet-')}*.tmp",
    ]
    return "\n".join(lines) + "\n"


def read_script(path: str, *, sudo: bool) -> str:
    """Print ``absent``, or ``present <mode>`` and the file as base64."""
    s = "sudo -n " if sudo else ""
    return "\n".join([
        "set -eu",
        f"p={q(path)}",
        f'if ! {s}test -e "$p"; then echo absent; exit 0; fi',
        f'if ! {s}test -f "$p"; then echo "vllmfleet: $p is not a regular file" >&2; exit 2; fi',
        f'echo "present $({s}stat -c %a -- "$p")"',
        f'{s}base64 -- "$p"',
    ]) + "\n"


def parse_read(host: str, path: str, result: CommandResult) -> RemoteFile | None:
    lines = result.stdout.splitlines()
    for index, line in enumerate(lines):
        match = _READ_HEADER.match(line.strip())
        if match is None:
            continue
        if match.group(1) == "absent":
            return None
        try:
            content = base64.b64decode("".join(lines[index + 1:]), validate=True)
        except (binascii.Error, ValueError):
            break
        return RemoteFile(content=content, mode=int(match.group(2), 8))
    raise HostError(f"reading {path}: unexpected output from the read script "
                    f"(stdout starts {result.stdout[:80]!r})", host=host, command=result.command)


class PosixAdapter(HostAdapter):
    """A POSIX host reached over a :class:`Transport`; subclasses say how a script runs."""

    def __init__(self, *, host: str, transport: Transport,
                 services: dict[ServiceName, PosixService], sudo: bool = False,
                 tokens: Tokens = random_token) -> None:
        self.host = host
        self.transport = transport
        self.services = dict(services)
        self.sudo = sudo
        self._tokens = tokens

    @property
    def connection_count(self) -> int:
        return self.transport.connection_count

    @abstractmethod
    def _shell(self, script: str, *, timeout: float | None = None) -> CommandResult:
        """Run a POSIX sh script on the host; ``CommandResult.command`` is the readable script."""

    @abstractmethod
    def _staging(self, token: str) -> tuple[str, str]:
        """(SFTP path to upload to, sh line that sets ``$src`` to it on the host)."""

    def run(self, command: str, *, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        result = self._shell(command, timeout=timeout)
        if check and not result.ok:
            raise command_failed(self.host, result, what="command")
        return result

    def _staged_put(self, target: str, content: bytes, *, mode: int) -> None:
        token = self._tokens()
        stage, src = self._staging(token)
        self.transport.makedirs(posixpath.dirname(stage))
        self.transport.upload(stage, content)
        try:
            script = install_script(target=target, tmp=temp_name(target, token),
                                    digest=sha256(content), mode=mode, sudo=self.sudo, src=src)
            result = self._shell(script)
        finally:
            self.transport.remove(stage)
        if not result.ok:
            raise command_failed(self.host, result, what=f"replacing {target}",
                                 fix="the file on the host is unchanged; see the error above")

    def put(self, remote_path: str, content: bytes, *, mode: int = 0o644) -> None:
        self._staged_put(check_remote_path(self.host, remote_path), content, mode=mode)

    def read_file(self, remote_path: str) -> RemoteFile | None:
        path = check_remote_path(self.host, remote_path)
        result = self._shell(read_script(path, sudo=self.sudo))
        if not result.ok:
            raise command_failed(self.host, result, what=f"reading {path}")
        return parse_read(self.host, path, result)

    def remove(self, remote_path: str) -> None:
        path = check_remote_path(self.host, remote_path)
        s = "sudo -n " if self.sudo else ""
        result = self._shell(f"{s}rm -f -- {q(path)}\n")
        if not result.ok:
            raise command_failed(self.host, result, what=f"removing {path}")

    def _service(self, service: ServiceName | None) -> PosixService:
        if service is None:
            service = "vllm" if "vllm" in self.services else "proxy"
        found = self.services.get(service)
        if found is None:
            runs = ", ".join(sorted(self.services)) or "nothing we manage"
            raise HostError(f"this host runs no {service} service (it runs {runs}); "
                            "check the host's vllm: section and proxy.host in the inventory",
                            host=self.host)
        return found

    def restart(self, *, service: ServiceName | None = None, reload_units: bool = False) -> None:
        svc = self._service(service)
        reload = svc.reload_command() if reload_units else None
        if reload is not None:
            self.run(reload)
        result = self._shell(svc.restart_command())
        if not result.ok:
            raise command_failed(self.host, result, what=f"restarting {svc.name}",
                                 fix=svc.restart_fix())

    def status(self, *, service: ServiceName | None = None) -> ServiceStatus:
        svc = self._service(service)
        result = self._shell(svc.status_command())
        found = svc.parse_status(result)
        if found is None:
            raise command_failed(self.host, result, what=f"reading the {svc.name} status")
        return found

    def logs(self, *, lines: int = 200, service: ServiceName | None = None) -> str:
        svc = self._service(service)
        result = self._shell(svc.logs_command(check_lines(self.host, lines)))
        if not result.ok:
            raise command_failed(self.host, result, what=f"reading the {svc.name} log")
        return result.stdout

    def link_exclusive(self, source: str, target: str) -> str:
        sudo = "sudo -n " if self.sudo else ""
        result = self.run(f"{sudo}ln -- {q(source)} {q(target)}", check=False)
        return "" if result.ok else (result.stderr.strip() or f"exit {result.exit_code}")

    def close(self) -> None:
        self.transport.close()

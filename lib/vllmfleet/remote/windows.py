"""The ``windows`` adapter: Windows OpenSSH + PowerShell, vLLM managed by the launcher script.

The rendered launcher (``<base_dir>/vllm-launcher.ps1``, verbs Start, Stop, Restart, Status,
Logs, reading ``vllm-config.json`` with ConvertFrom-Json) is run as::

    powershell -NoProfile -ExecutionPolicy Bypass -File C:/vllmfleet/vllm-launcher.ps1 Restart

Status exits 0 (running and healthy) or 3 (not), Logs takes ``-Tail N``.

Any other PowerShell (``run``, the atomic rename) is sent as
``powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand <base64>``
(UTF-16LE, as PowerShell expects): the same bytes arrive whether the host's OpenSSH
DefaultShell is cmd.exe or PowerShell, with no quoting rules to get wrong.

Files go by SFTP, whose paths on Windows OpenSSH look like ``/C:/vllmfleet/x``. Atomic put:
upload to ``.<name>.vllmfleet-<token>.tmp`` beside the target, check its SHA256 with
``Get-FileHash``, then ``Move-Item -Force`` over the target. ``mode`` is ignored here (NTFS
has ACLs, not permission bits); reads report what SFTP reports.
"""

from __future__ import annotations

import base64
import posixpath
import re

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
    drive_path,
    random_token,
    sftp_read,
    sha256,
    temp_name,
)

LAUNCHER = "vllm-launcher.ps1"
_STATE = re.compile(r"container \S+: (\S+)")


def ps_quote(text: str) -> str:
    """A PowerShell single-quoted string literal."""
    return "'" + text.replace("'", "''") + "'"


def powershell_command(script: str) -> str:
    """The exact command line sent over SSH to run a PowerShell ``script``."""
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return ("powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass "
            f"-EncodedCommand {encoded}")


_PRELUDE = "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n"


def move_script(*, target: str, tmp: str, digest: str) -> str:
    """Check ``tmp``'s SHA256, then ``Move-Item -Force`` it over ``target``."""
    return _PRELUDE + "\n".join([
        f"$target = {ps_quote(target)}",
        f"$tmp = {ps_quote(tmp)}",
        "$actual = (Get-FileHash -Algorithm SHA256 -LiteralPath $tmp).Hash.ToLowerInvariant()",
        f"if ($actual -ne '{digest}') {{",
        "    Remove-Item -LiteralPath $tmp -Force",
        "    [Console]::Error.WriteLine(\"vllmfleet: $tmp has sha256 $actual, expected "
        f"{digest}: the upload was damaged; $target was not changed\")",
        "    exit 3",
        "}",
        "Move-Item -LiteralPath $tmp -Destination $target -Force",
        "$stale = [IO.Path]::GetFileName($target)",
        "Get-ChildItem -LiteralPath ([IO.Path]::GetDirectoryName($target)) -Force "
        "-Filter \".$stale.vllmfleet-*.tmp\" | Remove-Item -Force",
    ]) + "\n"


def _win(path: str) -> str:
    """``/C:/x`` or ``C:/x`` → ``C:/x`` (PowerShell accepts forward slashes)."""
    drive = drive_path(path)
    return path if drive is None else f"{drive[0]}:{drive[1]}"


def _sftp(path: str) -> str:
    """``C:/x`` → ``/C:/x``, the form Windows OpenSSH's SFTP server uses."""
    drive = drive_path(path)
    return path if drive is None else f"/{drive[0]}:{drive[1]}"


class WindowsAdapter(HostAdapter):
    """A Windows host: OpenSSH, PowerShell, and the rendered vLLM launcher."""

    platform = "windows"

    def __init__(self, *, host: str, transport: Transport, base_dir: str,
                 tokens: Tokens = random_token) -> None:
        self.host = host
        self.transport = transport
        self.base_dir = _win(base_dir.replace("\\", "/")).rstrip("/")
        self._tokens = tokens

    @property
    def connection_count(self) -> int:
        return self.transport.connection_count

    def _launcher(self, verb: str, *extra: str) -> str:
        script = f"{self.base_dir}/{LAUNCHER}"
        if " " in script:
            script = f'"{script}"'
        return " ".join(["powershell -NoProfile -ExecutionPolicy Bypass -File", script,
                         verb, *extra])

    def _powershell(self, script: str, *, timeout: float | None = None) -> CommandResult:
        raw = self.transport.run(powershell_command(script), timeout=timeout)
        return CommandResult(command=script.rstrip("\n"), exit_code=raw.exit_code,
                             stdout=raw.stdout,
                      stderr=raw.stderr)

    def run(self, command: str, *, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        """Run ``command`` as PowerShell."""
        result = self._powershell(_PRELUDE + command, timeout=timeout)
        if check and not result.ok:
            raise command_failed(self.host, result, what="command")
        return result

    def put(self, remote_path: str, content: bytes, *, mode: int = 0o644) -> None:
        target = _win(check_remote_path(self.host, remote_path))
        tmp = temp_name(target, self._tokens())
        self.transport.makedirs(_sftp(posixpath.dirname(target)))
        self.transport.upload(_sftp(tmp), content)
        result = self._powershell(move_script(target=target, tmp=tmp, digest=sha256(content)))
        if not result.ok:
            raise command_failed(self.host, result, what=f"replacing {target}",
                                 fix="the file on the host is unchanged; see the error above")

    def read_file(self, remote_path: str) -> RemoteFile | None:
        return sftp_read(self.transport, _sftp(_win(check_remote_path(self.host, remote_path))))

    def remove(self, remote_path: str) -> None:
        self.transport.remove(_sftp(_win(check_remote_path(self.host, remote_path))))

    def _check_service(self, service: ServiceName | None) -> None:
        if service not in (None, "vllm"):
            raise HostError(f"a windows host runs only the vLLM launcher, not {service}; "
                            "run the LiteLLM proxy on a linux or wsl host", host=self.host)

    def restart(self, *, service: ServiceName | None = None, reload_units: bool = False) -> None:
        self._check_service(service)
        result = self.transport.run(self._launcher("Restart"))
        if not result.ok:
            raise command_failed(
                self.host, result, what="restarting vllm",
                fix=f"run `{self._launcher('Logs')}` on the host and check Docker Desktop")

    def status(self, *, service: ServiceName | None = None) -> ServiceStatus:
        self._check_service(service)
        result = self.transport.run(self._launcher("Status"))
        if result.exit_code not in (0, 3):
            raise command_failed(self.host, result, what="reading the vllm status")
        match = _STATE.search(result.stdout)
        state = match.group(1) if match else ("running" if result.ok else "unknown")
        return ServiceStatus(service="vllm", running=state == "running", state=state,
                             detail=result.stdout.strip())

    def logs(self, *, lines: int = 200, service: ServiceName | None = None) -> str:
        self._check_service(service)
        result = self.transport.run(self._launcher("Logs", "-Tail", str(check_lines(self.host,
                                                                                 lines))))
        if not result.ok:
            raise command_failed(self.host, result, what="reading the vllm log")
        return result.stdout

    def link_exclusive(self, source: str, target: str) -> str:
        result = self.run(f"Move-Item -LiteralPath {ps_quote(source)} "
                          f"-Destination {ps_quote(target)}", check=False)
        return "" if result.ok else (result.stderr.strip() or f"exit {result.exit_code}")

    def close(self) -> None:
        self.transport.close()

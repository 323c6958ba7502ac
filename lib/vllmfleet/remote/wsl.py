"""The ``wsl`` adapter: a Windows host whose services run inside a WSL distribution.

Commands reach the distribution through Windows OpenSSH as::

    wsl -d <distro> -- bash -lc "echo <base64 of the script>|base64 -d|bash"

Why base64: the Windows side parses the command line first, and its default shell may be
cmd.exe (where ``&``, ``|``, ``<``, ``>`` and ``%`` are special and single quotes are not
quotes) or PowerShell (where ``$`` and backticks are). A double-quoted string of base64
characters, spaces and ``|`` means the same to cmd.exe, PowerShell, wsl.exe's command line
and the Linux shell, so the script arrives byte for byte whatever the host's DefaultShell.
The script is wrapped in ``{ … }`` so bash parses it whole before running it (a command that
reads stdin cannot eat the rest of the script). Errors and :class:`CommandResult` show the script,
not the base64.

Files: ``put`` uploads by SFTP to a staging file in the Windows user's home
(``~/.vllmfleet/staging/<token>.tmp``, i.e. ``C:\\Users\\<user>\\…``), then one script inside
WSL finds it with ``wslpath -u``, copies it beside the target, checks its sha256 and renames it
over the target (:func:`vllmfleet.remote.posix.install_script`); the staging file is removed
afterwards. ``\\\\wsl$\\…`` paths are not used: they exist only in an interactive Windows
session, not reliably for the OpenSSH service. ``read`` prints the file as base64 from
inside WSL.
"""

from __future__ import annotations

import base64
import re

from vllmfleet.errors import HostError
from vllmfleet.remote.base import (
    CommandResult,
    ServiceName,
    Tokens,
    Transport,
    drive_path,
    random_token,
)
from vllmfleet.remote.posix import PosixAdapter, PosixService, q

_DISTRO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def wsl_command(distro: str, script: str) -> str:
    """The exact command line sent over SSH to run ``script`` in ``distro``."""
    wrapped = "{\n" + script.rstrip("\n") + "\n}\n"
    encoded = base64.b64encode(wrapped.encode("utf-8")).decode("ascii")
    return f'wsl -d {distro} -- bash -lc "echo {encoded}|base64 -d|bash"'


def windows_path(sftp_path: str) -> str:
    """``/C:/Users/ops/x`` (an SFTP path on Windows OpenSSH) → ``C:\\Users\\ops\\x``."""
    drive = drive_path(sftp_path)
    if drive is None:
        raise ValueError(sftp_path)
    return f"{drive[0].upper()}:" + (drive[1] or "/").replace("/", "\\")


class WSLAdapter(PosixAdapter):
    """A Windows host over OpenSSH; files and services live inside a WSL distribution."""

    platform = "wsl"

    def __init__(self, *, host: str, transport: Transport, distro: str,
                 services: dict[ServiceName, PosixService], sudo: bool = False,
                 tokens: Tokens = random_token) -> None:
        if not _DISTRO.fullmatch(distro or ""):
            raise HostError(f"wsl_distro {distro!r} is not a WSL distribution name: set "
                            "wsl_distro to a name from `wsl -l -q`, e.g. Ubuntu-22.04", host=host)
        super().__init__(host=host, transport=transport, services=services, sudo=sudo,
                         tokens=tokens)
        self.distro = distro

    def _shell(self, script: str, *, timeout: float | None = None) -> CommandResult:
        raw = self.transport.run(wsl_command(self.distro, script), timeout=timeout)
        return CommandResult(command=script.rstrip("\n"), exit_code=raw.exit_code,
                      stdout=raw.stdout, stderr=raw.stderr)

    def _staging(self, token: str) -> tuple[str, str]:
        home = self.transport.home().rstrip("/")
        stage = f"{home}/.vllmfleet/staging/{token}.tmp"
        try:
            win = windows_path(stage)
        except ValueError:
            raise HostError(f"the SFTP home folder {home!r} is not a Windows path; a wsl host "
                            "must run Windows OpenSSH (set platform: linux for a Linux host)",
                            host=self.host) from None
        return stage, f"src=$(wslpath -u {q(win)})"

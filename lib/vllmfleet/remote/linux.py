"""The ``linux`` adapter: a Linux host over SSH (commands in the login shell, files by SFTP).

vLLM hosts run the container with ``docker compose -f <base_dir>/vllm-compose.yaml up -d
--force-recreate``; the proxy host runs LiteLLM as a systemd unit (``sudo -n systemctl
restart <unit>``, ``journalctl -u <unit> -n N``).

Atomic put without sudo: make the folder (SFTP), upload the bytes by SFTP to
``.<name>.vllmfleet-<token>.tmp`` beside the target, then one command checks that temp file's
sha256, sets its mode and ``mv -f``'s it over the target. If the connection drops during the
upload, the target is untouched; the half-written temp file is removed by the next
successful put of the same file. With ``sudo=True`` (files the SSH user may not write,
e.g. under /etc) the upload goes to ``~/.vllmfleet/staging`` and the script copies it with
``sudo -n`` (see :mod:`vllmfleet.remote.posix`); reads and removes then use ``sudo -n`` too.
"""

from __future__ import annotations

import posixpath

from vllmfleet.remote.base import (
    CommandResult,
    RemoteFile,
    check_remote_path,
    command_failed,
    sftp_read,
    sha256,
    temp_name,
)
from vllmfleet.remote.posix import PosixAdapter, install_script, q


class LinuxAdapter(PosixAdapter):
    """A Linux host reached over SSH."""

    platform = "linux"

    def _shell(self, script: str, *, timeout: float | None = None) -> CommandResult:
        return self.transport.run(script, timeout=timeout)

    def _staging(self, token: str) -> tuple[str, str]:
        stage = posixpath.join(self.transport.home(), ".vllmfleet", "staging", f"{token}.tmp")
        return stage, f"src={q(stage)}"

    def put(self, remote_path: str, content: bytes, *, mode: int = 0o644) -> None:
        target = check_remote_path(self.host, remote_path)
        if self.sudo:
            self._staged_put(target, content, mode=mode)
            return
        tmp = temp_name(target, self._tokens())
        self.transport.makedirs(posixpath.dirname(target))
        self.transport.upload(tmp, content)
        result = self._shell(install_script(target=target, tmp=tmp, digest=sha256(content),
                                            mode=mode, sudo=False))
        if not result.ok:
            raise command_failed(self.host, result, what=f"replacing {target}",
                                 fix="the file on the host is unchanged; see the error above")

    def read_file(self, remote_path: str) -> RemoteFile | None:
        if self.sudo:
            return super().read_file(remote_path)
        return sftp_read(self.transport, check_remote_path(self.host, remote_path))

    def remove(self, remote_path: str) -> None:
        if self.sudo:
            super().remove(remote_path)
            return
        self.transport.remove(check_remote_path(self.host, remote_path))

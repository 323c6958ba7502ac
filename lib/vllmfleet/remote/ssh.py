"""SSH transport over one Fabric ``Connection``: commands, and files by SFTP.

The connection is opened lazily on first use and reused for every later command and
transfer; if it dropped, the next use opens a new one. ``connection_count`` counts opens,
so a deploy can report how many SSH connections it needed per host.

Host keys are checked: the host's key must be in the known_hosts file (``known_hosts=`` or
``~/.ssh/known_hosts``), otherwise paramiko's ``RejectPolicy`` refuses the connection. A
changed key is refused too. ``~/.ssh/config`` is not read: the inventory says how to connect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut

from vllmfleet.errors import HostError
from vllmfleet.remote.base import CommandResult

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
CHUNK = 32768
# what a connection cut in the middle means, by operation (said after "...was cut (why); ")
CUT_READ = "reading changed nothing on the host; run it again"
CUT_UPLOAD = "no file was replaced, run it again (only a temporary file was being written)"
CUT_RUN = ("the command's effect is unknown (it may have run, partly or fully: a restart, or "
           "the rename of a new file into place): check the host (`inv health`, the file "
           "itself) before running it again")
CUT_CHANGE = "it is unknown whether {what} happened; check the host, then run it again"


class SSHTransport:
    """Commands and SFTP on one host over one lazily opened, reused SSH connection."""

    def __init__(self, *, host: str, address: str, port: int = 22, user: str,
                 key_file: str | Path | None = None, known_hosts: Path | None = None,
                 connect_timeout: float = 15.0) -> None:
        self.host = host
        self.address = address
        self.port = port
        self.user = user
        self.key_file = Path(key_file).expanduser() if key_file else None
        self.known_hosts = (known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
        self._explicit_known_hosts = known_hosts is not None
        self.connect_timeout = connect_timeout
        self.connection_count = 0
        self._conn: Connection | None = None
        self._home: str | None = None

    @property
    def target(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"

    # --- connection ---------------------------------------------------------------------

    def _new_connection(self) -> Connection:
        connect_kwargs: dict[str, Any] = {}
        if self.key_file is not None:
            if not self.key_file.is_file():
                raise HostError(f"ssh.key_file {self.key_file} does not exist: fix ssh.key_file "
                                "in the inventory or create the key", host=self.host)
            connect_kwargs = {"key_filename": [str(self.key_file)], "look_for_keys": False,
                              "allow_agent": False}
        conn = Connection(host=self.address, user=self.user, port=self.port,
                          connect_timeout=self.connect_timeout, connect_kwargs=connect_kwargs,
                          config=Config(overrides={"load_ssh_configs": False}))
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        if self.known_hosts.is_file():
            try:
                client.load_system_host_keys(str(self.known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise HostError(f"cannot read known_hosts {self.known_hosts}: {exc}",
                                host=self.host) from None
        elif self._explicit_known_hosts:
            raise HostError(f"known_hosts file {self.known_hosts} does not exist: pass an "
                            "existing file (ssh-keyscan can create one)", host=self.host)
        conn.client = client
        return conn

    def _connection(self) -> Connection:
        if self._conn is not None and self._conn.is_connected:
            return self._conn
        self._drop()
        conn = self._new_connection()
        try:
            try:
                conn.open()
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.close()
                raise
        except paramiko.BadHostKeyException as exc:
            raise HostError(
                f"the host key of {self.address}:{self.port} CHANGED ({exc.key.get_name()} "
                f"{exc.key.get_fingerprint().hex()}), refusing to connect: if the host was "
                f"reinstalled, verify the new key and replace its line in {self.known_hosts}",
                host=self.host) from None
        except paramiko.AuthenticationException as exc:
            key = f"key {self.key_file}" if self.key_file else "the agent/default keys"
            raise HostError(f"SSH authentication as {self.user} with {key} failed ({exc}): "
                            "authorise the public key in the user's authorized_keys, or fix "
                            "ssh.user / ssh.key_file in the inventory", host=self.host) from None
        except paramiko.SSHException as exc:
            if "known_hosts" in str(exc):
                raise HostError(
                    f"host key of {self.address}:{self.port} is unknown: it is not in "
                    f"{self.known_hosts} and host-key checking is on. Verify the key's "
                    f"fingerprint, then add it: ssh-keyscan -p {self.port} {self.address} "
                    f">> {self.known_hosts}", host=self.host) from None
            raise HostError(f"SSH to {self.target} failed: {exc}", host=self.host) from None
        except (OSError, EOFError) as exc:
            raise HostError(f"cannot connect to {self.address}:{self.port} ({exc}): check "
                            "that the host is up and runs sshd there (address and ssh.port in "
                            "the inventory)", host=self.host) from None
        self._conn = conn
        self.connection_count += 1
        return conn

    def _sftp_client(self) -> paramiko.SFTPClient:
        """The connection's SFTP session (Fabric opens it once and caches it)."""
        conn = self._connection()
        with self._errors("opening SFTP"):
            sftp: paramiko.SFTPClient = conn.sftp()
        return sftp

    def _drop(self) -> None:
        """Forget the connection (Fabric's close() closes its SFTP session too)."""
        conn, self._conn = self._conn, None
        with contextlib.suppress(Exception):
            if conn is not None:
                conn.close()

    def close(self) -> None:
        self._drop()

    @contextlib.contextmanager
    def _errors(self, what: str, *, cut: str = CUT_READ,
                command: str | None = None) -> Iterator[None]:
        """Turn transport errors into HostError; ``cut`` says what a dropped connection
        means for this operation (see the CUT_* texts)."""
        try:
            yield
        except HostError:
            raise
        except PermissionError as exc:
            raise HostError(f"{what}: permission denied ({exc}): the SSH user {self.user} may "
                            "not do this; change the owner of that folder, or use an adapter "
                            "with sudo", host=self.host, command=command) from None
        except (TimeoutError, paramiko.SSHException, EOFError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            if self._conn is not None and self._conn.is_connected:
                raise HostError(f"{what}: {detail}", host=self.host, command=command) from None
            self._drop()
            raise HostError(f"{what}: the SSH connection to {self.target} was cut ({detail}); "
                            + cut, host=self.host, command=command) from None

    # --- commands -----------------------------------------------------------------------

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        conn = self._connection()
        try:
            with self._errors("running a command", cut=CUT_RUN, command=command):
                done = conn.run(command, hide=True, warn=True, in_stream=False, pty=False,
                                timeout=timeout, encoding="utf-8")
        except CommandTimedOut:
            raise HostError(f"command timed out after {timeout} s: {command}", host=self.host,
                            command=command) from None
        return CommandResult(command=command, exit_code=int(done.exited), stdout=str(done.stdout),
                      stderr=str(done.stderr))

    # --- files --------------------------------------------------------------------------

    def home(self) -> str:
        if self._home is None:
            sftp = self._sftp_client()
            with self._errors("finding the SFTP home folder"):
                self._home = str(sftp.normalize("."))
        return self._home

    def upload(self, path: str, content: bytes) -> None:
        """Write ``content`` to ``path`` (mode 0600 before any byte is written)."""
        sftp = self._sftp_client()
        with self._errors(f"uploading {path}", cut=CUT_UPLOAD):
            with sftp.open(path, "wb") as handle:
                sftp.chmod(path, 0o600)
                handle.set_pipelined(True)
                for start in range(0, len(content), CHUNK):
                    handle.write(content[start:start + CHUNK])
            size = sftp.stat(path).st_size
            if size != len(content):
                raise HostError(f"uploading {path}: {size} bytes arrived of {len(content)}; "
                                "nothing was replaced, run it again", host=self.host)

    def download(self, path: str) -> bytes | None:
        sftp = self._sftp_client()
        with self._errors(f"downloading {path}"):
            try:
                with sftp.open(path, "rb") as handle:
                    handle.prefetch()
                    return bytes(handle.read())
            except FileNotFoundError:
                return None

    def stat(self, path: str) -> int | None:
        sftp = self._sftp_client()
        with self._errors(f"reading {path}"):
            try:
                attrs = sftp.stat(path)
            except FileNotFoundError:
                return None
        mode = int(attrs.st_mode or 0)
        if mode & 0o170000 == 0o040000:
            raise HostError(f"{path} is a folder, not a file: check the path in the inventory",
                            host=self.host)
        return mode & 0o7777

    def makedirs(self, path: str) -> None:
        sftp = self._sftp_client()
        with self._errors(f"creating folder {path}",
                          cut=CUT_CHANGE.format(what="creating it")):
            self._makedirs(sftp, path.rstrip("/") or "/")

    def _makedirs(self, sftp: paramiko.SFTPClient, path: str) -> None:
        try:
            sftp.stat(path)
            return
        except FileNotFoundError:
            pass
        parent = path.rsplit("/", 1)[0]
        if parent and parent != path:
            self._makedirs(sftp, parent)
        try:
            sftp.mkdir(path)
        except OSError as exc:
            try:  # created meanwhile, or the server reports EEXIST as a generic failure
                sftp.stat(path)
            except OSError:
                raise exc from None

    def remove(self, path: str) -> None:
        sftp = self._sftp_client()
        with self._errors(f"removing {path}", cut=CUT_CHANGE.format(what="the removal")), \
                contextlib.suppress(FileNotFoundError):
            sftp.remove(path)

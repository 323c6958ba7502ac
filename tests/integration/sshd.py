"""A throw-away OpenSSH server on 127.0.0.1 for tests that need real SSH.

:func:`start_sshd` runs ``/usr/sbin/sshd -D -e -f <tmp>/sshd_config`` on a free port with
a fresh ed25519 host key, a fresh user key authorised for the current user (root in CI:
``PermitRootLogin prohibit-password``), ``StrictModes no``, ``UsePAM no`` and every path
(pid file, authorized_keys, log) in its own folder. ``<root>/bin`` comes first on the
sessions' PATH, so tests can drop shims there (a fake ``docker``). It writes a known_hosts
file holding the host key, so clients connect with host-key checking ON.
:meth:`Sshd.stop` stops exactly the PID it started.

The session fixture ``sshd_server`` (tests/integration/conftest.py) starts one for the
tests that ask for it. If ``/usr/sbin/sshd`` is missing the fixture fails (never skips) and
says to run ``scripts/install-os-deps``; CI runs that script before the tests.
"""

from __future__ import annotations

import getpass
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from vllmfleet.inventory import SSH, VLLM, Host

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # Debian's sshd refuses to start without it
INSTALL_HINT = "run scripts/install-os-deps (it installs Debian's openssh-server)"


class SshdError(Exception):
    """The test sshd could not be started; the message says why and what to do."""


@dataclass(kw_only=True)
class Sshd:
    """A running test sshd and everything a client needs to reach it."""

    root: Path
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    host_public_key: str
    process: subprocess.Popen[bytes]
    log: Path
    address: str = "127.0.0.1"

    @property
    def bin_dir(self) -> Path:
        """A folder at the front of PATH for commands run over this sshd (put shims here)."""
        return self.root / "bin"
    stopped: bool = field(default=False)

    def host(self, name: str = "sshhost", *, vllm: VLLM | None = None,
             workdir: str | None = None) -> Host:
        """An inventory host (platform linux) that reaches this sshd."""
        return Host(name=name, address=self.address, platform="linux",
                    ssh=SSH(user=self.user, port=self.port, key_file=str(self.key_file)),
                    workdir=workdir, vllm=vllm)

    def stop(self) -> None:
        """Stop the sshd this object started (its PID only) and wait for it."""
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(path)], check=True, capture_output=True, timeout=30)
    return path.with_suffix(".pub").read_text().strip()


def _config(root: Path, port: int) -> str:
    return "\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {root / 'ssh_host_ed25519_key'}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "StrictModes no",
        "UsePAM no",
        "UseDNS no",
        "MaxSessions 64",
        "Subsystem sftp internal-sftp",
        "LogLevel INFO",
        # Commands over SSH find test shims (a fake docker, systemctl …) in <root>/bin first.
        # SHLVL=1 keeps bash from sourcing the user's ~/.bashrc for each SSH command (Debian's
        # bash does that when sshd runs it at level 1): this machine's dotfiles stay out of it.
        f"SetEnv PATH={root / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        " SHLVL=1",
        "",
    ])


def start_sshd(root: Path) -> Sshd:
    """Start a throw-away sshd with its files in ``root``; raise :class:`SshdError`."""
    if not SSHD.exists():
        raise SshdError(f"{SSHD} is missing: {INSTALL_HINT}")
    if not PRIVSEP_DIR.is_dir():
        try:
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
        except OSError as exc:
            raise SshdError(f"sshd needs {PRIVSEP_DIR} ({exc}): create it as root "
                            f"(mkdir -p {PRIVSEP_DIR})") from None
    root.mkdir(parents=True, exist_ok=True)
    (root / "bin").mkdir(exist_ok=True)
    host_pub = _keygen(root / "ssh_host_ed25519_key", "vllmfleet-test-host")
    user_pub = _keygen(root / "id_ed25519", "vllmfleet-test-user")
    (root / "authorized_keys").write_text(user_pub + "\n")
    port = _free_port()
    known_hosts = root / "known_hosts"
    key_type, key_data = host_pub.split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {key_type} {key_data}\n")
    config = root / "sshd_config"
    config.write_text(_config(root, port))
    checked = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True,
                             text=True, timeout=30)
    if checked.returncode != 0:
        raise SshdError(f"sshd rejects the test config {config}: {checked.stderr.strip()}")
    log = root / "sshd.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Sshd(root=root, port=port, user=getpass.getuser(), key_file=root / "id_ed25519",
                  known_hosts=known_hosts, host_public_key=f"{key_type} {key_data}",
                  process=process, log=log)
    try:
        _wait_listening(server)
    except BaseException:
        server.stop()
        raise
    return server


class _NotYet(Exception):
    pass


@retry(stop=stop_after_delay(15), wait=wait_fixed(0.05),
       retry=retry_if_exception_type(_NotYet), reraise=True)
def _wait_listening(server: Sshd) -> None:
    if server.process.poll() is not None:
        raise SshdError(f"sshd exited with {server.process.returncode} at start:\n"
                        + server.log.read_text(errors="replace"))
    try:
        with socket.create_connection((server.address, server.port), timeout=1) as sock:
            if not sock.recv(64).startswith(b"SSH-"):
                raise _NotYet()
    except OSError:
        raise _NotYet() from None


def sshd_log(server: Sshd) -> str:
    """What the test sshd has logged so far (for failure messages)."""
    return server.log.read_text(errors="replace") if server.log.exists() else ""


__all__ = ["INSTALL_HINT", "Sshd", "SshdError", "sshd_log", "start_sshd"]

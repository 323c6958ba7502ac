"""Host adapters: change and inspect one host of the fleet, whatever its platform.

:func:`adapter_for` returns the :class:`HostAdapter` for an inventory host:

=========  ===============================================================================
linux      bash over SSH; vLLM via docker compose, the proxy via systemd (remote.linux)
wsl        Windows OpenSSH → ``wsl -d <distro> -- bash -lc …``; docker inside WSL (remote.wsl)
windows    Windows OpenSSH → PowerShell and the rendered vLLM launcher (remote.windows)
local      no SSH: files under a local folder, the service is a local process (remote.local)
=========  ===============================================================================

Every adapter: ``put`` (atomic: temp file beside the target, sha256 checked, then renamed),
``read``/``read_file``, ``remove``, ``run``, ``restart``, ``status``, ``logs``, ``close``.
SSH adapters open one connection lazily and reuse it (``connection_count``), and check host
keys against known_hosts (``known_hosts=`` or ``~/.ssh/known_hosts``). Failures raise
:class:`~vllmfleet.errors.HostError` naming the host, the command, its exit code and the tail
of its stderr.

Example::

    with adapter_for(inv.hosts["motoko"], proxy=inv.proxy) as motoko:
        motoko.put("/etc/litellm/config.yaml", text.encode(), mode=0o644)
        motoko.restart()
"""

from __future__ import annotations

from pathlib import Path

from vllmfleet.errors import HostError
from vllmfleet.inventory import Host, Proxy
from vllmfleet.remote.base import (
    MAX_LOG_LINES,
    CommandResult,
    HostAdapter,
    RemoteFile,
    ServiceName,
    ServiceStatus,
    Tokens,
    Transport,
    check_remote_path,
    random_token,
    sha256,
)
from vllmfleet.remote.linux import LinuxAdapter
from vllmfleet.remote.local import CallableService, LocalAdapter, LocalService
from vllmfleet.remote.logs import follow, new_lines
from vllmfleet.remote.posix import DockerCompose, PosixService, Systemd
from vllmfleet.remote.ssh import SSHTransport
from vllmfleet.remote.windows import WindowsAdapter
from vllmfleet.remote.wsl import WSLAdapter
from vllmfleet.render import COMPOSE_FILE

__all__ = [
    "MAX_LOG_LINES",
    "CallableService",
    "CommandResult",
    "DockerCompose",
    "HostAdapter",
    "LinuxAdapter",
    "LocalAdapter",
    "LocalService",
    "RemoteFile",
    "SSHTransport",
    "ServiceName",
    "ServiceStatus",
    "Systemd",
    "Tokens",
    "Transport",
    "WSLAdapter",
    "WindowsAdapter",
    "adapter_for",
    "check_remote_path",
    "follow",
    "new_lines",
    "posix_services",
    "random_token",
    "sha256",
]


def posix_services(host: Host, proxy: Proxy | None, *,
                   sudo: bool = True) -> dict[ServiceName, PosixService]:
    """What a linux/wsl host runs: its vLLM container and/or the LiteLLM systemd unit."""
    services: dict[ServiceName, PosixService] = {}
    if host.vllm is not None:
        if host.vllm.container_name is None:  # inventory rules require it off platform: local
            raise HostError(f"hosts.{host.name}.vllm.container_name is not set; a "
                            f"{host.platform} host runs vLLM in docker and needs it",
                            host=host.name)
        services["vllm"] = DockerCompose(compose_file=f"{host.base_dir}/{COMPOSE_FILE}",
                                         container=host.vllm.container_name)
    if proxy is not None and proxy.host == host.name:
        services["proxy"] = Systemd(unit=proxy.systemd_unit, sudo=sudo)
    return services


def adapter_for(host: Host, *, proxy: Proxy | None = None, known_hosts: Path | None = None,
                local_root: Path | None = None,
                local_services: dict[ServiceName, LocalService] | None = None,
                address: str | None = None, port: int | None = None, user: str | None = None,
                key_file: str | Path | None = None, sudo: bool = False,
                transport: Transport | None = None,
                tokens: Tokens = random_token) -> HostAdapter:
    """The adapter for ``host`` (nothing connects until the first operation).

    ``proxy``: the inventory's proxy section, so the proxy host gets its systemd service.
    ``known_hosts``: the file host keys are checked against (default ``~/.ssh/known_hosts``).
    ``local_root`` / ``local_services``: for ``local`` hosts, the folder that stands for the
    host's disk (files go under ``<local_root>/<host>``) and the local fleet's services.
    ``address``/``port``/``user``/``key_file`` override the inventory (e.g. a local sshd).
    ``sudo``: linux/wsl file writes and reads through ``sudo -n`` (files under /etc).
    ``transport``: a ready transport instead of SSH (tests pass a recording fake).
    """
    if host.platform == "local":
        if local_root is None:
            raise HostError("a local host needs a folder for its files: pass local_root "
                            "(the local fleet passes its state folder)", host=host.name)
        return LocalAdapter(host=host.name, root=Path(local_root) / host.name,
                            services=local_services, tokens=tokens)
    if transport is None:
        if host.ssh is None:  # inventory rules require it off platform: local
            raise HostError(f"hosts.{host.name}.ssh is not set; a {host.platform} host is "
                            "reached over SSH: add ssh: {user: ops}", host=host.name)
        transport = SSHTransport(host=host.name, address=address or host.address,
                                 port=port or host.ssh.port, user=user or host.ssh.user,
                                 key_file=key_file or host.ssh.key_file,
                                 known_hosts=known_hosts)
    if host.platform == "linux":
        return LinuxAdapter(host=host.name, transport=transport,
                            services=posix_services(host, proxy), sudo=sudo, tokens=tokens)
    if host.platform == "wsl":
        return WSLAdapter(host=host.name, transport=transport, distro=host.wsl_distro or "",
                          services=posix_services(host, proxy), sudo=sudo, tokens=tokens)
    if proxy is not None and proxy.host == host.name:
        raise HostError("the LiteLLM proxy cannot run on a windows host here: move proxy.host "
                        "to a linux or wsl host in the inventory", host=host.name)
    return WindowsAdapter(host=host.name, transport=transport, base_dir=host.base_dir,
                          tokens=tokens)

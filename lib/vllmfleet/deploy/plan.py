"""What a deploy (or a rollback) wants on one host, how that differs from the host, and
what the services must report afterwards. Pure: no I/O except reading through an adapter.

- :class:`Desired`: one file as it should be (bytes and mode, or ``content=None``: absent),
  and the service it belongs to (``vllm``: the compose file, the Windows launcher and its
  JSON; ``proxy``: the LiteLLM config, limits, hooks, systemd unit, env template):
  :func:`service_of_kind` says which, for every rendered :data:`~vllmfleet.render.base.Kind`
  (mypy checks that none is missing).
- :class:`Change`: a desired file next to what the host has; ``diff()`` is a unified diff.
- :class:`Expect`: what a service must report once restarted — vLLM: its served name and
  max_model_len on ``/v1/models``; the proxy: every model name listed and answering. It is
  read from the very files being deployed (the vLLM arguments in the compose file or the
  Windows JSON; ``model_list`` and ``model_group_alias`` in the LiteLLM config), so a
  rollback checks against the restored files, not against today's inventory.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, assert_never, get_args

import yaml

from vllmfleet.deploy.backups import RestoreItem
from vllmfleet.health import Expect
from vllmfleet.inventory import Host, Inventory, proxy_url, vllm_url
from vllmfleet.remote import RemoteFile, ServiceName, sha256
from vllmfleet.render import RenderedFile, flag_value, launch_args
from vllmfleet.render.base import Kind

# a file of a backup that today's render does not produce (see from_backup)
# "backend-key": a 0600 env file holding the vLLM servers' key (deploy.backend_key)
DesiredKind = Kind | Literal["restored", "backend-key"]


def service_of_kind(kind: Kind) -> ServiceName:
    """The service a rendered file of ``kind`` belongs to (restarted when it changes)."""
    match kind:
        case "vllm-launch" | "windows-launcher" | "windows-config":
            return "vllm"
        case "litellm-config" | "proxy-hooks" | "proxy-limits" | "systemd-unit" | "env-template":
            return "proxy"
    assert_never(kind)  # mypy: every Kind must have a case above


SERVICE_OF_KIND: Final[Mapping[Kind, ServiceName]] = {
    kind: service_of_kind(kind) for kind in get_args(Kind)}
LAUNCH_KINDS: Final[tuple[Kind, ...]] = ("vllm-launch", "windows-config")


@dataclass(frozen=True, kw_only=True)
class Desired:
    """One file as a deploy wants it on the host (``content=None``: the file must not exist)."""

    remote_path: str
    content: bytes | None
    mode: int | None
    service: ServiceName
    kind: DesiredKind
    secret: bool = False  # its contents never appear in a diff, a log or a backup

    def __repr__(self) -> str:  # never the bytes (a secret file's key)
        size = "absent" if self.content is None else f"{len(self.content)} bytes"
        return f"Desired({self.remote_path!r}, {self.kind}, {size})"


@dataclass(frozen=True, kw_only=True)
class Change:
    """A desired file and what the host has now (``have=None``: absent on the host)."""

    want: Desired
    have: RemoteFile | None

    @property
    def changed(self) -> bool:
        if self.want.content is None:
            return self.have is not None
        if self.have is None or self.have.content != self.want.content:
            return True
        return self.want.mode is not None and self.have.mode != self.want.mode

    def diff(self, host: str) -> str:
        """A unified diff, host's version → wanted version (a mode change as a note)."""
        path = self.want.remote_path
        if self.want.secret:
            mode = ""
            if self.want.mode is not None and (self.have is None
                                               or self.have.mode != self.want.mode):
                mode = f" (mode {self.want.mode:04o})"
            state = "new" if self.have is None else "changed"
            return f"{host}:{path}: <secret: {state}>{mode}, contents not shown\n"
        old = _text(self.have.content) if self.have is not None else []
        new = _text(self.want.content) if self.want.content is not None else []
        lines = list(difflib.unified_diff(
            old, new, fromfile=f"{host}:{path} (on the host)" if self.have else "/dev/null",
            tofile=f"{host}:{path} (new)" if self.want.content is not None else "/dev/null"))
        text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in lines)
        if (self.have is not None and self.want.content is not None
                and self.want.mode is not None and self.have.mode != self.want.mode):
            text += f"mode of {host}:{path}: {self.have.mode:04o} -> {self.want.mode:04o}\n"
        return text


def _text(content: bytes) -> list[str]:
    if b"\x00" in content:
        return [f"(binary, {len(content)} bytes, sha256 {sha256(content)[:16]}…)\n"]
    return content.decode("utf-8", errors="replace").splitlines(keepends=True)


def from_render(files: Iterable[RenderedFile],
                services: Sequence[ServiceName] | None = None) -> list[Desired]:
    """The rendered files (of ``services`` only, when given) as desired files."""
    out = []
    for f in files:
        service = service_of_kind(f.kind)
        if services is None or service in services:
            out.append(Desired(remote_path=f.remote_path, content=f.content.encode("utf-8"),
                               mode=f.mode, service=service, kind=f.kind))
    return out


def from_backup(items: Iterable[RestoreItem], *,
                known: Mapping[str, tuple[ServiceName, DesiredKind]],
                default: ServiceName) -> list[Desired]:
    """What a rollback to ``backup`` wants: every file as it was (absent ones removed).

    ``known`` maps remote paths to (service, kind) as today's render has them; a path it
    does not know belongs to ``default``.
    """
    out = []
    for item in items:
        service, kind = known.get(item.remote_path, (default, "restored"))
        out.append(Desired(remote_path=item.remote_path, content=item.content,
                           mode=item.mode, service=service, kind=kind))
    return out


def services_of(desired: Iterable[Desired]) -> list[ServiceName]:
    """The services these files belong to: vLLM first (the proxy depends on it)."""
    found = {d.service for d in desired}
    return [s for s in ("vllm", "proxy") if s in found]


# --- what the services must report ----------------------------------------------------------

def proxy_models(content: bytes) -> tuple[str, ...]:
    """Every model name a rendered LiteLLM config serves (model_list + model_group_alias)."""
    try:
        data = yaml.safe_load(content.decode("utf-8"))
        names = [str(m["model_name"]) for m in data.get("model_list") or []]
        group = (data.get("router_settings") or {}).get("model_group_alias") or {}
        names += [str(k) for k in group]
    except (UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return ()
    return tuple(dict.fromkeys(names))


def expectations(inventory: Inventory, host: Host, desired: Sequence[Desired]) -> list[Expect]:
    """What each service of ``desired`` must report, read from the desired files."""
    out = []
    for service in services_of(desired):
        files = [d for d in desired if d.service == service and d.content is not None]
        if service == "vllm" and host.vllm is not None:
            launch = next((d for d in files if d.kind in LAUNCH_KINDS), None)
            args = launch_args(launch.content or b"", launch.kind) if launch else []
            port, mml = flag_value(args, "--port"), flag_value(args, "--max-model-len")
            out.append(Expect(
                service="vllm", timeout_s=float(host.vllm.start_timeout_s),
                url=vllm_url(host, int(port) if port and port.isdigit() else None),
                served_model_name=flag_value(args, "--served-model-name")
                or host.vllm.served_model_name,
                max_model_len=int(mml) if mml and mml.isdigit() else host.vllm.max_model_len))
        elif service == "proxy":
            config = next((d for d in files
                           if d.remote_path == inventory.proxy.config_path), None)
            models = proxy_models(config.content or b"") if config else ()
            if not models:
                models = tuple(n for a in inventory.aliases.values() for n in a.names)
            out.append(Expect(service="proxy", url=proxy_url(inventory), models=models,
                              timeout_s=float(inventory.proxy.start_timeout_s)))
    return out


def unit_changed(changes: Iterable[Change]) -> bool:
    """Whether a systemd unit file changes (systemd must reload before the restart)."""
    return any(c.changed and posixpath.basename(c.want.remote_path).endswith(".service")
               for c in changes)

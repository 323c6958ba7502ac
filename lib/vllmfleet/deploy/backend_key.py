"""The vLLM servers' API key on the hosts (issue 9: only the proxy reaches vLLM).

The key lives in the operator's environment (the variable ``proxy.backend_key_env`` names,
default ``VLLMFLEET_BACKEND_KEY``), never in the inventory, the repository or a backup. A
deploy installs it as one line of a 0600 env file:

- each vLLM host: ``VLLM_API_KEY=<key>`` in ``<workdir>/vllm.env`` — the compose file's
  ``env_file`` and the Windows launcher read it; vLLM 0.32.0 uses ``VLLM_API_KEY`` when no
  ``--api-key`` is given (one key; ``--api-key`` would take a list:
  vllm/entrypoints/serve/middleware/register.py) and checks it on ``/v1/*`` only
  (vllm/entrypoints/serve/middleware/authenticate.py);
- the proxy host: ``<backend_key_env>=<key>`` in ``proxy.env_file`` (the LiteLLM unit's
  EnvironmentFile; the rendered config passes ``api_key: os.environ/<backend_key_env>``).

:func:`merged` sets that one line and keeps every other line of the file as it is. The
file is a :class:`~vllmfleet.deploy.plan.Desired` with ``secret=True``: its diff is a
placeholder, it is left out of backups (a rollback of the same run restores the old file
from memory; ``inv rollback`` later leaves the key as it is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vllmfleet.errors import DeployError
from vllmfleet.inventory import Host, Inventory
from vllmfleet.remote import ServiceName
from vllmfleet.render.base import remote_join
from vllmfleet.render.vllm import SECRET_FILE

VLLM_VARIABLE = "VLLM_API_KEY"  # vllm/envs.py + serve/middleware/register.py, 0.32.0
SECRET_MODE = 0o600
MIN_LENGTH = 16
# safe unquoted in a compose env_file, a systemd EnvironmentFile and PowerShell; token_urlsafe
_KEY = re.compile(r"[A-Za-z0-9._~+/=-]+")
GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


@dataclass(frozen=True, kw_only=True)
class SecretLine:
    """One ``NAME=value`` line a deploy keeps in a 0600 file on a host."""

    remote_path: str
    name: str
    value: str
    service: ServiceName
    mode: int | None = SECRET_MODE  # None: a Windows host (its SFTP modes mean nothing)
    # the proxy's env file: it must exist and assign this variable (the master key) first —
    # a file made from the key alone would start LiteLLM without its master key
    needs: str = ""

    def check_have(self, have: bytes | None, *, host: str) -> None:
        """Refuse (nothing changed) a file that lacks what :attr:`needs` says."""
        if not self.needs:
            return
        lines = have.decode("utf-8", errors="replace").splitlines() if have else []
        if not any(_assigns(text, self.needs) for text in lines):
            state = "does not exist" if have is None else f"does not set {self.needs}"
            raise DeployError(
                f"{host}:{self.remote_path} {state}: the proxy's env file must hold its master "
                f"key before a deploy adds the backend key to it; create it from "
                f"{self.remote_path}.example (mode 0600), then deploy again", host=host)

    def __repr__(self) -> str:  # never the value
        return f"SecretLine({self.remote_path!r}, {self.name!r}, <secret>)"


def check_key(value: str, *, variable: str) -> str:
    """``value`` if it is a usable key; else a DeployError naming ``variable`` (not the value)."""
    if len(value) < MIN_LENGTH or not _KEY.fullmatch(value):
        raise DeployError(
            f"{variable}: the backend key must be at least {MIN_LENGTH} characters of "
            "A-Z a-z 0-9 . _ ~ + / = - (no spaces, quotes or control characters); generate "
            f"one with: export {variable}=$({GENERATE})")
    return value


def secret_path(host: Host) -> str:
    """``<workdir>/vllm.env`` of a vLLM host (where compose and the launcher read it)."""
    return remote_join(host.base_dir, SECRET_FILE)


def secret_lines(inventory: Inventory, host: Host, key: str,
                 services: tuple[ServiceName, ...]) -> list[SecretLine]:
    """The key lines ``host`` gets for ``services``."""
    out = []
    if "vllm" in services and host.vllm is not None:
        out.append(SecretLine(remote_path=secret_path(host), name=VLLM_VARIABLE, value=key,
                              service="vllm",
                              mode=None if host.platform == "windows" else SECRET_MODE))
    if "proxy" in services and host.name == inventory.proxy.host:
        out.append(SecretLine(remote_path=inventory.proxy.env_file,
                              name=inventory.proxy.backend_key_env, value=key, service="proxy",
                              needs=inventory.proxy.master_key_env))
    return out


def _assigns(line: str, name: str) -> bool:
    text = line.strip()
    if text.startswith("export "):
        text = text[len("export "):].lstrip()
    return "=" in text and text.split("=", 1)[0].strip() == name


def merged(have: bytes | None, line: SecretLine) -> bytes:
    """``have`` with ``line.name`` set to ``line.value`` (first assignment replaced, later
    ones dropped, appended if absent); every other line kept as it was."""
    old = have.decode("utf-8", errors="surrogateescape").splitlines() if have else []
    out: list[str] = []
    done = False
    for text in old:
        if _assigns(text, line.name):
            if not done:
                out.append(f"{line.name}={line.value}")
                done = True
            continue
        out.append(text)
    if not done:
        out.append(f"{line.name}={line.value}")
    return ("\n".join(out) + "\n").encode("utf-8", errors="surrogateescape")

"""Check a LiteLLM config with the LiteLLM that will run it, before it replaces the live one.

LiteLLM 1.108.7 has ``litellm --config FILE --validate_config``
(``proxy_cli.ProxyInitializationHelpers.run_config_validation``): it loads the config as the
proxy does (``ProxyConfig.load_config`` — which also loads the callbacks, i.e. our hooks
module and its limits file) and exits 1 with "LiteLLM: config validation failed: …" on any
error, 0 with "LiteLLM: config OK (N models)". ``litellm --version`` prints
"LiteLLM: Current Version = X.Y.Z".

:func:`validate_on_host` pushes the new proxy bundle (config, limits, hooks) to a scratch
folder under /tmp of the proxy host, runs the host's own LiteLLM on it, and removes it —
Ansible's ``validate:`` pattern: a config that this LiteLLM cannot load never replaces the
running one. A LiteLLM without the flag (click answers exit 2 "No such option") is reported
and the deploy falls back to the health-gated swap. :func:`version_warning` compares the
host's LiteLLM with the tested release line (:data:`TESTED_LITELLM`).
:func:`validate_locally` does the same check with the LiteLLM installed here (``inv render
--litellm`` / ``inv validate --litellm``).
"""

from __future__ import annotations

import importlib.util
import os
import posixpath
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vllmfleet.deploy.plan import Desired
from vllmfleet.errors import DeployError
from vllmfleet.inventory import Host, Inventory
from vllmfleet.remote import HostAdapter

__all__ = ["BUNDLE_KINDS", "TESTED_LITELLM", "litellm_cli", "validate_locally",
           "validate_on_host", "version_warning"]

TESTED_LITELLM = "1.108"
"""The LiteLLM release line the hooks are verified with (constraints.txt pins 1.108.7)."""
BUNDLE_KINDS = frozenset({"litellm-config", "proxy-limits", "proxy-hooks"})
SCRATCH_PREFIX = "vllmfleet-validate-"
VALIDATE_TIMEOUT_S = 180.0
_VERSION = re.compile(r"Current Version = ([0-9][0-9A-Za-z.+-]*)")
_OFFLINE = "LITELLM_LOCAL_MODEL_COST_MAP=True"  # no price-map download while checking


def litellm_cli(inventory: Inventory, host: Host) -> str:
    """The command that runs the proxy host's LiteLLM (as its shell reads it)."""
    if host.platform == "local":
        # a host on this machine (the local fleet) runs LiteLLM from this Python
        return f"{shlex.quote(sys.executable)} -m litellm.proxy.proxy_cli"
    return inventory.proxy.litellm_command


def _tail(text: str, lines: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def version_warning(adapter: HostAdapter, cli: str) -> str | None:
    """A warning when the host's LiteLLM is not the tested line (or cannot be asked)."""
    result = adapter.run(f"{_OFFLINE} {cli} --version", check=False, timeout=120.0)
    found = _VERSION.search(result.stdout + result.stderr)
    if not result.ok or found is None:
        return (f"could not read the proxy host's LiteLLM version with `{cli} --version` "
                f"(exit {result.exit_code}): {_tail(result.stderr or result.stdout)}; "
                f"vllmfleet is tested with LiteLLM {TESTED_LITELLM}.x")
    version = found.group(1)
    if version != TESTED_LITELLM and not version.startswith(TESTED_LITELLM + "."):
        return (f"the proxy host runs LiteLLM {version}, vllmfleet's hooks are tested with "
                f"{TESTED_LITELLM}.x (constraints.txt): limits may not hold; install "
                f"`pip install -c constraints.txt 'litellm[proxy]'` there, or run "
                "`nox -s litellm_latest` to check this release")
    return None


def validate_on_host(adapter: HostAdapter, *, cli: str, bundle: Sequence[Desired],
                     config_path: str) -> str | None:
    """Run the host's LiteLLM on the new bundle; :class:`DeployError` if it cannot load it.

    Returns a note when the check could not run (a LiteLLM without ``--validate_config``),
    None when the config passed.
    """
    scratch = f"/tmp/{SCRATCH_PREFIX}{secrets.token_hex(6)}"
    where = adapter.command_path(scratch)  # a local host keeps its files below a folder
    config = posixpath.join(where, posixpath.basename(config_path))
    command = (f"cd {shlex.quote(where)} && {_OFFLINE} {cli} --config "
               f"{shlex.quote(config)} --validate_config")
    try:
        for item in bundle:
            if item.content is not None:  # not secret: config (no keys), limits, hooks
                adapter.put(posixpath.join(scratch, posixpath.basename(item.remote_path)),
                            item.content, mode=0o644)
        result = adapter.run(command, check=False, timeout=VALIDATE_TIMEOUT_S)
    finally:
        gone = shlex.quote(where)
        adapter.run(f"rm -rf -- {gone} 2>/dev/null || sudo -n rm -rf -- {gone}", check=False)
    output = result.stdout + result.stderr
    if result.ok:
        return None
    if result.exit_code in (126, 127):
        return (f"the host's LiteLLM could not be run ({cli!r}, exit {result.exit_code}); the "
                "new config was not checked before the swap — the health-gated swap stays "
                "the guard")
    if "No such option" in output and "validate_config" in output:
        return ("the host's LiteLLM has no --validate_config (added in 1.108); the new config "
                "was not checked before the swap — the health-gated swap stays the guard")
    raise DeployError(
        f"the host's LiteLLM cannot load the new proxy config (exit {result.exit_code}): "
        f"{_tail(output)}\n    nothing was swapped; fix the inventory or the templates and "
        "deploy again", host=adapter.host)


def validate_locally(files: Sequence[tuple[str, str]], *, config_name: str,
                     timeout_s: float = VALIDATE_TIMEOUT_S) -> list[str]:
    """Problems the LiteLLM installed here finds in a rendered bundle ((name, text) pairs).

    Empty when it loads; one line saying so when LiteLLM is not installed here.
    """
    if importlib.util.find_spec("litellm") is None:
        return [f"LiteLLM is not installed here, so the proxy config was not checked with "
                f"it (`pip install -c constraints.txt -e '.[proxy]'`; tested: "
                f"{TESTED_LITELLM}.x)"]
    with tempfile.TemporaryDirectory(prefix="vllmfleet-litellm-") as tmp:
        folder = Path(tmp)
        for name, text in files:
            (folder / name).write_text(text, encoding="utf-8")
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        env.pop("VLLMFLEET_LIMITS", None)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config",
                 str(folder / config_name), "--validate_config"],
                cwd=folder, env=env, capture_output=True, text=True, timeout=timeout_s,
                check=False)
        except subprocess.TimeoutExpired:
            return [f"LiteLLM did not finish checking the config within {timeout_s:.0f} s"]
    if done.returncode == 0:
        return []
    return [f"LiteLLM cannot load the rendered proxy config (exit {done.returncode}): "
            f"{_tail(done.stdout + done.stderr)}"]

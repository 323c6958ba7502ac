"""Render the LiteLLM proxy's files: config, limits, hooks module, systemd unit, env template.

The LiteLLM config puts every limit where LiteLLM really reads it (DESIGN.md, "LiteLLM —
what it really does"): ``max_input_tokens``/``rpm``/``tpm`` in ``model_info`` (enforced by
``router_settings.enable_pre_call_checks`` and ``enforce_model_rate_limits``), the
queue-depth bound as ``litellm_params.max_parallel_requests``, one ``model_list`` entry
per alias (a profile such as the burst profile is its own entry, with its own counters)
and every ``also:`` name in ``router_settings.model_group_alias``. ``max_output_tokens``
and the Retry-After header are the job of the hooks module, which reads
``vllmfleet_limits.json`` beside the config.

The env template ``<env_file>.example`` names the variables with placeholders only; it is
rendered with mode 0600 so that ``cp litellm.env.example litellm.env`` starts the real
(secret) file with the right mode.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vllmfleet.errors import RenderError
from vllmfleet.inventory import Host, Inventory, vllm_url
from vllmfleet.render.base import (
    MODE_FILE,
    MODE_SECRET,
    RenderedFile,
    Templates,
    generated_line,
    remote_join,
    to_json,
)

HOOKS_MODULE = "vllmfleet_hooks"        # the file name beside the config, without .py
HOOKS_CALLBACK = f"{HOOKS_MODULE}.handler"
LIMITS_FILE = "vllmfleet_limits.json"
HOOKS_SOURCE = "proxy_hooks.py"         # in the vllmfleet package


def backend_model(served_model_name: str) -> str:
    """The deployment's ``litellm_params.model``: LiteLLM's provider prefix + vLLM's name."""
    return f"hosted_vllm/{served_model_name}"


def default_api_base(host: Host) -> str:
    """The OpenAI base URL of ``host``'s vLLM server as the proxy reaches it."""
    if host.vllm is None:
        raise RenderError(f"host {host.name!r} has no vllm: section, so no proxy backend; "
                          "point the alias at a host that runs vLLM")
    return vllm_url(host) + "/v1"


def _entries(inventory: Inventory, api_base: Callable[[Host], str]) -> list[dict[str, Any]]:
    entries = []
    for alias in inventory.aliases.values():
        host = inventory.hosts[alias.host]
        assert host.vllm is not None  # the inventory rules guarantee it
        entries.append({
            "name": alias.name,
            "served_model_name": host.vllm.served_model_name,
            "api_base": api_base(host),
            "max_parallel": alias.max_parallel,
            "max_input_tokens": alias.max_input_tokens,
            "max_output_tokens": alias.max_output_tokens,
            "rpm": alias.rpm,
            "tpm": alias.tpm,
            "profile_of": alias.profile_of,
            "exact_input": alias.exact_input_tokens,
        })
    return entries


def _config_context(inventory: Inventory, *, api_base: Callable[[Host], str] | None,
                    master_key_env: str | None) -> dict[str, Any]:
    return {
        "generated": generated_line(inventory),
        "proxy": inventory.proxy,
        "entries": _entries(inventory, api_base or default_api_base),
        "group_alias": {also: alias.name for alias in inventory.aliases.values()
                        for also in alias.also},
        "callbacks": [HOOKS_CALLBACK],
        "master_key_env": master_key_env or inventory.proxy.master_key_env,
    }


def _render_config(inventory: Inventory, *, api_base: Callable[[Host], str] | None,
                   master_key_env: str | None, templates: Templates) -> str:
    context = _config_context(inventory, api_base=api_base, master_key_env=master_key_env)
    return templates.render("litellm_config.yaml.j2", context)


def litellm_config(inventory: Inventory, *, api_base: Callable[[Host], str] | None = None,
                   master_key_env: str | None = None,
                   templates: Path | None = None) -> dict[str, Any]:
    """The LiteLLM config as parsed data (rendered from the same template as the real one).

    ``api_base`` maps a vLLM host to the URL the proxy uses (the local fleet points it at
    127.0.0.1); ``master_key_env`` overrides the name of the master-key variable.
    """
    text = _render_config(inventory, api_base=api_base, master_key_env=master_key_env,
                          templates=Templates.of(inventory, templates))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RenderError(f"litellm_config.yaml.j2 rendered invalid YAML: {exc}; "
                          "fix the template") from None
    if not isinstance(data, dict):
        raise RenderError("litellm_config.yaml.j2 must render a YAML mapping; fix the template")
    return data


def _tokenize_url(api_base: str) -> str:
    """vLLM's /tokenize beside the OpenAI routes (``…/v1`` → ``…/tokenize``)."""
    base = api_base.rstrip("/")
    return (base[:-3] if base.endswith("/v1") else base) + "/tokenize"


def limits(inventory: Inventory, *,
           api_base: Callable[[Host], str] | None = None) -> dict[str, Any]:
    """What the hooks module enforces, keyed by every name a client may send.

    An alias with ``exact_input_tokens`` (the default) is counted by its backend's
    ``/tokenize`` at the URL the proxy reaches it (``api_base``, as in the config).
    """
    base_of = api_base or default_api_base
    table: dict[str, Any] = {}
    for alias in inventory.aliases.values():
        host = inventory.hosts[alias.host]
        assert host.vllm is not None  # the inventory rules guarantee it
        exact: dict[str, Any] = {"exact_input": alias.exact_input_tokens}
        if alias.exact_input_tokens:
            exact.update(tokenize_url=_tokenize_url(base_of(host)),
                         served_model_name=host.vllm.served_model_name,
                         backend_key_env=inventory.proxy.backend_key_env)
        for name in alias.names:
            table[name] = {
                "alias": alias.name,
                "max_input_tokens": alias.max_input_tokens,
                "max_output_tokens": alias.max_output_tokens,
                "on_max_output": alias.on_max_output,
                "max_parallel": alias.max_parallel,
                "rpm": alias.rpm,
                "tpm": alias.tpm,
                "max_n": alias.max_n,
                **exact,
            }
    # Raw backend names LiteLLM also routes (a deployment's litellm_params.model): refused
    # by the hooks with a message naming the aliases served there.
    backends: dict[str, list[str]] = {}
    for alias in inventory.aliases.values():
        host = inventory.hosts[alias.host]
        if host.vllm is not None:
            backends.setdefault(backend_model(host.vllm.served_model_name), []).append(alias.name)
    # A digest of the limits themselves (not of the whole inventory): an edit elsewhere in
    # the inventory must not change this file, or every deploy would restart the proxy.
    canonical = json.dumps(table, sort_keys=True, separators=(",", ":")).encode()
    return {"aliases": table, "backends": backends,
            "limits_digest": hashlib.sha256(canonical).hexdigest()}


def hooks_source() -> str:
    """The verbatim source of ``vllmfleet/proxy_hooks.py`` (shipped beside the config)."""
    source = resources.files("vllmfleet").joinpath(HOOKS_SOURCE)
    try:
        return source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RenderError(
            f"the proxy hooks module {source} is missing; it is rendered as "
            f"{HOOKS_MODULE}.py beside the LiteLLM config: restore lib/vllmfleet/{HOOKS_SOURCE} "
            "(and reinstall the package if it is not installed in editable mode)") from None


def render_proxy(inventory: Inventory, *, api_base: Callable[[Host], str] | None = None,
                 master_key_env: str | None = None,
                 templates: Path | None = None) -> list[RenderedFile]:
    """The files LiteLLM needs in its config folder: config, limits JSON, hooks module.

    The local fleet calls this with its own ``api_base`` and writes the files to a folder.
    """
    return _proxy_bundle(inventory, api_base=api_base, master_key_env=master_key_env,
                         templates=Templates.of(inventory, templates))


def _proxy_bundle(inventory: Inventory, *, api_base: Callable[[Host], str] | None,
                  master_key_env: str | None, templates: Templates) -> list[RenderedFile]:
    proxy = inventory.proxy
    config_dir = posixpath.dirname(proxy.config_path) or "."
    host = proxy.host

    def file(name: str, remote: str, content: str, kind: Any) -> RenderedFile:
        return RenderedFile(host=host, relpath=f"{host}/litellm/{name}", remote_path=remote,
                            content=content, mode=MODE_FILE, kind=kind)

    config = _render_config(inventory, api_base=api_base, master_key_env=master_key_env,
                            templates=templates)
    return [
        file(posixpath.basename(proxy.config_path), proxy.config_path, config, "litellm-config"),
        file(LIMITS_FILE, remote_join(config_dir, LIMITS_FILE),
             to_json(limits(inventory, api_base=api_base)), "proxy-limits"),
        file(f"{HOOKS_MODULE}.py", remote_join(config_dir, f"{HOOKS_MODULE}.py"),
             hooks_source(), "proxy-hooks"),
    ]


def proxy_host_files(inventory: Inventory, *, templates: Templates) -> list[RenderedFile]:
    """Everything the proxy host gets: the bundle, plus (under systemd) unit and env template."""
    files = _proxy_bundle(inventory, api_base=None, master_key_env=None, templates=templates)
    proxy = inventory.proxy
    if inventory.hosts[proxy.host].platform == "local":
        return files  # the local fleet runs LiteLLM itself, not systemd
    context = {"generated": generated_line(inventory), "proxy": proxy,
               "user": "litellm", "config_dir": posixpath.dirname(proxy.config_path) or "/"}
    unit = f"{proxy.systemd_unit}.service"
    env_name = posixpath.basename(proxy.env_file) + ".example"
    files.append(RenderedFile(
        host=proxy.host, relpath=f"{proxy.host}/systemd/{unit}",
        remote_path=f"/etc/systemd/system/{unit}",
        content=templates.render("litellm.service.j2", context), mode=MODE_FILE,
        kind="systemd-unit"))
    files.append(RenderedFile(
        host=proxy.host, relpath=f"{proxy.host}/litellm/{env_name}",
        remote_path=proxy.env_file + ".example",
        content=templates.render("litellm.env.example.j2", context), mode=MODE_SECRET,
        kind="env-template"))
    return files

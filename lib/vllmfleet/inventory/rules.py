"""Cross-field rules of the inventory: references, limits against vLLM, GPU features.

Each rule adds problems to the :class:`~vllmfleet.inventory.schema.Context`; none raises. Where a
rule encodes a fact about vLLM or LiteLLM the comment says where the fact comes from.

:func:`check_references` runs on the raw YAML data, so a name that points nowhere is
reported (with a did-you-mean) even when other errors stop the typed rules in
:func:`check`, which then assume every reference resolves.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from typing import Any

from vllmfleet.inventory.model import Alias, Host, Inventory, Proxy
from vllmfleet.inventory.names import UNIT_NAME, path_problem
from vllmfleet.inventory.schema import Context, show
from vllmfleet.inventory.vllm_version import check_vllm_version
from vllmfleet.vllm.kernels import (
    FP8_E4M3_MIN_CAPABILITY,
    QUANT_MIN_CAPABILITY,
    weight_format,
)

# Rule of thumb of the fleet's operators: proxy max_input is 80-95 % of max_model_len.
INPUT_SHARE = (0.80, 0.95)
# Limits a profile (e.g. a burst profile) should not lower below its base alias.
PROFILE_LIMITS = ("max_input_tokens", "max_output_tokens", "tpm", "rpm", "concurrency")


def _suggest(name: str, known: list[str], section: str) -> str:
    hint = difflib.get_close_matches(name, known, n=1)
    if hint:
        return f"did you mean {hint[0]!r}?"
    if known:
        return f"use one of {', '.join(sorted(known))}, or add {name}: under {section}:"
    return f"add {name}: under {section}:"


# -- references (raw data) ---------------------------------------------------------------


def _names(section: Any) -> list[str] | None:
    """The entry names of a section, or None when the section itself is unusable."""
    if not isinstance(section, dict) or not section:
        return None
    return [k for k in section if isinstance(k, str)]


def _entries(section: Any) -> list[tuple[str, dict[Any, Any]]]:
    if not isinstance(section, dict):
        return []
    return [(k, v) for k, v in section.items() if isinstance(k, str) and isinstance(v, dict)]


def _reference(ctx: Context, path: str, value: Any, known: list[str] | None,
               section: str) -> None:
    if not isinstance(value, str) or known is None:  # a type error, or the section's own error
        return
    if value not in known:
        key = path.rsplit(".", 1)[-1]
        ctx.error(path, f"{key} {show(value)} is not defined under {section}:",
                  _suggest(value, known, section))


def check_references(ctx: Context, data: dict[Any, Any]) -> None:
    """Every name that refers to another entry must exist (raw data; runs before build)."""
    hosts, aliases, models = (_names(data.get(k)) for k in ("hosts", "aliases", "models"))
    proxy = data.get("proxy")
    if isinstance(proxy, dict):
        _reference(ctx, "proxy.host", proxy.get("host"), hosts, "hosts")
    for name, alias in _entries(data.get("aliases")):
        _reference(ctx, f"aliases.{name}.host", alias.get("host"), hosts, "hosts")
        _reference(ctx, f"aliases.{name}.profile_of", alias.get("profile_of"), aliases,
                   "aliases")
    for name, host in _entries(data.get("hosts")):
        vllm = host.get("vllm")
        if isinstance(vllm, dict):
            _reference(ctx, f"hosts.{name}.vllm.model", vllm.get("model"), models, "models")


# -- typed rules -------------------------------------------------------------------------


def check(ctx: Context, inv: Inventory) -> None:
    """Apply every cross-field rule to ``inv`` (whose references all resolve)."""
    _check_proxy(ctx, inv)
    _check_proxy_unit(ctx, inv)
    for host in inv.hosts.values():
        _check_host(ctx, inv, host)
        check_vllm_version(ctx, host)
    _check_unique(ctx, inv)
    for alias in inv.aliases.values():
        _check_alias(ctx, inv, alias)


def _check_proxy(ctx: Context, inv: Inventory) -> None:
    host = inv.hosts.get(inv.proxy.host)
    if host is not None and host.platform == "windows":
        ctx.error("proxy.host", f"the proxy runs under systemd; {host.name!r} is a windows host",
                  "run the proxy on a linux (or local) host")


def _check_proxy_unit(ctx: Context, inv: Inventory) -> None:
    """What the proxy renders into its systemd unit (run as root by systemd): a plain unit
    name and absolute, clean paths (issue 9: a newline in litellm_command rendered a line)."""
    unit = inv.proxy.systemd_unit
    if not UNIT_NAME.fullmatch(unit):
        plain = unit.removesuffix(".service")
        ctx.error("proxy.systemd_unit", f"systemd_unit {show(unit)} is not a plain unit name",
                  f"write systemd_unit: {plain}  (the renderer adds .service)"
                  if UNIT_NAME.fullmatch(plain) else
                  "use letters, digits, '-' and '_', e.g. systemd_unit: litellm")
    for key in ("litellm_command", "config_path", "env_file"):
        value = getattr(inv.proxy, key)
        why = path_problem(value)
        if why:
            ctx.error(f"proxy.{key}", f"{key} {show(value)} cannot go into the systemd unit: {why}",
                      f"write an absolute path, e.g. {key}: {getattr(Proxy, key)}")


def _check_host(ctx: Context, inv: Inventory, host: Host) -> None:
    path = f"hosts.{host.name}"
    if host.platform == "wsl" and not host.wsl_distro:
        ctx.error(f"{path}.wsl_distro", "a wsl host needs wsl_distro",
                  "add wsl_distro: Ubuntu-22.04 (see `wsl -l -q` on the host)")
    _check_remote_fields(ctx, host)
    if host.vllm is None:
        return
    vllm = host.vllm
    vpath = f"{path}.vllm"
    if vllm.image is not None and (":" not in vllm.image.rsplit("/", 1)[-1]
                                   or vllm.image.endswith(":latest")):
        ctx.error(f"{vpath}.image", f"image {vllm.image!r} is not pinned to a version",
                  "name a release tag, e.g. image: vllm/vllm-openai:v0.11.0")
    if not _check_device(ctx, host):
        return
    gpu = host.gpu
    if gpu is None:  # a CPU host (platform: local): no GPU rules apply
        _check_model(ctx, inv, host)
        return
    if vllm.tensor_parallel_size > gpu.count:
        ctx.error(f"{vpath}.tensor_parallel_size",
                  f"tensor_parallel_size {vllm.tensor_parallel_size} needs that many GPUs; "
                  f"the host has {gpu.count}", f"set it to at most {gpu.count}")
    _check_model(ctx, inv, host)
    _check_gpu_features(ctx, host)
    if gpu.reserved_gib >= gpu.vram_gib:
        ctx.error(f"{path}.gpu.reserved_gib",
                  f"reserved_gib {gpu.reserved_gib} leaves nothing of {gpu.vram_gib} GiB",
                  "set it to what nvidia-smi shows in use before vLLM starts")


def _check_remote_fields(ctx: Context, host: Host) -> None:
    """``ssh``, ``vllm.image`` and ``vllm.container_name``: needed wherever docker and SSH are."""
    if host.platform == "local":
        return
    path = f"hosts.{host.name}"
    if host.ssh is None:
        ctx.error(f"{path}.ssh", f"ssh: is empty or missing; a {host.platform} host is "
                  "reached over SSH",
                  "add ssh: {user: ops} (only platform: local hosts go without)")
    if host.vllm is not None:
        for key, example in (("image", "vllm/vllm-openai:v0.11.0"),
                             ("container_name", f"vllm-{host.name}")):
            if getattr(host.vllm, key) is None:
                ctx.error(f"{path}.vllm.{key}", f"{key} is missing; a {host.platform} host "
                          "runs vLLM in docker",
                          f"add {key}: {example} (only platform: local hosts go without)")


def _check_device(ctx: Context, host: Host) -> bool:
    """A vLLM host has exactly one of gpu: and cpu:, and cpu: only on platform: local."""
    path = f"hosts.{host.name}"
    if host.gpu is not None and host.cpu is not None:
        ctx.error(f"{path}.cpu", "a vLLM host has either a gpu: or a cpu: section, not both",
                  "keep gpu: for a GPU host, cpu: for a host served by vLLM's CPU build")
        return False
    if host.gpu is None and host.cpu is None:
        ctx.error(f"{path}.gpu", "a host that runs vLLM needs a gpu: section (or cpu: on "
                  "platform: local)",
                  "add gpu: {name: ..., vram_gib: ..., compute_capability: '8.9'}")
        return False
    if host.cpu is not None and host.platform != "local":
        ctx.error(f"{path}.cpu", f"a cpu: host is served by the local fleet's engine: vllm; "
                  f"platform {host.platform} deploys vLLM's CUDA image, which needs a GPU",
                  "set platform: local, or describe the host's GPU under gpu:")
        return False
    return True


def _check_model(ctx: Context, inv: Inventory, host: Host) -> None:
    assert host.vllm is not None
    vllm, vpath = host.vllm, f"hosts.{host.name}.vllm"
    model = inv.models.get(vllm.model)
    if model is not None:
        if vllm.max_model_len > model.max_position_embeddings:
            ctx.error(f"{vpath}.max_model_len",
                      f"max_model_len {vllm.max_model_len} is above {model.name}'s "
                      f"max_position_embeddings {model.max_position_embeddings}",
                      f"lower max_model_len to at most {model.max_position_embeddings}")
        fmt = weight_format(vllm.quantization)
        if fmt not in model.weights_gib:
            ctx.error(f"{vpath}.quantization",
                      f"models.{model.name}.weights_gib has no {fmt!r} entry for quantization "
                      f"{vllm.quantization!r}",
                      f"add weights_gib.{fmt}: <GiB> or use one of "
                      + ", ".join(sorted(model.weights_gib)))


def _check_gpu_features(ctx: Context, host: Host) -> None:
    assert host.vllm is not None and host.gpu is not None
    vllm, gpu, cap = host.vllm, host.gpu, host.gpu.capability
    vpath = f"hosts.{host.name}.vllm"
    if vllm.quantization is not None:
        need = QUANT_MIN_CAPABILITY[vllm.quantization]
        if cap < need:
            base = weight_format(vllm.quantization)
            fix = (f"use quantization: {base} (same checkpoint, kernels for "
                   f"{QUANT_MIN_CAPABILITY[base][0]}.{QUANT_MIN_CAPABILITY[base][1]}+)"
                   if base in QUANT_MIN_CAPABILITY and cap >= QUANT_MIN_CAPABILITY[base]
                   else f"use a GPU with compute capability {need[0]}.{need[1]} or newer")
            ctx.error(f"{vpath}.quantization",
                      f"quantization {vllm.quantization} needs compute capability "
                      f"{need[0]}.{need[1]}; {gpu.name} has {gpu.compute_capability}", fix)
    if vllm.kv_cache_dtype in ("fp8", "fp8_e4m3") and cap < FP8_E4M3_MIN_CAPABILITY:
        ctx.warning(f"{vpath}.kv_cache_dtype",
                    f"kv_cache_dtype {vllm.kv_cache_dtype} (fp8_e4m3) needs compute capability "
                    f"8.9 in vLLM's V1 kernels; {gpu.name} has {gpu.compute_capability}",
                    "use kv_cache_dtype: fp8_e5m2 on this GPU (or auto)")


def _check_unique(ctx: Context, inv: Inventory) -> None:
    seen: dict[str, str] = {}
    for alias in inv.aliases.values():
        for i, name in enumerate(alias.names):
            where = f"aliases.{alias.name}" if i == 0 else f"aliases.{alias.name}.also[{i - 1}]"
            if not re.fullmatch(r"\S+", name):
                ctx.error(where, f"model name {show(name)} is empty or has spaces",
                          "use a name without spaces (clients send it as the model name)")
            elif name in seen:
                ctx.error(where, f"model name {name!r} is used twice (also at {seen[name]})",
                          "rename one: every alias name and also: name must be unique at the proxy")
            else:
                seen[name] = where
    ports = Counter((h.address, h.vllm.port) for h in inv.vllm_hosts.values() if h.vllm)
    for host in inv.vllm_hosts.values():
        assert host.vllm is not None
        key = (host.address, host.vllm.port)
        if ports[key] > 1:
            ctx.error(f"hosts.{host.name}.vllm.port",
                      f"{host.address}:{host.vllm.port} is used by more than one vLLM host",
                      "give each vLLM server its own address or port")
    proxy_host = inv.hosts.get(inv.proxy.host)
    if proxy_host is not None and (proxy_host.address, inv.proxy.port) in ports:
        ctx.error("proxy.port", f"port {inv.proxy.port} on {proxy_host.address} is also a vLLM "
                  "port", "choose another proxy port, e.g. port: 4000")


def _check_alias(ctx: Context, inv: Inventory, alias: Alias) -> None:
    path = f"aliases.{alias.name}"
    host = inv.hosts.get(alias.host)
    if host is None:  # reported by check_references
        return
    if host.vllm is None:
        ctx.error(f"{path}.host", f"host {alias.host!r} does not run vLLM (no vllm: section)",
                  "point the alias at a host with a vllm: section: "
                  + (", ".join(sorted(inv.vllm_hosts)) or "(none yet)"))
        return
    if alias.profile_of is not None:
        _check_profile(ctx, inv, alias)
    mml = host.vllm.max_model_len
    total = alias.max_input_tokens + alias.max_output_tokens
    if total > mml:
        room = mml - alias.max_output_tokens
        ctx.error(f"{path}.max_input_tokens",
                  f"max_input_tokens {alias.max_input_tokens} + max_output_tokens "
                  f"{alias.max_output_tokens} = {total} exceeds {alias.host}'s max_model_len {mml}",
                  (f"lower max_input_tokens to at most {room}" if room > 0
                   else f"lower max_output_tokens below {mml}")
                  + f", or raise hosts.{alias.host}.vllm.max_model_len")
    share = alias.max_input_tokens / mml
    if not INPUT_SHARE[0] <= share <= INPUT_SHARE[1]:
        ctx.warning(f"{path}.max_input_tokens",
                    f"max_input_tokens {alias.max_input_tokens} is {share:.0%} of "
                    f"{alias.host}'s max_model_len {mml}; the rule of thumb is 80-95 %",
                    f"use {int(mml * 0.85)}-{int(mml * 0.9)} (85-90 %) unless you mean it")
    if alias.concurrency > host.vllm.max_num_seqs:
        ctx.warning(f"{path}.concurrency",
                    f"concurrency {alias.concurrency} is above {alias.host}'s max_num_seqs "
                    f"{host.vllm.max_num_seqs}: the extra requests wait in vLLM's queue",
                    f"set concurrency: {host.vllm.max_num_seqs} and count the rest in "
                    "queue_depth")


def _check_profile(ctx: Context, inv: Inventory, alias: Alias) -> None:
    path = f"aliases.{alias.name}.profile_of"
    assert alias.profile_of is not None
    base = inv.aliases.get(alias.profile_of)
    if base is None:  # reported by check_references
        return
    if base is alias:
        ctx.error(path, f"alias {alias.name!r} is a profile of itself",
                  "name the alias this one is a variant of, or remove profile_of")
        return
    if base.host != alias.host:
        ctx.error(path, f"a profile must use its base's host ({base.host!r}), not {alias.host!r}",
                  f"set host: {base.host}")
    weaker = [f"{key} {getattr(alias, key)} < {getattr(base, key)}" for key in PROFILE_LIMITS
              if getattr(alias, key) < getattr(base, key)]
    if weaker:
        ctx.warning(path, f"profile {alias.name!r} is weaker than its base {base.name!r}: "
                    + ", ".join(weaker),
                    "a burst profile should allow at least what its base does; raise those "
                    "limits (or drop profile_of if it is not a burst profile)")

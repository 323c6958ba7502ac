"""The fleet inventory: load ``configs/fleet.yaml`` into typed objects and validate it.

:func:`load` parses the file, builds the dataclasses below (every key typed and
range-checked, unknown keys rejected with a did-you-mean) and then applies the
cross-field rules in :mod:`vllmfleet.rules`. It raises
:class:`~vllmfleet.errors.InventoryError` listing every error with file, line, field path
and fix; warnings are kept on :attr:`Inventory.warnings`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vllmfleet.errors import InventoryError, Problem
from vllmfleet.schema import Context, Lines, build, spec

Platform = Literal["linux", "wsl", "windows", "local"]
KVCacheDtype = Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]
Quantization = Literal["awq", "awq_marlin", "gptq", "gptq_marlin", "fp8"]
_NAME = r"[a-z0-9][a-z0-9._-]*"
_NAME_HELP = "use lower-case letters, digits, '.', '_' and '-'"


@dataclass(frozen=True, kw_only=True)
class SSH:
    """How to reach a host over SSH."""

    user: str = spec(help="the login user on the host, e.g. user: ops")
    port: int = spec(default=22, ge=1, le=65535, help="a TCP port between 1 and 65535")
    key_file: str | None = spec(default=None, help="path to a private key, or leave it out")


@dataclass(frozen=True, kw_only=True)
class GPU:
    """The GPU a vLLM host serves from (one card; tensor_parallel_size counts cards)."""

    name: str
    vram_gib: float = spec(gt=0, le=1024, help="the card's memory in GiB, e.g. 12")
    compute_capability: str = spec(pattern=r"\d+\.\d", help="major.minor, e.g. '8.9' (quote it)")
    reserved_gib: float = spec(default=0.0, ge=0, help="GiB the desktop/driver keeps, e.g. 0.8")
    count: int = spec(default=1, ge=1, le=16, help="number of identical cards")

    @property
    def capability(self) -> tuple[int, int]:
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)


@dataclass(frozen=True, kw_only=True)
class VLLM:
    """How vLLM runs on a host: the image and every engine flag we render."""

    image: str = spec(pattern=r"[^\s:]+(:[^\s:]+)?(@sha256:[0-9a-f]{64})?",
                      help="a pinned image, e.g. vllm/vllm-openai:v0.11.0")
    model: str = spec(help="a key of the models: catalogue, e.g. llama-3.1-8b-instruct")
    weights: str = spec(help="the Hugging Face repo vLLM loads, e.g. org/Model-AWQ")
    served_model_name: str = spec(pattern=_NAME, help=_NAME_HELP)
    port: int = spec(default=8000, ge=1, le=65535, help="a TCP port between 1 and 65535")
    container_name: str = spec(pattern=r"[a-zA-Z0-9][a-zA-Z0-9_.-]*",
                               help="a docker container name: letters, digits, '_', '.', '-'")
    max_model_len: int = spec(ge=256, help="tokens per request (prompt + output), e.g. 16384")
    max_num_seqs: int = spec(ge=1, le=1024, help="requests vLLM runs at once, e.g. 2")
    max_num_batched_tokens: int | None = spec(
        default=None, ge=16, help="tokens per scheduler step; leave it out for vLLM's default")
    gpu_memory_utilization: float = spec(gt=0, le=1, help="a fraction in (0, 1], e.g. 0.90")
    kv_cache_dtype: KVCacheDtype = "auto"
    quantization: Quantization | None = None
    tensor_parallel_size: int = spec(default=1, ge=1, le=16, help="number of GPUs, usually 1")
    enforce_eager: bool = False
    restart_policy: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    hf_cache: str = spec(default="~/.cache/huggingface",
                         help="host folder mounted as the container's Hugging Face cache")
    start_timeout_s: int = spec(default=900, ge=10, le=7200,
                                help="seconds to wait for /health after a restart")
    extra_args: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Host:
    """One machine of the fleet: a vLLM host, the proxy host, or both."""

    name: str
    address: str = spec(help="hostname or IP address the fleet reaches it at")
    platform: Platform
    ssh: SSH
    wsl_distro: str | None = spec(default=None, help="the WSL distribution, e.g. Ubuntu-22.04")
    workdir: str | None = spec(default=None,
                               help="where rendered files live on the host, e.g. /opt/vllmfleet")
    gpu: GPU | None = None
    vllm: VLLM | None = None

    @property
    def base_dir(self) -> str:
        if self.workdir:
            return self.workdir
        return "C:/vllmfleet" if self.platform == "windows" else "/opt/vllmfleet"


@dataclass(frozen=True, kw_only=True)
class Proxy:
    """The LiteLLM proxy: where it runs and how it is managed."""

    host: str = spec(help="a key of hosts: that runs LiteLLM, e.g. motoko")
    port: int = spec(default=4000, ge=1, le=65535, help="a TCP port between 1 and 65535")
    config_path: str = "/etc/litellm/config.yaml"
    env_file: str = "/etc/litellm/litellm.env"
    systemd_unit: str = "litellm"
    litellm_command: str = "/opt/litellm/venv/bin/litellm"
    master_key_env: str = spec(default="LITELLM_MASTER_KEY", pattern=r"[A-Z_][A-Z0-9_]*",
                               help="the NAME of an environment variable, never the key itself")
    request_timeout_s: int = spec(default=240, ge=1, lt=300,
                                  help="seconds; keep it below 300 (the proxy's own limit)")
    num_retries: int = spec(default=0, ge=0, le=5, help="0 to 5 retries per request")
    start_timeout_s: int = spec(default=120, ge=5, le=1800, help="seconds to wait for readiness")


@dataclass(frozen=True, kw_only=True)
class Alias:
    """A model name clients use at the proxy, with the limits the proxy enforces."""

    name: str
    host: str = spec(help="a key of hosts: that serves this alias")
    also: list[str] = field(default_factory=list)
    profile_of: str | None = spec(default=None,
                                  help="the alias this is a profile of (e.g. a burst profile)")
    max_input_tokens: int = spec(ge=1, help="a positive token count")
    max_output_tokens: int = spec(ge=1, help="a positive token count")
    tpm: int = spec(ge=1, help="tokens per minute, a positive integer")
    rpm: int = spec(ge=1, help="requests per minute, a positive integer")
    concurrency: int = spec(ge=1, help="requests the backend runs at once (vLLM max_num_seqs)")
    queue_depth: int = spec(default=0, ge=0, help="requests allowed to wait at the backend")
    on_max_output: Literal["reject", "clamp"] = "reject"

    @property
    def names(self) -> list[str]:
        return [self.name, *self.also]

    @property
    def max_parallel(self) -> int:
        """The proxy's in-flight cap: running at the backend plus allowed waiting."""
        return self.concurrency + self.queue_depth


@dataclass(frozen=True, kw_only=True)
class Model:
    """Architecture facts the capacity planner needs (from the model's config.json)."""

    name: str
    hf_id: str
    layers: int = spec(ge=1, help="num_hidden_layers from config.json")
    kv_heads: int = spec(ge=1, help="num_key_value_heads from config.json")
    head_dim: int = spec(ge=1, help="hidden_size / num_attention_heads")
    hidden_size: int = spec(ge=1, help="hidden_size from config.json")
    intermediate_size: int = spec(ge=1, help="intermediate_size from config.json")
    vocab_size: int = spec(ge=1, help="vocab_size from config.json")
    max_position_embeddings: int = spec(ge=1, help="max_position_embeddings from config.json")
    weights_gib: dict[str, float] = spec(
        gt=0, help="GiB of weights per format, e.g. {bf16: 14.96, awq: 5.34}")


@dataclass(frozen=True, kw_only=True)
class Inventory:
    """The whole fleet, validated."""

    path: Path
    digest: str
    hosts: dict[str, Host]
    proxy: Proxy
    aliases: dict[str, Alias]
    models: dict[str, Model]
    warnings: list[Problem] = field(default_factory=list)

    @property
    def vllm_hosts(self) -> dict[str, Host]:
        return {name: h for name, h in self.hosts.items() if h.vllm is not None}

    def model_of(self, host: Host) -> Model:
        assert host.vllm is not None
        return self.models[host.vllm.model]

    def aliases_of(self, host: str) -> list[Alias]:
        return [a for a in self.aliases.values() if a.host == host]


_TOP = {"hosts", "proxy", "aliases", "models"}


def _named(ctx: Context, section: str, data: Any, cls: type[Any]) -> dict[str, Any]:
    if not isinstance(data, dict) or not data:
        ctx.error(section, f"{section}: must be a non-empty mapping of names to entries")
        return {}
    out = {}
    for key, value in data.items():
        obj = build(ctx, f"{section}.{key}", value, cls, name=str(key))
        if obj is not None:
            out[str(key)] = obj
    return out


def parse(text: str, *, file: str = "<inventory>") -> Inventory:
    """Parse and validate inventory ``text``; ``file`` is used in messages only."""
    from vllmfleet.rules import check  # the rules import this module's types

    ctx = Context(file=file, lines=Lines(text))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise InventoryError([Problem(severity="error", path="", file=file, line=line,
                                      message=f"not valid YAML: {reason}",
                                      fix="check indentation and quoting near that line")]) from None
    if not isinstance(data, dict):
        raise InventoryError([Problem(severity="error", path="", file=file, line=1,
                                      message="the inventory must be a mapping with keys "
                                              + ", ".join(sorted(_TOP)))])
    for key in data:
        if key not in _TOP:
            import difflib
            hint = difflib.get_close_matches(str(key), sorted(_TOP), n=1)
            ctx.error(str(key), f"unknown key {key!r}",
                      f"did you mean {hint[0]!r}?" if hint else "known: " + ", ".join(sorted(_TOP)))
    hosts = _named(ctx, "hosts", data.get("hosts"), Host)
    aliases = _named(ctx, "aliases", data.get("aliases"), Alias)
    models = _named(ctx, "models", data.get("models"), Model)
    proxy = build(ctx, "proxy", data.get("proxy"), Proxy) if "proxy" in data else None
    if proxy is None and "proxy" not in data:
        ctx.error("proxy", "the inventory has no proxy: section",
                  "add proxy: {host: <a host name>} naming the host that runs LiteLLM")
    if any(p.severity == "error" for p in ctx.problems) or proxy is None:
        raise InventoryError(ctx.problems)
    inventory = Inventory(path=Path(file), digest=hashlib.sha256(text.encode()).hexdigest(),
                          hosts=hosts, proxy=proxy, aliases=aliases, models=models)
    check(ctx, inventory)
    if any(p.severity == "error" for p in ctx.problems):
        raise InventoryError(ctx.problems)
    inventory.warnings.extend(ctx.problems)
    return inventory


def load(path: str | Path) -> Inventory:
    """Load and validate the inventory file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError([Problem(
            severity="error", path="", file=str(p), message="inventory file not found",
            fix="pass --inventory PATH or set vllmfleet.inventory in invoke.yaml "
                "(INVOKE_VLLMFLEET_INVENTORY)")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError([Problem(severity="error", path="", file=str(p),
                                      message=f"cannot read the inventory: {exc}")]) from None
    return parse(text, file=str(p))

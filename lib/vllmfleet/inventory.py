"""The fleet inventory: load ``configs/fleet.yaml`` into typed objects and validate it.

:func:`load` reads the file (:func:`vllmfleet.yamldoc.read_yaml`: duplicate and non-string
keys are errors), builds the dataclasses below (every key typed and range-checked,
unknown keys rejected with a did-you-mean), checks that every name refers to an entry
that exists, and then applies the cross-field rules in :mod:`vllmfleet.rules`. It raises
:class:`~vllmfleet.errors.InventoryError` listing every problem with file, line, field
path and fix; warnings of a usable inventory are kept on :attr:`Inventory.warnings`.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vllmfleet.errors import InventoryError, Problem
from vllmfleet.schema import Context, build, meta, show, spec
from vllmfleet.yamldoc import read_yaml

Platform = Literal["linux", "wsl", "windows", "local"]
KVCacheDtype = Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]
Quantization = Literal["awq", "awq_marlin", "gptq", "gptq_marlin", "fp8"]
_NAME = r"[a-z0-9][a-z0-9._-]*"
_NAME_HELP = "a name of lower-case letters, digits, '.', '_' and '-'"
_PORT_HELP = "a TCP port between 1 and 65535"


@dataclass(frozen=True, kw_only=True)
class SSH:
    """How to reach a host over SSH."""

    user: str = spec(help="the login user on the host", example="ops")
    port: int = spec(default=22, ge=1, le=65535, help=_PORT_HELP, example="22")
    key_file: str | None = spec(default=None, help="the path of a private key, or leave it out",
                                example="~/.ssh/id_ed25519")


@dataclass(frozen=True, kw_only=True)
class GPU:
    """The GPU a vLLM host serves from (one card; tensor_parallel_size counts cards)."""

    name: str = spec(help="the card's name as nvidia-smi shows it",
                     example="NVIDIA GeForce RTX 4070")
    vram_gib: float = spec(gt=0, le=1024, help="the card's memory in GiB", example="12")
    compute_capability: str = spec(pattern=r"\d+\.\d", help="major.minor, quoted",
                                   example="'8.9'")
    reserved_gib: float = spec(default=0.0, ge=0,
                               help="the GiB in use before vLLM starts (nvidia-smi)",
                               example="0.8")
    count: int = spec(default=1, ge=1, le=16, help="the number of identical cards (1-16)",
                      example="1")

    @property
    def capability(self) -> tuple[int, int]:
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)


@dataclass(frozen=True, kw_only=True)
class VLLM:
    """How vLLM runs on a host: the image and every engine flag we render."""

    image: str = spec(pattern=r"[^\s:]+(:[^\s:]+)?(@sha256:[0-9a-f]{64})?",
                      help="a vLLM image pinned to a release", example="vllm/vllm-openai:v0.11.0")
    model: str = spec(help="a key of the models: catalogue", example="llama-3.1-8b-instruct")
    weights: str = spec(help="the Hugging Face repo vLLM loads",
                        example="hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4")
    served_model_name: str = spec(pattern=_NAME, help=_NAME_HELP,
                                  example="llama31-8b-wintermute")
    port: int = spec(default=8000, ge=1, le=65535, help=_PORT_HELP, example="8000")
    container_name: str = spec(pattern=r"[a-zA-Z0-9][a-zA-Z0-9_.-]*",
                               help="a docker container name: letters, digits, '_', '.', '-'",
                               example="vllm-wintermute")
    max_model_len: int = spec(ge=256, help="tokens per request, prompt + output (at least 256)",
                              example="16384")
    max_num_seqs: int = spec(ge=1, le=1024, help="the requests vLLM runs at once (1-1024)",
                             example="2")
    max_num_batched_tokens: int | None = spec(
        default=None, ge=16, help="tokens per scheduler step (at least 16), or leave it out")
    gpu_memory_utilization: float = spec(gt=0, le=1, help="a fraction in (0, 1]",
                                         example="0.90")
    kv_cache_dtype: KVCacheDtype = "auto"
    quantization: Quantization | None = None
    tensor_parallel_size: int = spec(default=1, ge=1, le=16,
                                     help="the number of GPUs (1-16), usually 1", example="1")
    enforce_eager: bool = False
    restart_policy: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    hf_cache: str = spec(default="~/.cache/huggingface",
                         help="the host folder mounted as the container's Hugging Face cache")
    start_timeout_s: int = spec(default=900, ge=10, le=7200,
                                help="seconds to wait for /health after a restart (10-7200)",
                                example="900")
    extra_args: list[str] = field(default_factory=list, metadata=meta(
        help="more vLLM flags, one string each", example="[--enable-prefix-caching]"))


@dataclass(frozen=True, kw_only=True)
class Host:
    """One machine of the fleet: a vLLM host, the proxy host, or both."""

    name: str
    address: str = spec(help="the hostname or IP address the fleet reaches it at",
                        example="wintermute.lan")
    platform: Platform
    ssh: SSH = field(metadata=meta(help="how to reach the host over SSH",
                                   example="{user: ops, port: 22}"))
    wsl_distro: str | None = spec(default=None, help="the WSL distribution",
                                  example="Ubuntu-22.04")
    workdir: str | None = spec(default=None, help="where rendered files live on the host",
                               example="/opt/vllmfleet")
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

    host: str = spec(help="the key of hosts: that runs LiteLLM", example="motoko")
    port: int = spec(default=4000, ge=1, le=65535, help=_PORT_HELP, example="4000")
    config_path: str = "/etc/litellm/config.yaml"
    env_file: str = "/etc/litellm/litellm.env"
    systemd_unit: str = "litellm"
    litellm_command: str = "/opt/litellm/venv/bin/litellm"
    master_key_env: str = spec(default="LITELLM_MASTER_KEY", pattern=r"[A-Z_][A-Z0-9_]*",
                               help="the NAME of an environment variable, never the key itself",
                               example="LITELLM_MASTER_KEY")
    request_timeout_s: int = spec(default=240, ge=1, lt=300,
                                  help="seconds, below the proxy's own 300", example="240")
    num_retries: int = spec(default=0, ge=0, le=5, help="0 to 5 retries per request",
                            example="0")
    start_timeout_s: int = spec(default=120, ge=5, le=1800,
                                help="seconds to wait for readiness (5-1800)", example="120")


@dataclass(frozen=True, kw_only=True)
class Alias:
    """A model name clients use at the proxy, with the limits the proxy enforces."""

    name: str
    host: str = spec(help="the key of hosts: that serves this alias", example="wintermute")
    also: list[str] = field(default_factory=list, metadata=meta(
        help="more names clients may use", example="[local/reasoner]"))
    profile_of: str | None = spec(default=None,
                                  help="the alias this is a profile of (e.g. a burst profile)")
    max_input_tokens: int = spec(ge=1, help="a positive token count, 80-95 % of the host's "
                                 "max_model_len", example="14000")
    max_output_tokens: int = spec(ge=1, help="a positive token count", example="1024")
    tpm: int = spec(ge=1, help="tokens per minute, a positive integer", example="120000")
    rpm: int = spec(ge=1, help="requests per minute, a positive integer", example="60")
    concurrency: int = spec(ge=1, help="the requests the backend runs at once (its max_num_seqs)",
                            example="2")
    queue_depth: int = spec(default=0, ge=0, help="the requests allowed to wait at the backend",
                            example="4")
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
    hf_id: str = spec(help="the model's Hugging Face repo",
                      example="meta-llama/Llama-3.1-8B-Instruct")
    layers: int = spec(ge=1, help="num_hidden_layers from config.json", example="32")
    kv_heads: int = spec(ge=1, help="num_key_value_heads from config.json", example="8")
    head_dim: int = spec(ge=1, help="hidden_size / num_attention_heads", example="128")
    hidden_size: int = spec(ge=1, help="hidden_size from config.json", example="4096")
    intermediate_size: int = spec(ge=1, help="intermediate_size from config.json",
                                  example="14336")
    vocab_size: int = spec(ge=1, help="vocab_size from config.json", example="128256")
    max_position_embeddings: int = spec(ge=1, help="max_position_embeddings from config.json",
                                        example="131072")
    weights_gib: dict[str, float] = field(metadata=meta(
        gt=0, help="GiB of weights per format (bf16, awq, gptq, fp8)",
        example="{bf16: 14.99, awq: 5.37}"))


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


@dataclass(frozen=True)
class _Section:
    """A top-level mapping of named entries, and what its names may look like."""

    cls: type[Any]
    entry: str
    name_pattern: str
    name_help: str
    example: str


_SECTIONS = {
    "hosts": _Section(Host, "host", r"[A-Za-z0-9][A-Za-z0-9_-]*",
                      "use letters, digits, '-' and '_' (the name becomes task names such as "
                      "deploy.<host> and backup folders)",
                      "motoko: {address: motoko.lan, platform: linux, ssh: {user: ops}}"),
    "aliases": _Section(Alias, "alias", r"\S+",
                        "use a name without spaces (clients send it as the model name)",
                        "llama31-8b-wintermute: {host: wintermute, max_input_tokens: 14000, …}"),
    "models": _Section(Model, "model", r"\S+", "use a name without spaces",
                       "llama-3.1-8b-instruct: {hf_id: meta-llama/Llama-3.1-8B-Instruct, …}"),
}
_TOP = ("hosts", "proxy", "aliases", "models")


def _named(ctx: Context, key: str, data: Any) -> dict[str, Any]:
    section = _SECTIONS[key]
    fix = f"add at least one {section.entry} under {key}:, e.g. {section.example}"
    if data is None or data == {}:
        ctx.error(key, f"{key}: is empty", fix)
        return {}
    if not isinstance(data, dict):
        ctx.error(key, f"{key} must be a mapping of {section.entry} names to entries, not "
                  f"{ctx.describe(key, data)}", fix)
        return {}
    out = {}
    for name, value in data.items():
        if not isinstance(name, str):  # read_yaml reported it
            continue
        path = f"{key}.{name}"
        if not re.fullmatch(section.name_pattern, name):
            ctx.error(path, f"{section.entry} name {show(name)} cannot be used", section.name_help)
            continue
        obj = build(ctx, path, value, section.cls, label=name, name=name)
        if obj is not None:
            out[name] = obj
    return out


def _fail(file: str, message: str, fix: str, *, line: int | None = 1) -> InventoryError:
    return InventoryError([Problem(severity="error", path="", file=file, line=line,
                                   message=message, fix=fix)])


def parse(text: str, *, file: str = "<inventory>") -> Inventory:
    """Parse and validate inventory ``text``; ``file`` is used in messages only.

    Raises :class:`InventoryError` (and nothing else) for any text a user can write.
    """
    from vllmfleet.rules import check, check_references  # the rules import this module

    doc = read_yaml(text, file=file)
    data = doc.data
    start = "start from the shipped configs/fleet.yaml"
    if data is None:
        raise _fail(file, "the inventory is empty", f"{start}: it needs "
                    + ", ".join(f"{k}:" for k in _TOP))
    ctx = Context(file=file, lines=doc.lines)
    ctx.problems.extend(doc.problems)
    if not isinstance(data, dict):
        raise _fail(file, "the inventory must be a mapping with the keys "
                    + ", ".join(_TOP) + f"; this file holds {ctx.describe('', data)}", start)
    for key in data:
        if isinstance(key, str) and key not in _TOP:
            hint = difflib.get_close_matches(key, _TOP, n=1)
            ctx.error(key, f"unknown top-level key {key!r}",
                      f"did you mean {hint[0]!r}?" if hint
                      else "remove it; the inventory's keys are " + ", ".join(_TOP))
    for key in _TOP:
        if key not in data and key != "proxy":
            ctx.error(key, f"the inventory has no {key}: section",
                      f"add {key}: with at least one {_SECTIONS[key].entry}, "
                      f"e.g. {_SECTIONS[key].example}")
    hosts, aliases, models = (_named(ctx, key, data[key]) if key in data else {}
                              for key in ("hosts", "aliases", "models"))
    proxy: Proxy | None = None
    if "proxy" in data:
        proxy = build(ctx, "proxy", data["proxy"], Proxy)
    else:
        ctx.error("proxy", "the inventory has no proxy: section",
                  "add proxy: {host: <the key of hosts: that runs LiteLLM>}, "
                  "e.g. proxy: {host: motoko, port: 4000}")
    check_references(ctx, data)
    if ctx.failed or proxy is None:
        raise InventoryError(ctx.problems)
    inventory = Inventory(path=Path(file),
                          digest=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
                          hosts=hosts, proxy=proxy, aliases=aliases, models=models)
    check(ctx, inventory)
    if ctx.failed:
        raise InventoryError(ctx.problems)
    inventory.warnings.extend(ctx.problems)
    return inventory


def load(path: str | Path) -> Inventory:
    """Load and validate the inventory file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(str(p), "inventory file not found",
                    "pass --inventory PATH or set vllmfleet.inventory in invoke.yaml "
                    "(INVOKE_VLLMFLEET_INVENTORY)", line=None) from None
    except IsADirectoryError:
        raise _fail(str(p), "this is a folder, not an inventory file",
                    "name the YAML file itself, e.g. configs/fleet.yaml", line=None) from None
    except UnicodeDecodeError as exc:
        raise _fail(str(p), f"the inventory is not UTF-8 text (byte {exc.start}: {exc.reason})",
                    "save it as UTF-8; is this the right file?", line=None) from None
    except OSError as exc:
        raise _fail(str(p), f"cannot read the inventory: {exc.strerror or exc}",
                    "check the path and its permissions", line=None) from None
    return parse(text, file=str(p))

"""Is the fleet healthy? HTTP probes of vLLM and the proxy, GPU memory over SSH, and the
health wait a deploy uses after a restart.

vLLM: ``GET /health`` answers 200, and ``/v1/models`` lists the served name with the
expected ``max_model_len`` (:func:`serving_problems`, the one such check: the smoke test,
the rollback check and the plugin's context suite use it too). The proxy:
``/health/liveliness`` and ``/health/readiness`` (no key needed), ``/v1/models`` lists every
alias, and every alias answers a one-token chat (master key). GPU memory:
``nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits`` through
the host adapter; a host without nvidia-smi gets "n/a", which is not a failure. HTTP goes
straight to the hosts (proxy environment variables are ignored) with short timeouts.

:func:`wait_healthy` polls (tenacity) until the service answers, and gives up early when
the adapter reports the container/unit dead (a vLLM that exits at start is not waited for
until the timeout).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
)

from vllmfleet.client import error_message, retry_after_seconds
from vllmfleet.errors import DeployError, FleetError
from vllmfleet.inventory import Endpoints, Inventory
from vllmfleet.remote import HostAdapter, ServiceName
from vllmfleet.tables import table

HTTP_TIMEOUT_S = 5.0
TOKEN_TIMEOUT_S = 60.0
WAIT_SAY_EVERY_S = 15.0  # how often a long health wait says what it waits for
GPU_QUERY = "nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits"
# states in which a restarted service is not coming up by itself
DEAD_STATES = frozenset({"exited", "dead", "missing", "restarting", "failed", "stopped",
                         "inactive", "removing"})
PING = [{"role": "user", "content": "Say OK."}]


@dataclass(frozen=True, kw_only=True)
class Expect:
    """What one service must show once restarted, and how long it may take to start."""

    service: ServiceName
    url: str  # the server root, e.g. http://wintermute.lan:8000
    timeout_s: float
    served_model_name: str | None = None  # vllm
    max_model_len: int | None = None  # vllm
    models: tuple[str, ...] = ()  # proxy: every name clients may send



@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the health table; ``ok=None`` means not applicable (n/a)."""

    host: str
    what: str
    ok: bool | None
    detail: str = ""


def http_client(timeout_s: float = HTTP_TIMEOUT_S) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout_s, connect=3.0), trust_env=False)


def _get(client: httpx.Client, url: str, key: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return 0, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return response.status_code, response.text


def _ms(start: float) -> str:
    return f"{(time.monotonic() - start) * 1000:.0f} ms"


# --- vLLM -----------------------------------------------------------------------------------

NOT_A_MODEL_LIST = "not a model list"


def served_lengths(models_json: Any) -> dict[str, Any] | None:
    """A ``/v1/models`` answer (the parsed body, or its ``data`` list) as served name →
    ``max_model_len``; None when it is not a model list."""
    try:
        data = models_json["data"] if isinstance(models_json, dict) else models_json
        return {str(m["id"]): m.get("max_model_len") for m in data}
    except (KeyError, TypeError, AttributeError):
        return None


def serving_problems(lengths: Mapping[str, Any] | None, *, served: str, max_model_len: int,
                     absent: str = "serves {listed}, not {served}",
                     wrong: str | None = "{served}: max_model_len {got}, expected {expected}",
                     nothing: str = "nothing") -> list[str]:
    """Does vLLM serve what the inventory says? ``[]`` when ``lengths`` (from
    :func:`served_lengths`) lists ``served`` with ``max_model_len``, else the one problem.

    The wording is the caller's: ``absent`` (fields ``listed``, ``served``; ``listed`` is
    ``nothing`` when no model is served) and ``wrong`` (fields ``served``, ``got``,
    ``expected``; None: the length is not checked).
    """
    if lengths is None:
        return [NOT_A_MODEL_LIST]
    if served not in lengths:
        return [absent.format(listed=", ".join(lengths) or nothing, served=served)]
    got = lengths[served]
    # max_model_len -1: started with --max-model-len auto, vLLM picks the length
    if wrong is not None and got != max_model_len and max_model_len != -1:
        return [wrong.format(served=served, got=got, expected=max_model_len)]
    return []


def vllm_checks(host: str, url: str, *, served: str, max_model_len: int,
                client: httpx.Client, probe_health: bool = True,
                backend_key: str | None = None) -> list[Check]:
    """/health is 200; /v1/models lists ``served`` with ``max_model_len``.

    ``backend_key``: the server's ``--api-key`` (vLLM guards /v1 with it; /health is open).
    """
    out = []
    if probe_health:
        start = time.monotonic()
        code, body = _get(client, f"{url}/health")
        out.append(Check(host=host, what="vllm /health", ok=code == 200,
                         detail=f"200 in {_ms(start)}" if code == 200
                         else f"{code or 'no answer'} {body[:120]}".strip()))
    code, body = _get(client, f"{url}/v1/models", backend_key)
    what = "vllm /v1/models"
    if code == 401:
        out.append(Check(host=host, what=what, ok=False,
                         detail="HTTP 401: the server wants its API key; set the variable the "
                                "inventory's proxy.backend_key_env names"))
        return out
    if code != 200:
        out.append(Check(host=host, what=what, ok=False,
                         detail=f"HTTP {code or 'no answer'}: {body[:120]}"))
        return out
    try:
        lengths = served_lengths(json.loads(body))
    except ValueError:
        lengths = None
    if lengths is None:
        out.append(Check(host=host, what=what, ok=False,
                         detail=f"{NOT_A_MODEL_LIST}: {body[:80]}"))
        return out
    problems = serving_problems(lengths, served=served, max_model_len=max_model_len)
    out.append(Check(host=host, what=what, ok=not problems,
                     detail=problems[0] if problems
                     else f"{served}, max_model_len {max_model_len}"))
    return out


_CACHE_INFO = re.compile(r"^vllm:cache_config_info\{(?P<labels>[^}]*)\}", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def running_kv_tokens(metrics_text: str) -> int | None:
    """The running server's KV-cache size in tokens, from ``vllm:cache_config_info``
    (num_gpu_blocks x block_size; vLLM exports every CacheConfig field as a label)."""
    match = _CACHE_INFO.search(metrics_text)
    if match is None:
        return None
    labels = dict(_LABEL.findall(match["labels"]))
    try:
        return int(labels["num_gpu_blocks"]) * int(labels.get("block_size") or 16)
    except (KeyError, ValueError):
        return None


def kv_check(host: str, url: str, *, max_model_len: int, concurrency: int,
             client: httpx.Client) -> Check:
    """Whether the running KV cache holds what the inventory needs: one request of
    max_model_len (else vLLM would not have started: a mismatch), and ``concurrency`` of
    them at once (below that: a warning, requests will queue or be preempted)."""
    what = "vllm kv cache"
    code, body = _get(client, f"{url}/metrics")
    tokens = running_kv_tokens(body) if code == 200 else None
    if tokens is None:
        return Check(host=host, what=what, ok=None,
                     detail="n/a (no vllm:cache_config_info on /metrics)")
    held = tokens / max_model_len
    if tokens < max_model_len:
        return Check(host=host, what=what, ok=False, detail=(
            f"{tokens:,} tokens: less than one request of max_model_len {max_model_len:,}"))
    if held < concurrency:
        return Check(host=host, what=what, ok=True, detail=(
            f"WARNING: {tokens:,} tokens hold {held:.2f} requests of {max_model_len:,}, "
            f"the inventory needs {concurrency} at once; lower max_model_len "
            f"(`inv fit.{host}`) or the aliases' concurrency"))
    return Check(host=host, what=what, ok=True,
                 detail=f"{tokens:,} tokens: {held:.2f} requests of {max_model_len:,}")


# --- the proxy ------------------------------------------------------------------------------

def proxy_checks(host: str, url: str, *, key: str | None, models: Iterable[str],
                 client: httpx.Client, key_hint: str, probe_health: bool = True,
                 probe: Iterable[str] | None = None) -> list[Check]:
    """Liveliness, readiness, every model listed, and one token from each of ``probe``
    (default: every model). Each probe is a request the alias's RPM counts, so the fleet check
    probes one name per alias; a 429 is the limit at work, n/a rather than a failure."""
    out = []
    if probe_health:
        for path in ("/health/liveliness", "/health/readiness"):
            code, body = _get(client, url + path)
            out.append(Check(host=host, what=f"proxy {path}", ok=code == 200,
                             detail="200" if code == 200
                             else f"{code or 'no answer'} {body[:120]}".strip()))
    names = list(models)
    if not key:
        out.append(Check(host=host, what="proxy aliases", ok=False,
                         detail=f"no master key to ask with: {key_hint}"))
        return out
    code, body = _get(client, f"{url}/v1/models", key)
    try:
        listed = {str(m["id"]) for m in json.loads(body)["data"]}
    except (ValueError, KeyError, TypeError):
        listed = set()
    missing = [n for n in names if n not in listed]
    out.append(Check(host=host, what="proxy /v1/models", ok=code == 200 and not missing,
                     detail=(f"lists all {len(names)} aliases" if code == 200 and not missing
                             else f"HTTP {code}: missing {', '.join(missing)}" if code == 200
                             else f"HTTP {code or 'no answer'}: {body[:120]}")))
    for name in names if probe is None else probe:
        out.append(one_token(host, url, name, key=key, client=client))
    return out


def _answered(response: httpx.Response) -> bool:
    """A chat completion with a first choice that holds a message (a 200 with ``choices: []``
    or no JSON is not an answer)."""
    try:
        choices = response.json().get("choices")
    except (ValueError, AttributeError):
        return False
    return (isinstance(choices, list) and bool(choices) and isinstance(choices[0], dict)
            and isinstance(choices[0].get("message"), dict))


def one_token(host: str, url: str, model: str, *, key: str, client: httpx.Client) -> Check:
    start = time.monotonic()
    try:
        response = client.post(f"{url}/v1/chat/completions",
                               headers={"Authorization": f"Bearer {key}"},
                               json={"model": model, "messages": PING, "max_tokens": 1},
                               timeout=TOKEN_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Check(host=host, what=f"alias {model}", ok=False,
                     detail=f"{type(exc).__name__}: {exc}")
    if response.status_code == 200:
        if not _answered(response):
            return Check(host=host, what=f"alias {model}", ok=False,
                         detail=f"HTTP 200 without an answer: {response.text[:120]}")
        return Check(host=host, what=f"alias {model}", ok=True,
                     detail=f"1 token in {_ms(start)}")
    if response.status_code == 429:  # the alias's own limit: it works, it is busy
        wait = retry_after_seconds(response.headers)
        return Check(host=host, what=f"alias {model}", ok=None,
                     detail="rate-limited (HTTP 429" + (f", Retry-After {wait:g} s" if wait
                                                         is not None else "")
                     + "): its limit, not a fault; not probed this time")
    return Check(host=host, what=f"alias {model}", ok=False,
                 detail=f"HTTP {response.status_code}: {error_message(response.text)[:160]}")


# --- GPU memory -----------------------------------------------------------------------------

def gpu_memory(host: str, adapter: HostAdapter) -> Check:
    """GPU memory in use via nvidia-smi over the adapter; n/a where there is none."""
    try:
        result = adapter.run(GPU_QUERY, check=False, timeout=30)
    except FleetError as exc:
        return Check(host=host, what="gpu memory", ok=False, detail=f"ssh: {exc}")
    if not result.ok:
        why = (result.stderr.strip().splitlines() or [f"exit {result.exit_code}"])[-1]
        return Check(host=host, what="gpu memory", ok=None, detail=f"n/a ({why[:100]})")
    parts = []
    for line in result.stdout.strip().splitlines():
        try:
            used, total = (float(x) for x in line.split(","))
        except ValueError:
            return Check(host=host, what="gpu memory", ok=None,
                         detail=f"n/a (unexpected nvidia-smi output {line[:60]!r})")
        parts.append(f"{used:.0f}/{total:.0f} MiB ({used / total:.0%})" if total else line)
    return Check(host=host, what="gpu memory", ok=True if parts else None,
                 detail="; ".join(parts) or "n/a (no GPU listed)")


# --- the whole fleet ------------------------------------------------------------------------

def host_checks(inventory: Inventory, name: str, endpoints: Endpoints,
                adapter: Callable[[str], HostAdapter] | None) -> list[Check]:
    host = inventory.hosts[name]
    out: list[Check] = []
    with http_client() as client:
        if host.vllm is not None and name in endpoints.hosts:
            out += vllm_checks(name, endpoints.hosts[name], served=host.vllm.served_model_name,
                               max_model_len=host.vllm.max_model_len, client=client,
                               backend_key=endpoints.backend_key)
            wanted = sum(a.concurrency for a in inventory.aliases.values() if a.host == name)
            out.append(kv_check(name, endpoints.hosts[name],
                                max_model_len=host.vllm.max_model_len, client=client,
                                concurrency=max(1, min(host.vllm.max_num_seqs, wanted))))
        if inventory.proxy.host == name:
            out += proxy_checks(name, endpoints.proxy, key=endpoints.key, client=client,
                                key_hint=endpoints.key_hint,
                                models=[n for a in inventory.aliases.values() for n in a.names],
                                probe=list(inventory.aliases))
    if host.vllm is not None:
        if adapter is None or host.platform == "local":
            out.append(Check(host=name, what="gpu memory", ok=None, detail="n/a (no SSH)"))
        else:
            try:
                with adapter(name) as conn:
                    out.append(gpu_memory(name, conn))
            except FleetError as exc:
                out.append(Check(host=name, what="gpu memory", ok=False, detail=f"ssh: {exc}"))
    return out


def check_fleet(inventory: Inventory, hosts: Iterable[str], endpoints: Endpoints, *,
                adapter: Callable[[str], HostAdapter] | None) -> list[Check]:
    """Every check of every host in ``hosts`` (hosts in parallel), in inventory order."""
    names = list(hosts)
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        results = list(pool.map(lambda n: host_checks(inventory, n, endpoints, adapter), names))
    return [check for result in results for check in result]


def healthy(checks: Iterable[Check]) -> bool:
    return all(c.ok is not False for c in checks)


def format_table(checks: Iterable[Check]) -> str:
    rows = [(c.host, c.what, "ok" if c.ok else "n/a" if c.ok is None else "FAIL", c.detail)
            for c in checks]
    return "\n".join(table(rows, header=("HOST", "CHECK", "RESULT", "DETAIL")))


# --- after a restart --------------------------------------------------------------------------

def _answers(client: httpx.Client, expect: Expect) -> bool:
    path = "/health" if expect.service == "vllm" else "/health/readiness"
    code, _ = _get(client, expect.url + path)
    return code == 200


def wait_healthy(adapter: HostAdapter, expect: Expect, *, timeout_s: float | None = None,
                 say: Callable[[str], None] | None = None,
                 say_every_s: float = WAIT_SAY_EVERY_S) -> float:
    """Wait until ``expect``'s service answers its health URL; return the seconds it took.

    Raises DeployError when the adapter reports the service dead (exited, failed, …) or
    when ``timeout_s`` (default: the expectation's, i.e. the inventory's) runs out. A long
    wait (vLLM may take many minutes to load a model) tells ``say`` what it is waiting for,
    at most every ``say_every_s`` seconds (tenacity's ``before_sleep``).
    """
    limit = expect.timeout_s if timeout_s is None else timeout_s
    start = time.monotonic()
    path = "/health" if expect.service == "vllm" else "/health/readiness"
    last: dict[str, Any] = {"said": start, "state": "not answering yet"}

    def still_waiting(_state: RetryCallState) -> None:
        now = time.monotonic()
        if say is not None and now - last["said"] >= say_every_s:
            last["said"] = now
            say(f"waiting for {expect.service} at {expect.url}{path}: {now - start:.0f} s "
                f"of {limit:.0f} s ({last['state']})")

    with http_client(timeout_s=3.0) as client:
        def probe() -> bool:
            if _answers(client, expect):
                return True
            status = adapter.status(service=expect.service)
            if status.state in DEAD_STATES:
                raise DeployError(f"the {expect.service} service stopped during start-up "
                                  f"({status.detail or status.state})", host=adapter.host)
            last["state"] = status.detail or status.state
            return False

        retrying = Retrying(stop=stop_after_delay(limit),
                            wait=wait_exponential(multiplier=0.05, max=1.0),
                            retry=retry_if_result(lambda ok: not ok),
                            before_sleep=still_waiting)
        try:
            retrying(probe)
        except RetryError:
            raise DeployError(f"{expect.url}{path} did not answer 200 within {limit:.0f} s "
                              f"(start_timeout_s of the inventory)", host=adapter.host) from None
    return time.monotonic() - start


def verify(expect: Expect, *, key: str | None, key_hint: str = "",
           backend_key: str | None = None) -> list[str]:
    """What is wrong with a started service (nothing: ``[]``)."""
    with http_client() as client:
        if expect.service == "vllm":
            checks = vllm_checks("", expect.url, served=expect.served_model_name or "",
                                 max_model_len=expect.max_model_len or 0, client=client,
                                 probe_health=False, backend_key=backend_key)
        else:
            checks = proxy_checks("", expect.url, key=key, models=expect.models, client=client,
                                  key_hint=key_hint, probe_health=False)
    return [f"{c.what}: {c.detail}" for c in checks if c.ok is False]

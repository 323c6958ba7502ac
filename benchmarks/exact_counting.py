"""What exact input counting (the hooks asking the backend's /tokenize) adds per request.

Starts a local fleet (vLLM emulator + the real LiteLLM proxy) from the reference inventory
plus two aliases on armitage that differ only in ``exact_input_tokens`` (true: counted by
/tokenize in the pre-call hook; false: LiteLLM's tiktoken count), then sends the same chat
request (a prompt of ``--words`` words, max_tokens 1) to each, interleaved, one at a time,
and prints JSON: p50/p90/p99 latency per alias, the difference of the medians, and the
latency of a bare /tokenize call to the emulator.

    python benchmarks/exact_counting.py [--requests 200] [--words 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import REFERENCE, TEMPLATES
from vllmfleet import inventory, localfleet

ALIASES = {
    "bench-exact": {"exact_input_tokens": True},
    "bench-approx": {"exact_input_tokens": False},
}


def _inventory(folder: Path) -> inventory.Inventory:
    data = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    for name, extra in ALIASES.items():
        data["aliases"][name] = {"host": "armitage", "max_input_tokens": 7000,
                                 "max_output_tokens": 64, "tpm": 10_000_000, "rpm": 100_000,
                                 "concurrency": 1, "queue_depth": 4, **extra}
    path = folder / "fleet.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return inventory.load(path)


def _quantiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100)
    return {"p50_ms": round(cuts[49] * 1000, 2), "p90_ms": round(cuts[89] * 1000, 2),
            "p99_ms": round(cuts[98] * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--words", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inv = _inventory(folder)
        state = localfleet.up(inv, build_dir=folder / "build", speed=1000.0,
                              templates=TEMPLATES)
        try:
            print(json.dumps(_measure(state, args.requests, args.words), indent=2))
        finally:
            localfleet.down(folder / "build")


def _measure(state: localfleet.FleetState, requests: int, words: int) -> dict[str, Any]:
    messages = [{"role": "user", "content": "word " * words}]
    times: dict[str, list[float]] = {name: [] for name in ALIASES}
    headers = {"Authorization": f"Bearer {state.master_key}"}
    with httpx.Client(base_url=state.proxy_url, headers=headers, timeout=60.0,
                      trust_env=False) as proxy, \
            httpx.Client(timeout=60.0, trust_env=False) as direct:
        for name in ALIASES:  # warm up both paths
            proxy.post("/v1/chat/completions",
                       json={"model": name, "messages": messages, "max_tokens": 1})
        for _ in range(requests):
            for name in ALIASES:
                started = time.perf_counter()
                response = proxy.post("/v1/chat/completions",
                                      json={"model": name, "messages": messages,
                                            "max_tokens": 1})
                times[name].append(time.perf_counter() - started)
                response.raise_for_status()
        tokenize: list[float] = []
        url = state.emulator_url("armitage") + "/tokenize"
        for _ in range(requests):
            started = time.perf_counter()
            direct.post(url, json={"messages": messages}).raise_for_status()
            tokenize.append(time.perf_counter() - started)
    exact, approx = _quantiles(times["bench-exact"]), _quantiles(times["bench-approx"])
    return {"requests_per_alias": requests, "prompt_words": words,
            "exact": exact, "approximate": approx,
            "added_p50_ms": round(exact["p50_ms"] - approx["p50_ms"], 2),
            "bare_tokenize": _quantiles(tokenize)}


if __name__ == "__main__":
    main()

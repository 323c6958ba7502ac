"""Requests per second the vLLM emulator serves at zero delay, on one core.

Starts ``python -m vllmfleet.emulator`` (pinned to one CPU with taskset when available,
time scale 0, short answers) and drives non-streamed chat completions at several
concurrency levels with aiohttp (httpx's pool is itself the bottleneck at high
concurrency; see DESIGN.md "Performance notes"). Each level runs until ``--requests``
requests are done or ``--seconds`` have passed, whichever comes first. Besides the
requests per second it prints the emulator's own CPU time per request (from /proc) and
what that makes at 100 % of one core: on a busy machine the wall-clock figure depends on
the neighbours, the CPU figure much less.

    python benchmarks/emulator_rps.py [--concurrency 1 16 64] [--requests 4000]
                                      [--seconds 10] [--output-tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

MESSAGES = [{"role": "user", "content": "Write one short sentence about GPUs."}]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_emulator(port: int, *, cpu: int, output_tokens: int,
                   quiet: bool) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "vllmfleet.emulator", "--model", "bench/model",
           "--served-model-name", "bench", "--host", "127.0.0.1", "--port", str(port),
           "--max-model-len", "4096", "--max-num-seqs", "256", "--disable-log-stats",
           "--emulator-time-scale", "0", "--emulator-output-tokens", str(output_tokens)]
    if quiet:
        cmd.append("--disable-uvicorn-access-log")
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if re.search(r"Uvicorn running on", line):
            break
    else:
        raise SystemExit(f"the emulator did not start (exit {proc.wait()})")
    return proc


async def _drain(proc: subprocess.Popen[str]) -> None:
    """Keep reading the emulator's log so it never blocks on a full pipe."""
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, proc.stdout.readline):
        pass


async def level(url: str, concurrency: int, *, requests: int,
                seconds: float) -> tuple[int, float, int]:
    body = {"model": "bench", "messages": MESSAGES, "max_tokens": 16}
    issued = done = errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            nonlocal issued, done, errors
            while issued < requests and time.perf_counter() < deadline:
                issued += 1
                async with session.post(url, json=body) as resp:
                    await resp.read()
                    if resp.status == 200:
                        done += 1
                    else:
                        errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return done, elapsed, errors


async def run(args: argparse.Namespace) -> None:
    port = _free_port()
    proc = start_emulator(port, cpu=args.server_cpu, output_tokens=args.output_tokens,
                          quiet=args.quiet)
    drain = asyncio.create_task(_drain(proc))
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        await level(url, 4, requests=200, seconds=2)  # warm-up
        print(f"emulator pid {proc.pid}, pinned to CPU {args.server_cpu}; "
              f"{args.output_tokens} output tokens per answer; access log "
              f"{'off' if args.quiet else 'on'}")
        print(f"{'concurrency':>11} {'requests':>9} {'seconds':>8} {'req/s':>9} {'errors':>7} "
              f"{'cpu us/req':>11} {'req/s/core':>11}")
        for c in args.concurrency:
            before = cpu_seconds(proc.pid)
            done, elapsed, errors = await level(url, c, requests=args.requests,
                                                seconds=args.seconds)
            after = cpu_seconds(proc.pid)
            cpu = "" if before is None or after is None or not done else \
                f"{(after - before) / done * 1e6:>11.0f} {done / max(after - before, 1e-9):>11.0f}"
            print(f"{c:>11} {done:>9} {elapsed:>8.2f} {done / elapsed:>9.0f} {errors:>7} {cpu}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        drain.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--requests", type=int, default=4000, help="per level")
    parser.add_argument("--seconds", type=float, default=10.0, help="per level, at most")
    parser.add_argument("--output-tokens", type=int, default=16)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no access log in the emulator")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        # keep the client off the emulator's core
        others = set(range(os.cpu_count() or 1)) - {args.server_cpu}
        os.sched_setaffinity(0, others)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

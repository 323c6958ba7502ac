"""inv bench.*: one task per vLLM host and bench.proxy; bad options exit 2 before any traffic."""

from __future__ import annotations

import pytest

from tests.conftest import run_inv


def test_list_has_a_bench_task_per_vllm_host_and_the_proxy() -> None:
    listed = run_inv("--list").stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()
             .startswith("bench.")}
    assert names == {"bench.wintermute", "bench.armitage", "bench.proxy"}  # not motoko


@pytest.mark.parametrize(("args", "message"), [
    (("bench.wintermute", "--ttft", "fast"), "--ttft 'fast' is not a number"),
    (("bench.wintermute", "--percentile", "150"), "percentile=1.5: give 0.5 to 0.99"),
    (("bench.wintermute", "--ttft", "0", "--itl", "0"), "no objective"),
    (("bench.wintermute", "--max-concurrency", "2.5"), "--max-concurrency '2.5': give a whole"),
    (("bench.wintermute", "--max-seconds", "-1"), "max_seconds=-1.0"),
    (("bench.wintermute", "--alias", "local/chat"), "--alias is for bench.proxy"),
    (("bench.proxy", "--fleet", "staging"), "--fleet 'staging': use local or inventory"),
])
def test_bad_options_exit_2_naming_the_option(args: tuple[str, ...], message: str) -> None:
    done = run_inv(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr

"""The packaged suites, run as a user runs them: they pass on a healthy fleet and write the
reports; they fail, saying why, when the fleet misbehaves.

Only the first test starts a local fleet (emulators and the real LiteLLM, ~10 s); the
failure demonstrations run ``--fleet inventory`` against emulators started here with a
drifted limit, a "proxy" that enforces nothing, or a crash injected — no LiteLLM needed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITES = ("-m", "context_limit or burst or rejection")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_suites_pass_on_the_local_fleet_and_write_reports(
        pytester: pytest.Pytester, project: Path, record_property: object) -> None:
    pytest.importorskip("litellm", reason="the local fleet needs `pip install -e .[proxy]`")
    result = pytester.runpytest_subprocess(*SUITES, "--host", "armitage",
                                           "--benchmark-autosave", timeout=300)
    record_property("wall_s_context_burst_rejection_armitage", round(result.duration, 1))  # type: ignore[operator]
    # 10 + the 4 output-limit bypass families + the '=' run over max_input by exact count
    result.assert_outcomes(passed=15)
    result.stdout.fnmatch_lines([
        "vllmfleet: fleet=local, *, hosts=armitage, packaged suites from *",
        "*- vllmfleet acceptance summary -*",
        "suite * sent * host * target * model * 2xx/n * p50 * p90 * p99 *",
        "burst * 5 at once * armitage * proxy * qwen2.5-7b-armitage * 5/5 *5 x 200",
        "context * 5250 tok = 0.75 x max_input * armitage * proxy * 10/10 * ms * ms *",
        "report: *artifacts/context_test_results.csv",
    ])
    artifacts = project / "artifacts"
    context = _rows(artifacts / "context_test_results.csv")
    assert len(context) == 20 and {r["target"] for r in context} == {"direct", "proxy"}
    assert all(r["success"] == "True" and r["prompt_tokens"] == "5250" for r in context)
    burst = _rows(artifacts / "burst_test_results.csv")
    assert [r["status_code"] for r in burst] == ["200"] * 10
    summary = json.loads((artifacts / "acceptance_summary.json").read_text())
    ctx = [t for t in summary["tests"] if t["suite"] == "context"]
    assert [t["latency_s"]["samples"] for t in ctx] == [10, 10]
    assert all(t["latency_s"]["p90"] is not None for t in ctx)
    bursts = [t for t in summary["tests"] if t["suite"] == "burst"]
    assert all(t["peak_running"] == 1 for t in bursts)  # armitage runs one at a time
    # streamed answers: ITL and TPOT next to latency and TTFT, and the client's own overhead
    assert all(t["itl_s"]["samples"] > 0 and t["tpot_s"]["p50"] is not None for t in ctx)
    assert all(t["client_overhead"]["work_s"]["samples"] == 10 for t in ctx)
    assert all(t["client_overhead"]["loop_lag_s"]["samples"] > 0 for t in bursts)
    assert all(r["tpot"] and r["client_s"] for r in context)
    # pytest-benchmark kept the context latencies for a later --benchmark-compare
    saved = json.loads(next((project / ".benchmarks").rglob("0001_*.json")).read_text())
    rounds = {b["name"]: b["stats"]["rounds"] for b in saved["benchmarks"]}
    assert rounds == {
        "test_prompts_at_a_fraction_of_max_input_succeed[armitage-direct]": 10,
        "test_prompts_at_a_fraction_of_max_input_succeed[armitage-proxy]": 10}


def test_a_fleet_that_drifted_from_the_inventory_fails_with_clear_messages(
        pytester: pytest.Pytester, emulators: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # wintermute runs 12288 where the inventory says 16384; the "proxy" is a bare vLLM that
    # enforces no limit (what LiteLLM does without pre-call checks and the hooks)
    emulators.start("wintermute", "--max-model-len", "12288")  # type: ignore[attr-defined]
    emulators.start("wintermute", as_proxy=True,  # type: ignore[attr-defined]
                    names=["llama31-8b-wintermute", "llama31-8b-wintermute-burst"])
    inventory = emulators.inventory(pytester.path / "drifted.yaml")  # type: ignore[attr-defined]
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-test")
    pytester.makepyfile(test_own="""
        import pytest

        @pytest.mark.rejection  # a project's own test, next to the packaged suites
        def test_what_wintermute_really_runs(fleet, wintermute_client):
            (card,) = fleet.run(wintermute_client.models())
            assert card["max_model_len"] == 12288
    """)
    result = pytester.runpytest_subprocess("-m", "context_limit or rejection", "--host",
                                           "wintermute", "--fleet", "inventory",
                                           "--fleet-config", str(inventory), timeout=120)
    result.assert_outcomes(passed=9, failed=12)  # also n=2: a bare vLLM serves 2 choices
    result.stdout.fnmatch_lines_random([
        "*wintermute (http://127.0.0.1:*/v1/models):",
        "*- max_model_len is 12288, the inventory says 16384: the running config is not the "
        "inventory's*",
        "*- accepted (200) although it is over max_input_tokens=14000: the limit is not enforced",
        "*- accepted (200) although it is over max_input_tokens=15000: the limit is not enforced",
        "*- accepted (200) although it is over max_output_tokens=1024: the limit is not enforced",
        "*- accepted with 1025 completion tokens, more than max_output_tokens=1024: the limit "
        "was bypassed",
        "*- refused with 400, but the message does not name the limit max_model_len=16384: "
        "*maximum context length is 12288 tokens*",
    ])
    rows = _rows(pytester.path / "artifacts" / "rejection_test_results.csv")
    # + the bypass families per alias: the bare vLLM 404s the backend name (it serves only
    # the aliases' names here), ignores extra_body, honours max_completion_tokens, serves n=2
    # with 2 choices (as vLLM 0.32 does) and the '=' runs over max_input (accepted: nothing
    # counts them there)
    assert sorted(r["status_code"] for r in rows) == ["200"] * 12 + ["400"] * 1 + ["404"] * 2


def test_a_server_that_crashes_under_load_fails_the_context_suite(
        pytester: pytest.Pytester, emulators: object) -> None:
    emulators.start("wintermute", "--emulator-crash-after", "4")  # type: ignore[attr-defined]
    inventory = emulators.inventory(pytester.path / "fleet.yaml")  # type: ignore[attr-defined]
    result = pytester.runpytest_subprocess("-m", "context_limit", "--fleet", "inventory",
                                           "--target", "direct", "--host", "wintermute",
                                           "--fleet-config", str(inventory), timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*wintermute via direct (llama31-8b-wintermute), 10 prompts of 10500 tokens *:",
        "*- 6 of 10 requests failed; first: *",
        "*- /health answers * afterwards: the server crashed or ran out of memory*",
    ])


def test_the_real_fleet_without_the_master_key_says_which_variable_to_set(
        pytester: pytest.Pytester, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    result = pytester.runpytest_subprocess("-m", "burst", "--fleet=inventory", "--target=proxy",
                                           "--host=wintermute")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*vllmfleet: no key for the proxy at http://motoko.lan:4000: "
                                 "set LITELLM_MASTER_KEY to the proxy's master key*"])
    assert "errors.FleetError" not in result.stdout.str()  # a finding, not a traceback

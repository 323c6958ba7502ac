"""The planner against the calibration corpus (real start-up logs): accuracy and the corpus's
own consistency. ``python benchmarks/calibration.py`` prints the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmfleet.errors import CapacityError
from vllmfleet.vllm import calibration
from vllmfleet.vllm.capacity import kv_bytes_per_token


@pytest.fixture(scope="module")
def results() -> list[calibration.Result]:
    return calibration.evaluate(calibration.load())


def test_the_corpus_has_the_cases_the_issue_asks_for() -> None:
    cases = calibration.load()
    assert len(cases) >= 20
    small = [c for c in cases if c.inputs is not None and c.inputs.vram_gib <= 16]
    assert len(small) >= 4                                   # 8-16 GiB consumer cards
    assert all(c.source for c in cases)


def test_logged_tokens_match_the_architecture() -> None:
    """Each case's KV bytes per token (architecture x dtype) turns its logged KV GiB into its
    logged KV tokens: a wrong architecture or a mistyped figure shows up here."""
    for case in calibration.load():
        tokens, gib = case.logged.get("kv_cache_tokens"), case.logged.get("kv_cache_gib")
        if case.inputs is None or case.fit_only or not tokens:
            continue
        implied = gib * (1 << 30) / kv_bytes_per_token(case.inputs)
        assert implied == pytest.approx(tokens, rel=0.01), case.id


def test_accuracy_on_the_versions_the_planner_claims(results: list[calibration.Result]) -> None:
    s = calibration.summary(results, claimed_only=True)
    print("\n" + calibration.format_results(results))
    assert s.kv_cases >= 15
    assert s.kv_share >= 0.80, f"KV within ±15%: {s.kv_within}/{s.kv_cases}"
    assert s.fit_share >= 0.90, f"fit/no-fit right: {s.fit_right}/{s.fit_cases}"


def test_v0_profiles_max_model_len_so_29k_fails_where_20k_starts(
        results: list[calibration.Result]) -> None:
    by_id = {r.case.id: r for r in results}
    assert by_id["llama31-8b-3090-20k"].report.fits
    assert not by_id["llama31-8b-3090-29k"].report.fits


def test_a_malformed_case_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "corpus.yaml"
    bad.write_text("architectures: {}\ncases:\n  - id: broken\n    vllm_version: '0.8'\n")
    with pytest.raises(CapacityError, match="case 'broken' is malformed"):
        calibration.load(bad)

"""The suites' shared checks: missing data is a finding, never a silent pass."""

from __future__ import annotations

from pytest_vllmfleet.checks import clamp_problems, refused_naming, usage_problems
from vllmfleet.client import Result


def _ok(prompt: int | None, completion: int | None) -> Result:
    return Result(status=200, latency_s=0.1, prompt_tokens=prompt, completion_tokens=completion)


def test_answers_without_usage_are_a_problem_not_a_skipped_count() -> None:
    results = [_ok(5250, 16), _ok(None, None), _ok(None, None)]
    (problem,) = usage_problems(results, prompt_tokens=5250)
    assert "2 of 3 answers carried no usage" in problem and "requested" in problem
    assert usage_problems(results) == [problem]  # via the proxy: no count, usage still needed


def test_a_miscounted_prompt_is_a_problem_and_a_right_one_is_not() -> None:
    (problem,) = usage_problems([_ok(5250, 16), _ok(5300, 16)], prompt_tokens=5250)
    assert "counted [5300] prompt tokens where /tokenize said 5250" in problem
    assert usage_problems([_ok(5250, 16)] * 10, prompt_tokens=5250) == []


def test_failed_requests_are_left_to_the_failure_count() -> None:
    failed = Result(status=500, latency_s=0.1, error="boom")
    assert usage_problems([failed, _ok(10, 1)], prompt_tokens=10) == []


def test_a_clamped_answer_must_show_its_tokens() -> None:
    (problem,) = clamp_problems(_ok(5, None), limit=768)
    assert "without usage" in problem and "max_output_tokens=768" in problem
    (over,) = clamp_problems(_ok(5, 769), limit=768)
    assert "answered 769 tokens" in over
    assert clamp_problems(_ok(5, 768), limit=768) == []
    (refused,) = clamp_problems(Result(status=400, latency_s=0.1, error="no"), limit=768)
    assert "the request failed: 400" in refused


def _refused(message: str) -> Result:
    return Result(status=400, latency_s=0.1, error=message)


def test_a_refusal_names_the_limit_only_as_a_whole_number() -> None:
    (problem,) = refused_naming(_refused("max_tokens must be at most 10240"), limit=1024,
                                what="max_output_tokens")
    assert "does not name the limit max_output_tokens=1024" in problem
    assert refused_naming(_refused("21024 tokens is over"), limit=1024, what="x") != []
    for named in ("max_output_tokens=1024.", "limit 1024", "(1024)", "1024"):
        assert refused_naming(_refused(named), limit=1024, what="x") == [], named

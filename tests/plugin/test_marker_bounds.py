"""The bounds of the suite markers' arguments, value by value (no pytester: the options
objects themselves). A removed bound (``fraction=1.5`` accepted, ``samples`` unbounded, an
error budget that equals the burst) fails here."""

from __future__ import annotations

import pytest

from pytest_vllmfleet.markers import MAX_SAMPLES, Burst, ContextLimit, MarkerError


@pytest.mark.parametrize("fraction", [0, -0.1, 1.0000001, 1.5, 2, float("nan"), float("inf"),
                                      True, "0.5", None])
def test_fraction_outside_0_1_is_refused(fraction: object) -> None:
    with pytest.raises(MarkerError, match=r"fraction=.*give a number in \(0, 1\]"):
        ContextLimit(fraction=fraction)  # type: ignore[arg-type]


@pytest.mark.parametrize("fraction", [1e-9, 0.5, 1, 1.0])
def test_fraction_inside_0_1_is_kept(fraction: float) -> None:
    assert ContextLimit(fraction=fraction).fraction == fraction


@pytest.mark.parametrize("samples", [9, 0, -1, MAX_SAMPLES + 1, 10**9, True, 10.0, "10"])
def test_samples_outside_10_to_max_are_refused(samples: object) -> None:
    with pytest.raises(MarkerError, match=f"samples=.*from 10 to {MAX_SAMPLES}"):
        ContextLimit(samples=samples)  # type: ignore[arg-type]


@pytest.mark.parametrize("samples", [10, 11, MAX_SAMPLES])
def test_samples_inside_the_bounds_are_kept(samples: int) -> None:
    assert ContextLimit(samples=samples).samples == samples


@pytest.mark.parametrize(("concurrency", "max_errors"), [
    (0, 0), (1001, 1), (True, 0), (5.0, 1), (5, -1), (5, 5), (5, 6), (1, 1), (5, True)])
def test_burst_outside_its_bounds_is_refused(concurrency: object, max_errors: object) -> None:
    with pytest.raises(MarkerError):
        Burst(concurrency=concurrency, max_errors=max_errors)  # type: ignore[arg-type]


def test_an_error_budget_of_the_whole_burst_is_refused_with_the_reason() -> None:
    with pytest.raises(MarkerError, match=r"max_errors=5: give a whole number from 0 to 4 .*"
                                          r"could never fail"):
        Burst(concurrency=5, max_errors=5)


@pytest.mark.parametrize(("concurrency", "max_errors"), [(1, 0), (5, 4), (1000, 999), (2, 1)])
def test_burst_inside_its_bounds_is_kept(concurrency: int, max_errors: int) -> None:
    assert Burst(concurrency=concurrency, max_errors=max_errors).max_errors == max_errors

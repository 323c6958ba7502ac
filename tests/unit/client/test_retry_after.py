"""``Retry-After`` at its edges: only a finite, non-negative number of seconds is a wait; a
negative, infinite, NaN or non-numeric value is no value at all (a client must not sleep
forever, or "-1" seconds, on a header it cannot trust)."""

from __future__ import annotations

import httpx
import pytest

from vllmfleet.client import retry_after_seconds


@pytest.mark.parametrize("value", ["-1", "-0.5", "inf", "+inf", "-inf", "Infinity", "nan",
                                   "NaN", "", " ", "soon", "1e999", "0x10",
                                   "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_values_that_are_no_wait(value: str) -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": value})) is None


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("1", 1.0), ("2.5", 2.5),
                                                (" 3 ", 3.0), ("120", 120.0), ("1e3", 1000.0)])
def test_values_that_are_a_wait(value: str, seconds: float) -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": value})) == seconds


def test_no_header_is_no_wait() -> None:
    assert retry_after_seconds(httpx.Headers()) is None

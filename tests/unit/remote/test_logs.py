"""Following a host's log tail: only new lines, a line each, until told to stop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from vllmfleet.remote import (
    CallableService,
    LocalAdapter,
    follow,
    new_lines,
)


def test_follow_prints_new_lines_as_they_come(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    pages = iter(["a\nb\n", "a\nb\nc\n", "b\nc\nd\ne\n"])
    service = CallableService(restart_fn=lambda: None, is_running_fn=lambda: True,
                              logs_fn=lambda n: next(pages))
    adapter = LocalAdapter(host="h", root=tmp_path, services={"vllm": service})
    follow(adapter, "vllm", ["a", "b"], polls=3, every_s=0)
    assert capsys.readouterr().out == "c\nd\ne\n"


def test_follow_prints_only_new_lines() -> None:
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert new_lines(["a", "b"], ["a", "b"]) == []
    assert new_lines(["x"], ["y", "z"]) == ["y", "z"]


def test_follow_ends_at_once_when_told_to_stop(tmp_path: Path) -> None:
    """A caller (Ctrl-C handling, a test) ends the follow without waiting out a poll."""
    stop = threading.Event()
    polled: list[int] = []

    def logs(n: int) -> str:
        polled.append(n)
        stop.set()
        return "x\n"

    service = CallableService(restart_fn=lambda: None, is_running_fn=lambda: True, logs_fn=logs)
    adapter = LocalAdapter(host="h", root=tmp_path, services={"vllm": service})
    started = time.monotonic()
    follow(adapter, "vllm", [], every_s=60, stop=stop, write=lambda _: None)
    assert polled == [200] and time.monotonic() - started < 30

"""Log lines shaped like vLLM's and uvicorn's, so people (and log greps) read them alike.

vLLM: ``INFO 10-02 14:03:21 [file.py:123] message``; uvicorn: ``INFO:     message``.
INFO and WARNING lines go to stdout, ERROR and worse to stderr, each flushed at once
(the local fleet follows the log file to see the server come up).
"""

from __future__ import annotations

import logging
import sys

_LOGGERS = ("vllm", "uvicorn", "vllmfleet.emulator")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if record.name.startswith("uvicorn"):
            return f"{record.levelname + ':':<10}{message}"
        when = self.formatTime(record, "%m-%d %H:%M:%S")
        return f"{record.levelname} {when} [{record.filename}:{record.lineno}] {message}"


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def setup(*, level: str = "info") -> None:
    """Send the emulator's loggers to stdout/stderr in vLLM's format."""
    formatter = _Formatter()
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(_Below(logging.ERROR))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.ERROR)
    for handler in (out, err):
        handler.setFormatter(formatter)
    numeric = logging.getLevelName("DEBUG" if level == "trace" else level.upper())
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [out, err]
        logger.propagate = False
        logger.setLevel(numeric if name == "uvicorn" else logging.INFO)

"""The local fleet's state file: which processes it started, where they listen, where they log.

``build_dir/state.json`` is written as each process starts (so a crash half-way still
leaves every PID on record for ``down``) and removed by ``down``. Each process is recorded
with its start time from ``/proc/<pid>/stat``, so a PID that the kernel has since given to
another program is never mistaken for ours. The master key lives only in its own 0600
file; the state file names that file, never the key.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from vllmfleet.errors import LocalFleetError
from vllmfleet.inventory import Endpoints

STATE_FILE = "state.json"
LOCK_FILE = ".lock"
KEY_FILE = "master_key"
BACKEND_KEY_FILE = "backend_key"
STATE_VERSION = 1
Role = Literal["emulator", "vllm", "proxy"]


@dataclass(frozen=True, kw_only=True)
class Process:
    """One process of the local fleet."""

    name: str
    role: Role
    pid: int
    start_ticks: int
    port: int
    url: str
    log: str
    argv: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class FleetState:
    """A local fleet as recorded in ``state.json``."""

    build_dir: str
    engine: str
    inventory_path: str
    inventory_digest: str
    master_key_env: str
    master_key_file: str
    started_at: float
    emulators: dict[str, Process] = field(default_factory=dict)
    proxy: Process | None = None
    ready: bool = False
    backend_key_file: str = ""  # the engines' --api-key (0600); "" in older state files

    @property
    def processes(self) -> list[Process]:
        """The proxy first (it goes down first), then the engines."""
        return ([self.proxy] if self.proxy else []) + list(self.emulators.values())

    @property
    def proxy_url(self) -> str:
        """The proxy's base URL (``http://127.0.0.1:PORT``); OpenAI clients add ``/v1``."""
        if self.proxy is None:
            raise LocalFleetError(f"the local fleet in {self.build_dir} has no proxy on record; "
                                  "run `inv fleet.down` and `inv fleet.up` again")
        return self.proxy.url

    def emulator_url(self, host: str) -> str:
        """The base URL of ``host``'s engine (``http://127.0.0.1:PORT``)."""
        try:
            return self.emulators[host].url
        except KeyError:
            raise LocalFleetError(f"the local fleet has no engine for host {host!r}; it has "
                                  f"{', '.join(sorted(self.emulators)) or 'none'}") from None

    @property
    def host_urls(self) -> dict[str, str]:
        """Each vLLM host's engine base URL (``http://127.0.0.1:PORT``), by host name."""
        return {name: p.url for name, p in self.emulators.items()}

    def endpoints(self) -> Endpoints:
        """Where this fleet answers, with its master key."""
        return Endpoints(hosts=self.host_urls, proxy=self.proxy_url, key=self.master_key,
                         backend_key=self.backend_key)

    @property
    def backend_key(self) -> str | None:
        """The engines' API key (only the proxy and the fleet's own checks hold it)."""
        if not self.backend_key_file:
            return None
        try:
            return Path(self.backend_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise LocalFleetError(f"cannot read the local fleet's backend key "
                                  f"{self.backend_key_file}: {exc.strerror}; run "
                                  "`inv fleet.down` and `inv fleet.up` again") from None

    @property
    def master_key(self) -> str:
        """The proxy's master key, read from its 0600 file (never stored in the state)."""
        try:
            return Path(self.master_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise LocalFleetError(f"cannot read the local fleet's master key "
                                  f"{self.master_key_file}: {exc.strerror}; run "
                                  "`inv fleet.down` and `inv fleet.up` again") from None

    def to_json(self) -> str:
        data = asdict(self)
        data["version"] = STATE_VERSION
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, where: str) -> FleetState:
        try:
            data = json.loads(text)
            if data.pop("version", None) != STATE_VERSION:
                raise ValueError(f"expected version {STATE_VERSION}")
            proxy = data.pop("proxy")
            emulators = data.pop("emulators")
            return cls(proxy=Process(**proxy) if proxy else None,
                       emulators={k: Process(**v) for k, v in emulators.items()}, **data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise LocalFleetError(
                f"{where}: not a local-fleet state file this version understands ({exc}); "
                "stop any processes it lists by hand, then delete it") from None


def read_state(build_dir: Path) -> FleetState | None:
    """The recorded fleet, or None when there is no state file."""
    path = build_dir / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return FleetState.from_json(text, where=str(path))


def write_state(state: FleetState) -> None:
    """Write ``state.json`` atomically (temp file + rename)."""
    folder = Path(state.build_dir)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".state.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(state.to_json())
        os.replace(tmp, folder / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clear_state(build_dir: Path) -> None:
    """Remove the state file and the key files."""
    (build_dir / STATE_FILE).unlink(missing_ok=True)
    (build_dir / KEY_FILE).unlink(missing_ok=True)
    (build_dir / BACKEND_KEY_FILE).unlink(missing_ok=True)


def write_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` readable by its owner only (0600 from creation on)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")


@contextmanager
def locked(build_dir: Path) -> Iterator[None]:
    """Hold the build folder's lock, so two ``up``/``down`` never run at once."""
    build_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(build_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalFleetError(f"another `fleet.up`/`fleet.down` is running on {build_dir}; "
                                  "wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def as_dict(state: FleetState) -> dict[str, Any]:
    """The state as plain data (for ``--json`` output); holds no secret."""
    return asdict(state)

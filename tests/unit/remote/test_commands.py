"""Host adapters by what they send: exact commands, transcripts (golden files), local runs.

PowerShell and WSL cannot run here, so the ``wsl`` and ``windows`` adapters talk to a
recording :class:`FakeTransport`; each transcript (SFTP operations, commands, and the decoded
scripts inside them) is compared with ``tests/golden/remote/<name>.txt``. To accept a
deliberate change::

    UPDATE_GOLDEN=1 ./dev test tests/unit/remote/test_commands.py
    git diff tests/golden/remote

The POSIX scripts themselves run for real under ``/bin/sh`` through :class:`ShellTransport`
(local files stand in for SFTP), and the ``local`` adapter works on a temp folder.
"""

from __future__ import annotations

import base64
import difflib
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import GOLDEN, ROOT
from vllmfleet.errors import HostError
from vllmfleet.inventory import Host, Inventory
from vllmfleet.remote import CallableService, CommandResult, HostAdapter, LocalAdapter, adapter_for

REMOTE_GOLDEN = GOLDEN / "remote"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
WSL_WIRE = re.compile(r'wsl -d Ubuntu-22\.04 -- bash -lc "echo ([A-Za-z0-9+/=]+)\|base64 -d\|bash"')
PS_WIRE = re.compile(r"powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass "
                     r"-EncodedCommand ([A-Za-z0-9+/=]+)")
COMPOSE = b"services:\n  vllm:\n    image: vllm/vllm-openai:v0.11.0\n"


def counter() -> Callable[[], str]:
    state = iter(range(1, 1000))
    return lambda: f"t{next(state)}"


Responder = Callable[[str], CommandResult | None]


@dataclass
class FakeTransport:
    """Records every operation; answers commands through ``responders`` (default: exit 0)."""

    home_dir: str
    responders: list[Responder] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    connection_count: int = 1

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        self.commands.append(command)
        self.log.append(describe(command))
        for responder in self.responders:
            answer = responder(command)
            if answer is not None:
                return answer
        return CommandResult(command=command, exit_code=0, stdout="", stderr="")

    def upload(self, path: str, content: bytes) -> None:
        self.files[path] = content
        self.log.append(f"sftp upload {path} ({len(content)} bytes)\n" + indent(content.decode()))

    def download(self, path: str) -> bytes | None:
        self.log.append(f"sftp download {path}")
        return self.files.get(path)

    def stat(self, path: str) -> int | None:
        self.log.append(f"sftp stat {path}")
        return 0o644 if path in self.files else None

    def makedirs(self, path: str) -> None:
        self.log.append(f"sftp makedirs {path}")

    def remove(self, path: str) -> None:
        self.log.append(f"sftp remove {path}")
        self.files.pop(path, None)

    def home(self) -> str:
        return self.home_dir

    def close(self) -> None:
        self.log.append("close")


def indent(text: str) -> str:
    return "".join(f"    | {line}\n" for line in text.splitlines())


def decode(command: str) -> str | None:
    """The script inside a wsl/PowerShell wire command, or None for a plain command."""
    if match := WSL_WIRE.fullmatch(command):
        return base64.b64decode(match.group(1)).decode()
    if match := PS_WIRE.fullmatch(command):
        return base64.b64decode(match.group(1)).decode("utf-16-le")
    return None


def describe(command: str) -> str:
    script = decode(command)
    if script is None:
        return f"run {command}" if "\n" not in command else "run <script>\n" + indent(command)
    head = command.split(" -- ")[0] if command.startswith("wsl") else "powershell -EncodedCommand"
    return f"run {head} <script>\n" + indent(script)


def check_golden(name: str, transcript: list[str]) -> None:
    text = "\n".join(transcript) + "\n"
    path = REMOTE_GOLDEN / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not path.exists():
        pytest.fail(f"no golden file {path.relative_to(ROOT)}; create it with UPDATE_GOLDEN=1",
                    pytrace=False)
    want = path.read_text()
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            fromfile=f"golden/{name}.txt", tofile="sent"))
        pytest.fail(f"{name}: the adapter sends something else than its golden file "
                    f"(if intended: UPDATE_GOLDEN=1):\n{diff}", pytrace=False)


def fake_adapter(reference: Inventory, name: str, home: str, *responders: Responder,
                 sudo: bool = False) -> tuple[FakeTransport, HostAdapter]:
    transport = FakeTransport(home_dir=home, responders=list(responders))
    adapter = adapter_for(reference.hosts[name], proxy=reference.proxy, transport=transport,
                          tokens=counter(), sudo=sudo)
    return transport, adapter


# --- wsl ------------------------------------------------------------------------------------

def test_wsl_commands_survive_any_windows_shell(reference: Inventory) -> None:
    transport, wsl = fake_adapter(reference, "wintermute", "/C:/Users/ops")
    wsl.run("docker ps --format '{{.Names}}' | grep -c vllm && echo \"100%\" > /tmp/x")
    [wire] = transport.commands
    # one double-quoted word of base64: nothing cmd.exe, PowerShell or wsl.exe would touch
    assert WSL_WIRE.fullmatch(wire), wire
    assert decode(wire) == ("{\ndocker ps --format '{{.Names}}' | grep -c vllm && "
                            "echo \"100%\" > /tmp/x\n}\n")


def test_wsl_put_stages_on_windows_and_renames_inside_wsl(reference: Inventory) -> None:
    transport, wsl = fake_adapter(reference, "wintermute", "/C:/Users/ops")
    wsl.put("/opt/vllmfleet/vllm-compose.yaml", COMPOSE, mode=0o644)
    check_golden("wsl_put", transport.log)
    assert transport.files == {}, "the staging file must be removed after the move"


def test_wsl_put_failure_names_host_exit_code_and_stderr(reference: Inventory) -> None:
    def damaged(command: str) -> CommandResult | None:
        if "mv -f" in (decode(command) or ""):
            return CommandResult(command=command, exit_code=3, stdout="",
                          stderr="vllmfleet: /opt/x.tmp has sha256 abc, expected def")
        return None

    transport, wsl = fake_adapter(reference, "wintermute", "/C:/Users/ops", damaged)
    with pytest.raises(HostError) as caught:
        wsl.put("/opt/vllmfleet/vllm-compose.yaml", COMPOSE)
    message = str(caught.value)
    assert message.startswith("wintermute: replacing /opt/vllmfleet/vllm-compose.yaml failed "
                              "(exit 3)")
    assert "has sha256 abc, expected def" in message
    assert "mv -f" in message and "base64" not in message  # the readable script, not the wire
    assert "unchanged" in message
    assert transport.log[-1].startswith("sftp remove /C:/Users/ops/.vllmfleet/staging/t1.tmp")


def test_wsl_read_decodes_file_and_mode(reference: Inventory) -> None:
    content = b"\x00binary\xffcontent\n"
    encoded = base64.encodebytes(content).decode()

    def answer(command: str) -> CommandResult | None:
        script = decode(command) or ""
        if "present.yaml" in script:
            return CommandResult(command=command, exit_code=0, stdout=f"present 640\n{encoded}",
                          stderr="")
        return CommandResult(command=command, exit_code=0, stdout="absent\n", stderr="")

    transport, wsl = fake_adapter(reference, "wintermute", "/C:/Users/ops", answer)
    found = wsl.read_file("/opt/vllmfleet/present.yaml")
    assert (found.content, found.mode) == (content, 0o640)
    assert wsl.read("/opt/vllmfleet/missing.yaml") is None
    check_golden("wsl_read", transport.log[:1])


def test_wsl_service_commands(reference: Inventory) -> None:
    def answer(command: str) -> CommandResult | None:
        if "docker inspect" in (decode(command) or ""):
            return CommandResult(command=command, exit_code=0, stdout="running\n", stderr="")
        return CommandResult(command=command, exit_code=0, stdout="INFO started\n", stderr="")

    transport, wsl = fake_adapter(reference, "wintermute", "/C:/Users/ops", answer)
    wsl.restart()
    status = wsl.status()
    assert (status.running, status.state) == (True, "running")
    assert wsl.logs(lines=50) == "INFO started\n"
    check_golden("wsl_service", transport.log)


def test_wsl_missing_container_is_not_running(reference: Inventory) -> None:
    def answer(command: str) -> CommandResult | None:
        return CommandResult(command=command, exit_code=1, stdout="",
                      stderr="Error: No such object: vllm-wintermute")

    _, wsl = fake_adapter(reference, "wintermute", "/C:/Users/ops", answer)
    status = wsl.status()
    assert (status.running, status.state) == (False, "missing")


def test_wsl_bad_distro_is_refused(reference: Inventory) -> None:
    host = reference.hosts["wintermute"]
    bad = Host(name=host.name, address=host.address, platform="wsl", ssh=host.ssh,
               wsl_distro="Ubuntu & calc", vllm=host.vllm)
    with pytest.raises(HostError, match=r"wsl_distro 'Ubuntu & calc'.*wsl -l -q"):
        adapter_for(bad, transport=FakeTransport(home_dir="/C:/Users/ops"))


def test_wsl_restart_failure_says_what_to_check(reference: Inventory) -> None:
    def answer(command: str) -> CommandResult | None:
        return CommandResult(command=command, exit_code=1, stdout="",
                      stderr="\x00e\x00r\x00r\x00o\x00r\x00 from wsl.exe\ncompose failed\n")

    _, wsl = fake_adapter(reference, "wintermute", "/C:/Users/ops", answer)
    with pytest.raises(HostError) as caught:
        wsl.restart()
    message = str(caught.value)
    assert "restarting vllm failed (exit 1): docker compose -f " \
           "/opt/vllmfleet/vllm-compose.yaml up -d --force-recreate" in message
    assert "error from wsl.exe" in message and "compose failed" in message  # NULs removed
    assert "fix: check the compose file" in message


# --- windows --------------------------------------------------------------------------------

LAUNCHER = "powershell -NoProfile -ExecutionPolicy Bypass -File C:/vllmfleet/vllm-launcher.ps1"


def test_windows_launcher_commands_are_exact(reference: Inventory) -> None:
    def answer(command: str) -> CommandResult | None:
        if command.endswith(" Status"):
            return CommandResult(command=command, exit_code=3, stderr="",
                          stdout="container vllm-armitage: exited\nhealth x: unreachable\n")
        return None

    transport, win = fake_adapter(reference, "armitage", "/C:/Users/ops", answer)
    win.restart()
    status = win.status()
    win.logs(lines=50)
    assert transport.commands == [f"{LAUNCHER} Restart", f"{LAUNCHER} Status",
                                  f"{LAUNCHER} Logs -Tail 50"]
    assert (status.running, status.state) == (False, "exited")


def test_windows_status_error_is_raised(reference: Inventory) -> None:
    def answer(command: str) -> CommandResult | None:
        return CommandResult(command=command, exit_code=1, stdout="",
                      stderr="vllm-launcher: config C:/vllmfleet/vllm-config.json not found")

    _, win = fake_adapter(reference, "armitage", "/C:/Users/ops", answer)
    with pytest.raises(HostError, match=r"armitage: reading the vllm status failed \(exit 1\)"
                                        r"(.|\n)*vllm-config.json not found"):
        win.status()


def test_windows_put_uploads_beside_target_and_moves(reference: Inventory) -> None:
    transport, win = fake_adapter(reference, "armitage", "/C:/Users/ops")
    win.put("C:/vllmfleet/vllm-config.json", b'{"max_model_len": 8192}\n')
    assert transport.commands and all(PS_WIRE.fullmatch(c) for c in transport.commands)
    check_golden("windows_put", transport.log)


def test_windows_run_is_powershell(reference: Inventory) -> None:
    transport, win = fake_adapter(reference, "armitage", "/C:/Users/ops")
    win.run("nvidia-smi --query-gpu=memory.used --format=csv")
    [wire] = transport.commands
    assert decode(wire) == ("$ErrorActionPreference = 'Stop'\n$ProgressPreference = "
                            "'SilentlyContinue'\nnvidia-smi --query-gpu=memory.used --format=csv")


def test_windows_host_cannot_run_the_proxy(reference: Inventory) -> None:
    proxy = reference.proxy.__class__(host="armitage")
    with pytest.raises(HostError, match="proxy cannot run on a windows host"):
        adapter_for(reference.hosts["armitage"], proxy=proxy,
                    transport=FakeTransport(home_dir="/C:/Users/ops"))


# --- linux (commands; the real thing runs over sshd in tests/integration) -------------------

def test_linux_proxy_host_uses_systemd_with_sudo_n(reference: Inventory) -> None:
    def answer(command: str) -> CommandResult | None:
        if command.startswith("systemctl is-active"):
            return CommandResult(command=command, exit_code=3, stdout="failed\n", stderr="")
        return None

    transport, motoko = fake_adapter(reference, "motoko", "/home/ops", answer)
    motoko.restart()
    status = motoko.status()
    motoko.logs(lines=100)
    assert transport.commands == ["sudo -n systemctl restart litellm",
                                  "systemctl is-active litellm",
                                  "sudo -n journalctl -u litellm -n 100 --no-pager"]
    assert (status.running, status.state) == (False, "failed")
    with pytest.raises(HostError, match="motoko: this host runs no vllm service"):
        motoko.restart(service="vllm")


def test_a_changed_unit_is_reloaded_before_the_restart(reference: Inventory) -> None:
    transport, motoko = fake_adapter(reference, "motoko", "/home/ops")
    motoko.restart(service="proxy", reload_units=True)
    motoko.restart(service="proxy")
    assert transport.commands == ["sudo -n systemctl daemon-reload",
                                  "sudo -n systemctl restart litellm",
                                  "sudo -n systemctl restart litellm"]


def test_docker_compose_has_no_units_to_reload(reference: Inventory) -> None:
    transport, wintermute = fake_adapter(reference, "wintermute", "/C:/Users/ops")
    wintermute.restart(service="vllm", reload_units=True)
    [wire] = transport.commands
    assert "daemon-reload" not in (decode(wire) or wire)
    assert "docker compose" in (decode(wire) or "")


@pytest.mark.parametrize(("sudo", "want"), [
    (False, "ln -- /opt/vllmfleet/.lock.t1.new /opt/vllmfleet/.lock"),
    (True, "sudo -n ln -- /opt/vllmfleet/.lock.t1.new /opt/vllmfleet/.lock")])
def test_the_exclusive_link_is_a_hard_link_on_posix(reference: Inventory, sudo: bool,
                                                     want: str) -> None:
    def exists(command: str) -> CommandResult | None:
        return CommandResult(command=command, exit_code=1, stdout="",
                             stderr="ln: failed to create hard link: File exists\n")

    transport, motoko = fake_adapter(reference, "motoko", "/home/ops", sudo=sudo)
    assert motoko.link_exclusive("/opt/vllmfleet/.lock.t1.new", "/opt/vllmfleet/.lock") == ""
    assert transport.commands == [want]
    _, taken = fake_adapter(reference, "motoko", "/home/ops", exists, sudo=sudo)
    assert taken.link_exclusive("/a.new", "/a") == "ln: failed to create hard link: File exists"


def test_the_exclusive_link_is_a_move_on_windows(reference: Inventory) -> None:
    transport, win = fake_adapter(reference, "armitage", "/C:/Users/ops")
    assert win.link_exclusive("C:/vllmfleet/.lock.t1.new", "C:/vllmfleet/.lock") == ""
    [wire] = transport.commands
    assert (decode(wire) or "").endswith(
        "Move-Item -LiteralPath 'C:/vllmfleet/.lock.t1.new' -Destination 'C:/vllmfleet/.lock'")


def test_the_exclusive_link_on_a_local_host_refuses_an_existing_target(tmp_path: Path) -> None:
    local = LocalAdapter(host="h", root=tmp_path)
    local.put("/x/a.new", b"mine")
    assert local.link_exclusive("/x/a.new", "/x/a") == ""
    assert local.read("/x/a") == b"mine"
    local.put("/x/b.new", b"theirs")
    assert local.link_exclusive("/x/b.new", "/x/a") == "the lock exists"
    assert local.read("/x/a") == b"mine"


def test_linux_sudo_put_stages_in_home(reference: Inventory) -> None:
    transport, motoko = fake_adapter(reference, "motoko", "/home/ops", sudo=True)
    motoko.put("/etc/litellm/litellm.env", b"LITELLM_MASTER_KEY=sk-fake-for-tests\n",
               mode=0o600)
    check_golden("linux_sudo_put", transport.log)


@pytest.mark.parametrize("bad", ["relative/path.yaml", "/opt/../etc/passwd", "/opt/dir/", ""])
def test_bad_remote_paths_are_refused(reference: Inventory, bad: str) -> None:
    transport, motoko = fake_adapter(reference, "motoko", "/home/ops")
    with pytest.raises(HostError, match="refusing remote path"):
        motoko.put(bad, b"x")
    assert transport.log == []


def test_bad_log_line_count_is_refused(reference: Inventory) -> None:
    _, motoko = fake_adapter(reference, "motoko", "/home/ops")
    with pytest.raises(HostError, match="lines=0: ask for between 1 and 10000 log lines"):
        motoko.logs(lines=0)


# --- the POSIX scripts, run for real by /bin/sh ---------------------------------------------

@dataclass
class ShellTransport:
    """Runs commands with /bin/sh here; SFTP operations are local file operations."""

    home_dir: str
    damage_uploads: bool = False
    connection_count: int = 0

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                              timeout=30, check=False)
        return CommandResult(command=command, exit_code=done.returncode, stdout=done.stdout,
                      stderr=done.stderr)

    def upload(self, path: str, content: bytes) -> None:
        Path(path).write_bytes(content[:-1] + b"!" if self.damage_uploads else content)

    def download(self, path: str) -> bytes | None:
        return Path(path).read_bytes() if Path(path).exists() else None

    def stat(self, path: str) -> int | None:
        return Path(path).stat().st_mode & 0o7777 if Path(path).exists() else None

    def makedirs(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)

    def remove(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def home(self) -> str:
        return self.home_dir

    def close(self) -> None:
        pass


@pytest.fixture
def shell_host(tmp_path: Path, reference: Inventory) -> Iterator[tuple[ShellTransport, Path]]:
    (tmp_path / "home").mkdir()
    yield ShellTransport(home_dir=str(tmp_path / "home")), tmp_path


def test_install_script_replaces_file_and_sets_mode(
        reference: Inventory, shell_host: tuple[ShellTransport, Path]) -> None:
    transport, root = shell_host
    target = root / "etc dir" / "config.yaml"
    target.parent.mkdir()
    target.write_bytes(b"old\n")
    (target.parent / ".config.yaml.vllmfleet-stale.tmp").write_bytes(b"half a file")
    adapter = adapter_for(reference.hosts["motoko"], transport=transport)
    adapter.put(str(target), b"new: 1\n", mode=0o640)
    assert target.read_bytes() == b"new: 1\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["config.yaml"]  # stale temp gone
    found = adapter.read_file(str(target))
    assert found is not None and (found.content, found.mode) == (b"new: 1\n", 0o640)


def test_damaged_upload_is_not_renamed(reference: Inventory,
                                       shell_host: tuple[ShellTransport, Path]) -> None:
    transport, root = shell_host
    transport.damage_uploads = True
    target = root / "config.yaml"
    target.write_bytes(b"old\n")
    adapter = adapter_for(reference.hosts["motoko"], transport=transport)
    with pytest.raises(HostError, match=r"exit 3(.|\n)*the upload was damaged"):
        adapter.put(str(target), b"new content\n")
    assert target.read_bytes() == b"old\n"
    assert sorted(p.name for p in root.iterdir()) == ["config.yaml", "home"]  # temp removed


def test_staged_put_and_read_scripts_run_under_sh(reference: Inventory,
                                                  shell_host: tuple[ShellTransport, Path]) -> None:
    """The sudo/WSL variant (staging copy + read as base64), minus sudo, under dash."""
    transport, root = shell_host
    transport.run = _without_sudo(transport.run)  # type: ignore[method-assign]
    adapter = adapter_for(reference.hosts["motoko"], transport=transport, sudo=True)
    target = root / "new" / "litellm.env"
    adapter.put(str(target), b"KEY=\x00\xff\n", mode=0o600)
    assert target.read_bytes() == b"KEY=\x00\xff\n" and target.stat().st_mode & 0o777 == 0o600
    assert list((root / "home" / ".vllmfleet" / "staging").iterdir()) == []
    found = adapter.read_file(str(target))
    assert found is not None and (found.content, found.mode) == (b"KEY=\x00\xff\n", 0o600)
    assert adapter.read_file(str(root / "absent")) is None
    adapter.remove(str(target))
    assert not target.exists()


def _without_sudo(run: Callable[..., CommandResult]) -> Callable[..., CommandResult]:
    return lambda command, **kw: run(command.replace("sudo -n ", ""), **kw)


# --- local ----------------------------------------------------------------------------------

def test_local_adapter_files_commands_and_service(tmp_path: Path, reference: Inventory) -> None:
    host = Host(name="lab", address="127.0.0.1", platform="local",
                ssh=reference.hosts["motoko"].ssh)
    events: list[str] = []
    service = CallableService(restart_fn=lambda: events.append("restart"),
                              is_running_fn=lambda: True, logs_fn=lambda n: f"last {n} lines")
    adapter = adapter_for(host, local_root=tmp_path, local_services={"vllm": service})
    assert isinstance(adapter, LocalAdapter) and adapter.connection_count == 0
    adapter.put("/opt/vllmfleet/x.yaml", b"a: 1\n", mode=0o600)
    on_disk = tmp_path / "lab" / "opt" / "vllmfleet" / "x.yaml"
    assert on_disk.read_bytes() == b"a: 1\n" and on_disk.stat().st_mode & 0o777 == 0o600
    assert os.listdir(on_disk.parent) == ["x.yaml"]
    assert adapter.read("/opt/vllmfleet/x.yaml") == b"a: 1\n"
    assert adapter.read("/opt/vllmfleet/none") is None
    adapter.put("C:/vllmfleet/y.json", b"{}")
    assert (tmp_path / "lab" / "C" / "vllmfleet" / "y.json").read_bytes() == b"{}"
    result = adapter.run("cat opt/vllmfleet/x.yaml; exit 4", check=False)
    assert (result.exit_code, result.stdout) == (4, "a: 1\n")
    with pytest.raises(HostError, match=r"lab: command failed \(exit 4\)"):
        adapter.run("echo boom >&2; exit 4")
    adapter.restart()
    assert events == ["restart"]
    assert adapter.status().running and adapter.logs(lines=5) == "last 5 lines"
    adapter.remove("/opt/vllmfleet/x.yaml")
    assert not on_disk.exists()


def test_local_adapter_without_service_or_root(tmp_path: Path, reference: Inventory) -> None:
    host = Host(name="lab", address="127.0.0.1", platform="local",
                ssh=reference.hosts["motoko"].ssh)
    with pytest.raises(HostError, match="pass local_root"):
        adapter_for(host)
    adapter = adapter_for(host, local_root=tmp_path)
    with pytest.raises(HostError, match=r"no local vllm service.*inv fleet\.up"):
        adapter.restart()


def test_local_service_failure_becomes_host_error(tmp_path: Path, reference: Inventory) -> None:
    host = Host(name="lab", address="127.0.0.1", platform="local",
                ssh=reference.hosts["motoko"].ssh)

    def crash() -> None:
        raise RuntimeError("emulator exited with 1: CUDA out of memory")

    adapter = adapter_for(host, local_root=tmp_path, local_services={
        "vllm": CallableService(restart_fn=crash, is_running_fn=lambda: False)})
    with pytest.raises(HostError, match="lab: restarting the local vllm failed: RuntimeError: "
                                        "emulator exited with 1: CUDA out of memory"):
        adapter.restart()

"""Names and text in the inventory: one host-name rule (inventory, ``--host``, backups), no
control or invisible character in any string, a plain systemd unit name and clean absolute
paths for what is rendered into the proxy's unit (issues 9 and 12)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.conftest import REFERENCE
from vllmfleet.deploy import backups
from vllmfleet.errors import BackupError, InventoryError
from vllmfleet.inventory import load
from vllmfleet.inventory.load import MAX_BYTES, parse
from vllmfleet.inventory.names import HOST_NAME, hidden_character, path_problem

TEXT = REFERENCE.read_text(encoding="utf-8")


def refused(old: str, new: str) -> str:
    assert old in TEXT, old
    with pytest.raises(InventoryError) as caught:
        parse(TEXT.replace(old, new, 1))
    return str(caught.value)


@pytest.mark.parametrize("name", ["Wintermute", "WINTERMUTE", "winter.mute", "-wm", "_wm",
                                  "wm\u200b", "w m", "wïntermute"])
def test_a_host_name_outside_the_one_rule_is_refused(name: str) -> None:
    assert not HOST_NAME.fullmatch(name)
    message = refused("\n  wintermute:", f"\n  {name!r}:")
    assert "cannot be used" in message or "character" in message


@pytest.mark.parametrize("name", ["wintermute", "gpu-01", "gpu_01", "0box"])
def test_every_valid_inventory_host_name_can_name_a_backup_folder(tmp_path: Path,
                                                                  name: str) -> None:
    assert HOST_NAME.fullmatch(name)
    assert backups.backup_ids(tmp_path, name) == []  # accepted as a folder name


@pytest.mark.parametrize("name", ["Wintermute", "a.b", ".", ".."])
def test_the_backup_store_uses_the_same_rule(tmp_path: Path, name: str) -> None:
    with pytest.raises(BackupError, match="cannot name a backup folder"):
        backups.backup_ids(tmp_path, name)


HIDDEN = {"\n": "U+000A", "\r": "U+000D", "\0": "U+0000", "\t": "U+0009", "\x1b": "U+001B",
          "\u200b": "U+200B", "\u202e": "U+202E", "\u2066": "U+2066", "\ufeff": "U+FEFF",
          "\u2028": "U+2028", "\x85": "U+0085", "\u00ad": "U+00AD"}


@pytest.mark.parametrize("char", list(HIDDEN), ids=list(HIDDEN.values()))
def test_hidden_characters_are_named(char: str) -> None:
    assert (hidden_character(f"ab{char}c") or "").startswith(HIDDEN[char])


@pytest.mark.parametrize(("char", "named"), [
    ("\n", "U+000A (LINE FEED)"), ("\r", "U+000D (CARRIAGE RETURN)"), ("\t", "U+0009 (TAB)"),
    ("\0", "U+0000 (NUL)"), ("\x1b", "U+001B"), ("\u200b", "U+200B (ZERO WIDTH SPACE)"),
    ("\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE)"), ("\u0378", "U+0378")])
def test_a_hidden_character_is_named_exactly(char: str, named: str) -> None:
    assert hidden_character(f"a{char}b{char}") == named


def test_plain_text_has_no_hidden_character() -> None:
    assert hidden_character("qwen2.5-7b-armitage Ärger 東京 /opt/x") is None


@pytest.mark.parametrize(("old", "new", "field"), [
    ("address: wintermute.lan", 'address: "wintermute.lan\\r"', "hosts.wintermute.address"),
    ("qwen2.5-7b-armitage:", '"qwen2.5-7b\\u202e-armitage":', "aliases.qwen2.5-7b"),
    ("systemd_unit: litellm\n", 'systemd_unit: "litellm\\nExecStartPre=+/bin/sh"\n',
     "proxy.systemd_unit"),
    ("env_file: /etc/litellm/litellm.env", 'env_file: "/etc/litellm/litellm.env\\0"',
     "proxy.env_file"),
    ("systemd_unit: litellm\n",
     'systemd_unit: litellm\n  litellm_command: "/opt/x\\nExecStartPre=+/bin/sh -c id"\n',
     "proxy.litellm_command"),
])
def test_a_control_character_in_any_string_names_the_field(old: str, new: str,
                                                           field: str) -> None:
    message = refused(old, new)
    assert field in message and "character U+" in message


@pytest.mark.parametrize(("value", "why"), [
    ("litellm.service", "write systemd_unit: litellm"),
    ("lite llm", "not a plain unit name"),
    ("../litellm", "not a plain unit name"),
    ("litellm@1", "not a plain unit name"),
])
def test_systemd_unit_is_a_plain_unit_name(value: str, why: str) -> None:
    message = refused("systemd_unit: litellm\n", f"systemd_unit: {value!r}\n")
    assert "proxy.systemd_unit" in message and why in message


@pytest.mark.parametrize("key", ["litellm_command", "config_path", "env_file"])
@pytest.mark.parametrize(("value", "why"), [
    ("bin/litellm", "not an absolute path"),
    ("/opt/lite llm", "holds ' '"),
    ("/opt/%h/litellm", "holds '%'"),
    ("/opt/$HOME/litellm", "holds '$'"),
    ("/opt/x;id", "holds ';'"),
    ("/opt/../bin/litellm", "not a clean path"),
    ("/opt//litellm", "not a clean path"),
    ("/opt/litellm/", "not a clean path"),
])
def test_paths_in_the_unit_are_absolute_and_clean(key: str, value: str, why: str) -> None:
    old = next((line for line in TEXT.splitlines(keepends=True)
                if line.startswith(f"  {key}: ")), "  systemd_unit: litellm\n")
    new = f"  {key}: {value!r}\n" if key in old else f"{old}  {key}: {value!r}\n"
    message = refused(old, new)
    assert f"proxy.{key}" in message and why in message


def test_the_reference_paths_are_clean() -> None:
    for path in ("/opt/litellm/venv/bin/litellm", "/etc/litellm/config.yaml",
                 "/etc/litellm/litellm.env"):
        assert path_problem(path) is None


# --- the file itself: special files and a size cap ------------------------------------------

def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fleet.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _catch(outcome, fifo), daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # unblock the reader, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("load() waits on a FIFO")
    assert "a FIFO, not a regular file" in str(outcome[0])


def _catch(outcome: list[BaseException], path: Path) -> None:
    try:
        load(path)
    except BaseException as exc:
        outcome.append(exc)


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a device"), ("/dev/null", "a device")])
def test_a_device_is_refused(path: str, kind: str) -> None:
    with pytest.raises(InventoryError, match=f"this is {kind}, not a regular file"):
        load(path)


def test_a_file_over_the_cap_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "fleet.yaml"
    with open(big, "wb") as out:
        out.truncate(MAX_BYTES + 1)
    with pytest.raises(InventoryError, match=r"the file is 4\.0 MiB; an inventory is at most 4"):
        load(big)


def test_a_file_at_the_cap_is_read(tmp_path: Path) -> None:
    padded = tmp_path / "fleet.yaml"
    padded.write_text(TEXT + "#" * (MAX_BYTES - len(TEXT.encode()) - 1) + "\n",
                      encoding="utf-8")
    assert padded.stat().st_size == MAX_BYTES
    assert load(padded).hosts

"""What a dropped SSH connection tells the user: only a cut upload (to a temporary file) may
say "no file was replaced, run it again"; a cut command's effect is unknown."""

from __future__ import annotations

from typing import Any

import pytest

from vllmfleet.errors import HostError
from vllmfleet.remote import SSHTransport


class Dropped:
    """A connection (and SFTP session) that has just gone away."""

    is_connected = False

    def run(self, command: str, **_: Any) -> None:
        raise EOFError()

    def open(self, path: str, mode: str) -> None:
        raise EOFError()

    def close(self) -> None: ...


@pytest.fixture
def ssh(monkeypatch: pytest.MonkeyPatch) -> SSHTransport:
    transport = SSHTransport(host="wintermute", address="127.0.0.1", port=2222, user="ops")
    dropped = Dropped()
    monkeypatch.setattr(transport, "_connection", lambda: dropped)
    monkeypatch.setattr(transport, "_sftp_client", lambda: dropped)
    return transport


def test_a_cut_command_says_its_effect_is_unknown(ssh: SSHTransport) -> None:
    with pytest.raises(HostError) as caught:
        ssh.run("sudo -n systemctl restart litellm")
    message = str(caught.value)
    assert "was cut" in message and "no file was replaced" not in message
    assert "unknown" in message and "check the host" in message


def test_a_cut_upload_says_nothing_was_replaced(ssh: SSHTransport) -> None:
    with pytest.raises(HostError, match="no file was replaced, run it again"):
        ssh.upload("/opt/vllmfleet/.vllm-compose.yaml.abc.stage", b"x")


def test_a_cut_read_changed_nothing(ssh: SSHTransport) -> None:
    with pytest.raises(HostError) as caught:
        ssh.download("/opt/vllmfleet/vllm-compose.yaml")
    assert "was cut" in str(caught.value) and "reading changed nothing" in str(caught.value)

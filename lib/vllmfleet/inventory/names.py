"""What names and text in the inventory may look like: one rule each, used everywhere.

- :data:`HOST_NAME`: a host's name becomes task names (``deploy.<host>``), backup folders
  (``backups/<host>/``) and rendered folders, so inventory, ``--host`` and the backup store
  share this one pattern: lower-case letters, digits, ``-`` and ``_``, starting with a letter
  or digit. (Upper case passed the inventory once and then could not name a backup folder.)
- :func:`hidden_character`: no inventory string (key or value) may hold a control character
  (CR, LF, NUL, TAB, ESC …), an invisible format character (zero-width space, the bidi
  overrides that make ``abc`` display as ``cba``, a byte-order mark) or a line/paragraph
  separator. Each is either a way to smuggle a second line into a rendered file (a newline in
  ``proxy.litellm_command`` once rendered an ``ExecStartPre=+…`` line that systemd runs as
  root) or a name that looks like another one.
- :data:`UNIT_NAME` and :func:`path_problem`: what the proxy's systemd unit may be called
  and what an absolute path rendered into the unit must look like.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata

__all__ = ["HOST_NAME", "HOST_NAME_HELP", "UNIT_NAME", "hidden_character", "path_problem"]

HOST_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
HOST_NAME_HELP = ("use lower-case letters, digits, '-' and '_', starting with a letter or digit "
                  "(the name becomes task names such as deploy.<host> and backup folders)")

#: A plain systemd unit name without its ``.service`` suffix (the renderer adds it).
UNIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

# Unicode general categories that have no business in a name, path or command:
# Cc control, Cf format (zero-width, bidi controls, BOM, soft hyphen), Zl/Zp separators,
# Co private use, Cs surrogates (from surrogateescape), Cn unassigned.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})


def hidden_character(text: str) -> str | None:
    """The first character of ``text`` that must not be in inventory text, as ``U+200B (ZERO
    WIDTH SPACE)``; None when there is none."""
    for char in text:
        if unicodedata.category(char) in _HIDDEN:
            name = unicodedata.name(char, "") or {"\n": "LINE FEED", "\r": "CARRIAGE RETURN",
                                                    "\t": "TAB", "\0": "NUL"}.get(char, "")
            return f"U+{ord(char):04X}" + (f" ({name})" if name else "")
    return None


# what a clean absolute path may hold: no spaces or quotes (systemd splits ExecStart= on
# spaces), no % (systemd specifiers), no $ (variable expansion), no shell metacharacters
_PATH = re.compile(r"/[A-Za-z0-9._+@/-]*")


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be rendered into the systemd unit as an absolute path; None when it
    can (``/opt/litellm/venv/bin/litellm``)."""
    if not path.startswith("/"):
        return "it is not an absolute path (it must start with /)"
    if not _PATH.fullmatch(path):
        bad = next((c for c in path if not re.fullmatch(r"[A-Za-z0-9._+@/-]", c)), "?")
        return (f"it holds {bad!r}; a path in the unit file may only hold letters, digits and "
                "/ . _ - + @")
    if posixpath.normpath(path) != path or "//" in path:
        return f"it is not a clean path (write {posixpath.normpath(path)})"
    return None

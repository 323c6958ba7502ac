"""The emulator's tokenizer: deterministic, pure Python, counts English like tiktoken cl100k.

LiteLLM counts input tokens with tiktoken's ``cl100k_base`` for models it does not know,
so the emulator must count ordinary text about as tiktoken does, or the proxy and the
backend disagree near the limits. The text is split with cl100k's own pre-tokenizer
pattern (contractions, letter runs with one leading space or punctuation mark, digit
groups of at most three, punctuation runs, whitespace runs) and each piece becomes:

- a letter run of at most 12 letters: one token (cl100k has most English words whole);
  a longer run: chunks of 6 letters (the first chunk keeps the leading space);
- digits: one token per group of 1-3 (exactly cl100k's rule);
- punctuation: chunks of 4 characters; whitespace: chunks of 8;
- non-ASCII text: chunks of 2 characters (CJK and emoji cost more than a word).

So common English prose counts at one token per word and per punctuation mark — a little
*under* tiktoken on rare words, which keeps the proxy's count at or above the backend's.

Token ids: special tokens and the filler words of generated text have fixed small ids;
every other piece gets ``crc32``-derived id, the same in every process. :func:`decode`
knows the pieces this process has seen (the texts it encoded or generated) and rejects
ids it never issued. ``decode(encode(text)) == text`` always holds.

The chat template (Llama 3 style, see :func:`chat_ids`) costs a fixed number of tokens:
1 for the start of the conversation, ``5 + role tokens + content tokens`` per message
(4 markers and the blank line; a standard role is 1 token) and 4 for the generation
prompt — so ``[{"role": "user", "content": "Hello there"}]`` is 1 + 8 + 4 = 13 tokens.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
HEADER_GAP = "\n\n"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, EOS, START_HEADER, END_HEADER, EOT)

# The generated text: each entry is exactly one token, also when concatenated.
FILLER: tuple[str, ...] = (
    "The", " emulated", " model", " answers", " with", " plain", " filler", " words",
    " so", " that", " every", " token", " count", " stays", " exact", ".", " It",
    " streams", " one", " word", " per", " token", ",", " and", " the", " usage",
    " numbers", " match", " what", " tokenize", " reports", ".", " Nothing", " here",
    " means", " anything", ";", " it", " only", " fills", " time", " and", " space", ".",
)

MAX_WORD = 12
#: The longest token in characters (vLLM's ``max_chars_per_token``: the longest vocabulary
#: entry, special tokens included), which bounds a prompt's characters before tokenizing.
MAX_CHARS_PER_TOKEN = max(len(s) for s in SPECIAL_TOKENS)
WORD_CHUNK = 6
PUNCT_CHUNK = 4
SPACE_CHUNK = 8
OTHER_CHUNK = 2
_HASH_BASE = 1024
_HASH_SPACE = (1 << 31) - _HASH_BASE
_MAX_REMEMBERED = 200_000  # pieces and words kept for decoding; bounds memory

# cl100k_base's pre-tokenizer, with \p{L} written as [^\W\d_] for Python's re.
_PRETOKEN = re.compile(
    r"'(?i:[sdmt]|ll|ve|re)"
    r"|(?:[^\r\n\w]|_)?[^\W\d_]+"
    r"|\d{1,3}"
    r"| ?(?:[^\s\w]|_)+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+"
)
_SPECIAL = re.compile("(" + "|".join(re.escape(s) for s in SPECIAL_TOKENS) + ")")

_FIXED: dict[str, int] = {}
for _piece in (*SPECIAL_TOKENS, HEADER_GAP, *FILLER, " " + FILLER[0]):
    _FIXED.setdefault(_piece, len(_FIXED))
_PIECES: dict[int, str] = {i: p for p, i in _FIXED.items()}


def _chunks(text: str, size: int, *, lead: int = 0) -> Iterable[str]:
    """``text`` in pieces of ``size`` characters; the first may carry ``lead`` more."""
    first = size + lead
    yield text[:first]
    for i in range(first, len(text), size):
        yield text[i:i + size]


def _split(pretoken: str) -> Iterable[str]:
    if not pretoken.isascii():
        return _chunks(pretoken, OTHER_CHUNK)
    head = pretoken[0]
    if pretoken[-1].isalpha():
        lead = 0 if head.isalpha() else 1
        if len(pretoken) - lead <= MAX_WORD:
            return (pretoken,)
        return _chunks(pretoken, WORD_CHUNK, lead=lead)
    if pretoken.isdigit():
        return (pretoken,)
    if pretoken.isspace():
        return _chunks(pretoken, SPACE_CHUNK)
    return _chunks(pretoken, PUNCT_CHUNK)


def _id(piece: str) -> int:
    fixed = _FIXED.get(piece)
    if fixed is not None:
        return fixed
    token = _HASH_BASE + zlib.crc32(piece.encode("utf-8")) % _HASH_SPACE
    if len(_PIECES) < _MAX_REMEMBERED:
        _PIECES.setdefault(token, piece)
    return token


_WORDS: dict[str, tuple[int, ...]] = {}  # pre-token → ids; words repeat, so this pays


def _word(pretoken: str) -> tuple[int, ...]:
    ids = _WORDS.get(pretoken)
    if ids is None:
        ids = tuple(_id(piece) for piece in _split(pretoken))
        if len(_WORDS) < _MAX_REMEMBERED:
            _WORDS[pretoken] = ids
    return ids


@lru_cache(maxsize=256)
def _encode_plain(text: str) -> tuple[int, ...]:
    ids: list[int] = []
    for pretoken in _PRETOKEN.findall(text):
        ids.extend(_WORDS.get(pretoken) or _word(pretoken))
    return tuple(ids)


def encode(text: str, *, add_special_tokens: bool = False) -> list[int]:
    """Token ids of ``text``; special-token markers in the text count as one token each.

    ``add_special_tokens`` prepends the begin-of-text token, as vLLM's tokenizer does for
    a completions prompt or a ``/tokenize`` request with ``prompt``.
    """
    ids: list[int] = [_FIXED[BOS]] if add_special_tokens else []
    for part in _SPECIAL.split(text):
        if part in _FIXED and part in SPECIAL_TOKENS:
            ids.append(_FIXED[part])
        elif part:
            ids.extend(_encode_plain(part))
    return ids


def count(text: str) -> int:
    """Number of tokens of ``text`` (no special tokens added)."""
    return len(encode(text))


class UnknownTokenError(ValueError):
    """A token id this process never issued (it cannot be decoded)."""

    def __init__(self, token: int) -> None:
        self.token = token
        super().__init__(
            f"token id {token} was never produced by this emulator's tokenizer; it can "
            "only detokenize ids that its /tokenize, prompts or generated text issued")


def decode(ids: Sequence[int]) -> str:
    """The text of ``ids``; raises :class:`UnknownTokenError` for an id never issued."""
    out = []
    for token in ids:
        piece = _PIECES.get(token)
        if piece is None:
            raise UnknownTokenError(token)
        out.append(piece)
    return "".join(out)


def filler(n: int) -> list[str]:
    """The first ``n`` pieces of generated text; each is exactly one token."""
    size = len(FILLER)
    pieces = [FILLER[i % size] for i in range(n)]
    for i in range(size, n, size):  # later rounds: " The", not ".The" (one pre-token)
        pieces[i] = " " + FILLER[0]
    return pieces


class ChatTemplateError(ValueError):
    """The messages cannot be rendered (bad shape, or conflicting options)."""


def message_text(content: Any) -> str:
    """The text of a message's ``content``: a string, null, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" \
                    or not isinstance(part.get("text"), str):
                raise ChatTemplateError(
                    "the emulator understands content parts of type 'text' only, "
                    f"e.g. {{\"type\": \"text\", \"text\": \"...\"}}; got {part!r:.80}")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ChatTemplateError(f"message content must be a string or a list of parts, "
                            f"got {type(content).__name__}")


def chat_ids(messages: Sequence[Any], *, add_generation_prompt: bool = True,
             continue_final_message: bool = False) -> list[int]:
    """Token ids of ``messages`` rendered with the emulator's (Llama 3 style) chat template.

    Per message: ``<|start_header_id|> role <|end_header_id|> \\n\\n content <|eot_id|>``;
    the generation prompt is the same header for ``assistant``. With
    ``continue_final_message`` the last message stays open (no ``<|eot_id|>``).
    """
    if add_generation_prompt and continue_final_message:
        raise ChatTemplateError("Cannot set both `continue_final_message` and "
                                "`add_generation_prompt` to True.")
    if not isinstance(messages, list) or not messages:
        raise ChatTemplateError("messages must be a non-empty list of "
                                "{\"role\": ..., \"content\": ...} objects")
    ids = [_FIXED[BOS]]
    last = len(messages) - 1
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ChatTemplateError(f"messages[{i}] must be an object with a string 'role'")
        ids.extend(_header(message["role"]))
        ids.extend(encode(message_text(message.get("content"))))
        if not (continue_final_message and i == last):
            ids.append(_FIXED[EOT])
    if add_generation_prompt:
        ids.extend(_header("assistant"))
    return ids


def _header(role: str) -> list[int]:
    return [_FIXED[START_HEADER], *encode(role), _FIXED[END_HEADER], _FIXED[HEADER_GAP]]

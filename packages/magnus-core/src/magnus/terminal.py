"""Text shown on a terminal: what a user wrote cannot drive the terminal or forge a line.

Exception messages, step and branch names (a map's items are named by their values), tags,
parameters and run logs are printed: progress lines, the ``Error:`` line, ``magnus runs``.
Written raw, an escape sequence in one of them can recolour the terminal, set its title or move
the cursor; a newline or carriage return can forge a line (``run x SUCCESS``); a bidirectional
override (U+202E) or an invisible character makes text read as something else. Every printer
passes such text through :func:`for_terminal`, which shows each of those characters escaped as
Python writes it (``\\x1b``, ``\\n``, ``\\u202e``): control characters (Unicode ``Cc``: C0, DEL,
C1), format characters (``Cf``: bidirectional controls, zero-width characters), lone surrogates
(``Cs``) and line and paragraph separators (``Zl``, ``Zp``). Everything else, letters of every
script and emoji included, is shown as written; text with none of them is returned as it is.
"""

from __future__ import annotations

import unicodedata

_ESCAPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def for_terminal(text: str) -> str:
    """``text`` with the characters that would drive a terminal or hide text escaped (see the module)."""
    if text.isprintable():  # every escaped character is one str.isprintable() refuses: the common case
        return text
    return "".join(_escape(character) if _escaped(character) else character for character in text)


def json_for_terminal(text: str) -> str:
    """JSON ``text`` with those characters written as JSON escapes (``\\u202e``): the same JSON, shown safely.

    Raw, they can only stand inside JSON strings (JSON escapes C0 controls there itself), where
    ``\\uXXXX`` means the same character; the whitespace between values is kept.
    """
    if text.isprintable():
        return text
    return "".join(
        _json_escape(character) if _escaped(character) and character not in _SHORT else character for character in text
    )


def _escaped(character: str) -> bool:
    return unicodedata.category(character) in _ESCAPED


def _escape(character: str) -> str:
    code = ord(character)
    if character in _SHORT:
        return _SHORT[character]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _json_escape(character: str) -> str:
    code = ord(character)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

"""Text from specs, answers and files, made safe and short enough to show on a terminal
or in a log.

Control, format and separator characters (ESC, BEL, NUL, C1 codes, bidi overrides, line
breaks) are shown as Python escapes (``\\x1b``, ``\\u202e``), so nothing a spec author or
a gateway writes can move the cursor, recolour the screen or hide text. A value quoted in
a message is cut to 60 characters or so: a 5000-digit answer field must not make a
10,000-character error line.
"""

from __future__ import annotations

# Characters of a quoted value, about: what an error line can spare beside the file,
# line, plan, field and what is wrong, and stay under 200.
LIMIT = 60


def printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char == " "
                   else char.encode("unicode_escape").decode("ascii") for char in text)


def quoted(value: object, limit: int = LIMIT) -> str:
    """A value taken from input, for a message: text as ``repr`` writes it (in quotes,
    what a terminal would obey escaped), anything else as ``str``; cut by ``cut``.
    Replaces ``{value!r}`` in messages: the same text for short text."""
    if isinstance(value, int) and not isinstance(value, bool) and \
            value.bit_length() > 4 * limit:  # str() refuses over 4300 digits
        return f"a number of more than {limit} digits"
    if isinstance(value, str):
        return cut(repr(value[:limit + 1]), limit, len(value))
    return cut(printable(str(value)), limit)


def cut(shown: str, limit: int = LIMIT, length: int | None = None) -> str:
    """``shown`` (a value as a message writes it: quoted or bare) cut to about ``limit``
    characters with "…", its closing quote kept, saying how long the value was
    (``length``, or that of ``shown`` without its quotes)."""
    quote = shown[0] if len(shown) > 1 and shown[0] in "'\"" and shown[-1] == shown[0] else ""
    full = len(shown) - 2 * len(quote) if length is None else length
    if len(shown) <= limit + 2 * len(quote) and full <= limit:
        return shown
    return f"{shown[:limit - 20]}…{quote} ({full} characters)"

"""Text from specs, answers and files, made safe to show on a terminal or in a log.

Control, format and separator characters (ESC, BEL, NUL, C1 codes, bidi overrides, line
breaks) are shown as Python escapes (``\\x1b``, ``\\u202e``), so nothing a spec author or
a gateway writes can move the cursor, recolour the screen or hide text.
"""

from __future__ import annotations


def printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char == " "
                   else char.encode("unicode_escape").decode("ascii") for char in text)

"""Text from files and requests made safe to print on a terminal.

Why: a file name, a class name or a field of a hostile model.json can hold control characters
(`ESC[2J` clears the screen, a newline forges an output row) or bidi overrides (a name that
reads as something else); every such text fmnist prints passes through `printable`.
"""

from __future__ import annotations

# Bidirectional-text overrides can make a file name read as something else in a terminal.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str, keep_lines: bool = False) -> str:
    """`text` with backslashes, control characters and bidi overrides escaped (`\\n`, `\\t`,
    `\\x1b`, `\\u202e`), so a file name can neither break a TSV row nor drive the terminal,
    and still reads as its own text (issue 11 #22: escape, never strip). `keep_lines` leaves
    line breaks as they are, for messages that fmnist itself writes on several lines."""
    out = []
    for char in text:
        code = ord(char)
        if char == "\\":
            out.append("\\" if keep_lines else "\\\\")
        elif keep_lines and char == "\n":
            out.append(char)
        elif char in "\t\n\r":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r"}[char])
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif char in _BIDI:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)

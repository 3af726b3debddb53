"""Text that did not come from our code, made safe to show: on the screen, in a log, in a file.

LLM answers, parameter names a model typed, plan reasons, decision notes and file contents
are data. Shown raw, an escape sequence inside them would drive the trader's terminal (set
its title, write its clipboard through OSC 52, move the cursor) and a bidirectional
override would make a line read differently from what it holds. `visible()` keeps every
character a person should read and turns the rest into a visible escape (`\\x1b`, `\\x9b`,
`\\u202e`), so the text still says what it held and nothing acts on it. Markup is the
other half: text reaches Textual and Rich as `rich.text.Text` (see `plain()`), never as a
markup string, so `[link=…]` or `[/]` is shown as typed.

Every pane, modal, notification and log line that carries outside text goes through here.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 (0x9b is a one-byte CSI), the bidi embeddings,
# overrides and isolates, the implicit marks, and the line and paragraph separators
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_LINE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: Any, *, one_line: bool = False) -> str:
    """`text` (str() of anything) with every control, escape and bidi character shown as a visible escape.

    Tabs and newlines are kept unless `one_line`, where they are escaped too (a table cell,
    a log line, a title).
    """
    s = text if isinstance(text, str) else str(text)
    return (_UNSAFE_IN_LINE if one_line else _UNSAFE).sub(_escape, s)


class VisibleFormatter(logging.Formatter):
    """Log lines carry LLM text, reasons and notes: no control character reaches conductor.log raw."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))

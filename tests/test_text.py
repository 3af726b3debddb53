"""The one sanitiser for outside text (engine/text.py), over a table of hostile strings."""

from __future__ import annotations

import re

import pytest

from engine.text import visible

# what an attacker (or a confused model) puts in a reason, a parameter name or a note
HOSTILE = {
    "osc0-title": "\x1b]0;PWNED-TITLE\x07",
    "osc52-clipboard": "\x1b]52;c;UFdORUQtQ0xJUEJPQVJE\x07",
    "osc8-link": "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "csi-clear": "\x1b[2J\x1b[H",
    "csi-colour": "\x1b[31mred\x1b[0m",
    "c1-csi": "\x9b2J",
    "c1-osc": "\x9d0;PWNED\x9c",
    "bidi-override": "payoff \u202e0.1\u202c ok",
    "bidi-isolate": "\u2067evil\u2069",
    "rich-markup": "[link=https://evil.example]click[/link] [bold]x[/] [/]",
    "nul": "a\x00b",
    "del": "a\x7fb",
    "backspace": "safe\x08\x08\x08\x08PWND",
    "carriage-return": "approve\rveto",
    "line-separator": "a\u2028b",
}
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_no_control_byte_survives_and_what_it_held_stays_readable(text):
    shown = visible(text)
    assert not RAW.search(shown), repr(shown)
    assert not RAW.search(visible(text, one_line=True))
    for c in text:
        if RAW.match(c):
            assert f"\\x{ord(c):02x}" in shown or f"\\u{ord(c):04x}" in shown


def test_ordinary_text_is_left_alone_and_newlines_only_go_in_one_line_mode():
    text = "hit 0.41 < 0.48 — give trades more room: 0.25 → 0.3\n\tnext line, ünïcödé 👍"
    assert visible(text) == text
    assert visible(text, one_line=True) == text.replace("\n", "\\x0a").replace("\t", "\\x09")
    assert visible(42) == "42" and visible(None) == "None"

"""`c`: one agent message whole, its fields in the console's words (the files keep §6's Portuguese keys)."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from agents.messages import FIELD_LABELS
from engine.events import MessageEvent
from engine.text import visible


def _label(key: str) -> str:
    return FIELD_LABELS.get(key, key)


def message_lines(value: Any, indent: int = 0) -> list[Text]:
    """A message's fields, one per line, nested values indented; every key and value shown as data."""
    pad = "  " * indent
    out: list[Text] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = visible(_label(str(key)), one_line=True)
            if isinstance(item, dict | list) and item:
                out.append(Text(f"{pad}{name}:", style="bold"))
                out.extend(message_lines(item, indent + 1))
            else:
                out.append(Text.assemble((f"{pad}{name}: ", "bold"), _scalar(item)))
    elif isinstance(value, list):
        for n, item in enumerate(value, 1):
            if isinstance(item, dict | list) and item:
                out.append(Text(f"{pad}{n}.", style="bold"))
                out.extend(message_lines(item, indent + 1))
            else:
                out.append(Text.assemble(f"{pad}{n}. ", _scalar(item)))
    else:
        out.append(Text.assemble(pad, _scalar(value)))
    return out


def _scalar(value: Any) -> Text:
    if value is None or value == {} or value == []:
        return Text("—", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, float):
        return Text(f"{value:,.4g}")
    return Text(visible(str(value)))


class MessageScreen(ModalScreen[None]):
    """The conversation's messages, newest first: ← older, → newer, r the raw JSON as written, esc closes."""

    DEFAULT_CSS = """
    MessageScreen { align: center middle; }
    #message { width: 90%; max-width: 120; height: auto; max-height: 90%; border: thick $accent;
               background: $surface; padding: 1 2; }
    """
    BINDINGS = [
        Binding("left,h", "step(-1)", "older message", id="message.older"),
        Binding("right,l", "step(1)", "newer message", id="message.newer"),
        Binding("r", "raw", "raw JSON / readable", id="message.raw"),
        Binding("escape,c,q", "app.pop_screen", "close", id="message.close"),
    ]

    def __init__(self, messages: list[MessageEvent]) -> None:
        super().__init__()
        self.messages = messages
        self.at = len(messages) - 1
        self.raw = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="message"):
            yield Static(self.render_message(), id="message-body")

    def render_message(self) -> Text:
        if not self.messages:
            return Text("no agent message yet   esc close", style="dim")
        m = self.messages[self.at]
        head = Text.assemble(
            (f"{m.agent} ", "bold"), (f"({visible(m.provider, one_line=True)}) ", "dim"),
            f"segment {m.segment}, turn {m.turn} · {m.emitted_at}",
            (f"   message {self.at + 1} of {len(self.messages)}", "dim"),
        )
        if self.raw:
            body = [Text(visible(json.dumps(m.message, indent=2, ensure_ascii=False)))]
        else:
            body = message_lines(m.message)
        hint = Text("← older  → newer  r " + ("readable" if self.raw else "raw JSON") + "  esc close", style="dim")
        return Text("\n").join([head, Text(""), *body, Text(""), hint])

    def _show(self) -> None:
        self.query_one("#message-body", Static).update(self.render_message())

    def action_step(self, step: int) -> None:
        if self.messages:
            self.at = max(0, min(len(self.messages) - 1, self.at + step))
            self._show()

    def action_raw(self) -> None:
        self.raw = not self.raw
        self._show()

"""The status bar: the state first (what the conductor does or waits for), then progress, then the rest.

Two lines that never wrap. The first starts with the state — RUNNING, WAITING and on what,
PAUSED, FINISHED, FAILED and why, DEAD and the key that resumes it — so a trader reads it at
a glance at any width; when a line is too long for the terminal its least important parts
are shortened, then dropped (rate, baseline, windows fit, providers), never the state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from engine.session import ENDED_STATES
from engine.text import visible
from maestro_tui.feed import Mode
from maestro_tui.state import ConductorStatus, SessionView
from maestro_tui.widgets.panes import show_text

STATE_STYLE = {"waiting": "bold black on yellow", "paused": "bold black on yellow", "dead": "bold white on red",
               "failed": "bold white on red", "finished": "bold black on green", "running": "bold black on cyan",
               "replay": "bold black on magenta"}


@dataclass
class Part:
    """One piece of a status line: its forms from longest to shortest; `rank` 0 is never dropped."""

    forms: list[Text]
    rank: int = 0
    shown: int = 0  # index into forms


def _part(rank: int, *forms: str | Text, style: str = "") -> Part:
    texts = [f if isinstance(f, Text) else Text(visible(f, one_line=True), style=style) for f in forms]
    if rank:
        texts.append(Text())  # a part that may go goes last
    return Part(texts, rank)


def fit(parts: list[Part], width: int) -> Text:
    """The parts joined by two spaces, shortened then dropped (highest rank first) until they fit `width` cells.

    What still does not fit is cut at the end with an ellipsis: the first part is what is left.
    """
    def line() -> Text:
        return Text("  ").join(p.forms[p.shown] for p in parts if p.forms[p.shown].plain)

    text = line()
    while width > 0 and text.cell_len > width:
        shorter = [p for p in parts if p.shown < len(p.forms) - 1]
        if not shorter:
            break
        max(shorter, key=lambda p: p.rank).shown += 1
        text = line()
    text.no_wrap, text.overflow = True, "ellipsis"
    if width > 0 and text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    return text


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 2; background: $panel; color: $text; padding: 0 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._rate: list[tuple[float, int]] = []
        self._last: tuple[SessionView, Mode, ConductorStatus] | None = None
        self.dead = False  # the conductor died without saying so
        self.session_name = ""  # the session's folder: the name before session_config.json says it

    def on_resize(self) -> None:
        if self._last is not None:
            self.refresh_from(*self._last)

    def refresh_from(self, view: SessionView, mode: Mode, c: ConductorStatus) -> None:
        """Show the state and progress `c` (the feed's: conductor.json, or a replay's position) and the view's
        session; fitted to the bar's width. A replay says REPLAY, and the recorded session's state after it."""
        self._last = (view, mode, c)
        read_only = mode != "live"
        cfg = view.session_config
        done, total = view.tests_seen if c.tests_done is None else c.tests_done, c.tests_total
        now = time.monotonic()
        self._rate = [(t, n) for t, n in self._rate if now - t < 10] + [(now, done)]
        t0, n0 = self._rate[0]
        rate = (done - n0) / (now - t0) if now - t0 > 0.5 else 0.0
        state = c.state
        if mode == "replay":
            state = "replay"
        elif c.present and not c.alive() and state not in ENDED_STATES:
            state = "dead"
        self.dead = state == "dead"
        running = state == "running"  # a rate and an ETA only while tests run: elsewhere they only mislead

        badge = Text(f" {state.upper()} ", style=STATE_STYLE.get(state, "bold reverse"))
        detail = {
            "waiting": c.waiting_for or "",
            "starting": c.waiting_for or "",  # e.g. the kernels compiling on a first run
            "failed": c.error or "see conductor.log",
            "dead": "the conductor stopped without a word: see conductor.log" + ("" if read_only else ", R resumes"),
            "replay": f"recorded session: {c.state}",
        }.get(state, "")
        line1 = [
            Part([badge]),
            _part(0, detail, style="bold"),
            _part(1, f"tests {done}/{total}", f"{done}/{total}"),
            _part(3, f"seg {c.segment}/{c.segments}"),
            _part(1, f"pending plans: {len(view.pending())}" if view.pending() else "", style="bold yellow"),
            _part(2, f"failed tests: {view.tests_failed}" if view.tests_failed else "", style="red"),
            _part(2, f"corrupt lines skipped: {view.bad_lines}" if view.bad_lines else "",
                  f"corrupt: {view.bad_lines}" if view.bad_lines else "", style="red"),
        ]
        if running and rate > 0:
            eta = f" ETA {max(0, total - done) / rate:,.0f}s" if total > done else ""
            line1.append(_part(4, f"{rate:,.1f} tests/s{eta}", eta.strip(), style="dim"))

        badges, short = Text(), Text()
        for role in ("strategist", "critic"):
            p = visible(c.providers.get(role, "offline"), one_line=True)  # "offline (why)": the why may be an LLM's
            for t in (badges, short):
                t.append(f"{' ' if t else ''}{role}:", style="dim")
            if p.startswith("offline"):  # rule-based, from the start or since a failure: "offline (why)"
                badges.append("OFFLINE", style="bold reverse yellow")
                badges.append(p[len("offline"):], style="yellow")
                short.append("OFFLINE", style="bold yellow")
            else:
                badges.append(p, style="bold")
                short.append(p.split(":")[0], style="bold")
        base = cfg.baseline
        if base is not None and base.session:
            dsr = base.deflated_sharpe
            origin = f"base: {base.session} {base.config_id or ''}" + ("" if dsr is None else f" DSR {dsr:.2f}")
            origins = [origin, f"base: {base.session}"]
        else:
            origins = ["base: defaults" if cfg.present else ""]
        windows, fitted = cfg.windows, ""
        if windows is not None and windows.reuse:
            fitted = f"REUSED windows: {windows.available} for {windows.segments * windows.tests} tests"
        elif windows is not None and (windows.segments, windows.tests) != (windows.asked_segments, windows.asked_tests):
            fitted = f"fitted to {windows.available} windows"
        line2 = [
            _part(0, cfg.session_id or c.session_id or self.session_name, style="bold"),
            _part(1, "READ-ONLY" if mode == "read-only" else "", style="bold red"),
            _part(1, f"approval:{c.approval}"),
            _part(3, badges, short),
            _part(2, f"LLM {c.llm_calls} calls ${c.llm_cost_usd:.4f}" if c.llm_calls else "",
                  f"LLM ${c.llm_cost_usd:.2f}" if c.llm_calls else "", style="cyan"),
            _part(2, fitted, style="bold yellow" if windows is not None and windows.reuse else "yellow"),
            _part(4, *origins, style="dim"),
        ]
        width = self.content_size.width
        show_text(self, Text("\n").join([fit(line1, width), fit(line2, width)]))

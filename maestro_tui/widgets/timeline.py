"""A replay's timeline: where it is in the session, its segments and its plans."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from maestro_tui.replay import ReplayFeed
from maestro_tui.widgets.panes import show_text


def clock_text(seconds: float) -> str:
    """`+0:04:07`: time since the session's first line."""
    s = int(max(0.0, seconds))
    return f"+{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class TimelineBar(Static):
    """Position in the session, segment starts (│) and plans/decisions (·)."""

    DEFAULT_CSS = "TimelineBar { height: 1; background: $panel; }"

    def show(self, feed: ReplayFeed) -> None:
        width = max(20, (self.size.width or 100) - 48)
        n = max(1, len(feed.timeline))
        cells = ["─"] * width
        for pos in feed.plan_marks:
            cells[min(width - 1, pos * width // n)] = "·"
        for pos in feed.segment_marks:
            cells[min(width - 1, pos * width // n)] = "│"
        here = min(width - 1, feed.position * width // n)
        bar = Text("".join(cells[:here]), style="bold cyan")
        bar.append("●", style="bold yellow")
        bar.append("".join(cells[here + 1:]), style="dim")
        elapsed = feed.clock - feed.first
        speed = "instant" if feed.speed == float("inf") else f"×{feed.speed:g}"
        state = "▶" if feed.playing else "⏸"
        show_text(self, Text.assemble((f" {state} {speed:>7s} {clock_text(elapsed)} ", "bold"), bar,
                                      (f" {feed.position}/{len(feed.timeline)}", "dim")))

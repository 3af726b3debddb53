"""Replay: the live console fed by the same files on a virtual clock (DESIGN.md §2).

The session's items are ordered by their `emitted_at` times; the clock releases them as
it passes, at ×1 … ×1000 or instantly. Seeking folds items 0..k into a fresh SessionView,
so after any jump every pane shows the session as it stood at that moment.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from maestro_tui.ingest import SessionFeed
from maestro_tui.state import Item

SPEEDS = (1, 10, 100, 1000, float("inf"))


def _seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Stamped:
    at: float  # seconds, wall clock of the original run
    item: Item


class ReplayFeed:
    """A SessionFeed's items on a virtual clock; `drain` releases what the clock has passed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        source = SessionFeed(self.root, eager_scores=False)
        source.scan()
        items = source.drain(10**9)
        stamped: list[Stamped] = []
        last = 0.0
        for item in items:
            if item.kind == "conductor":
                continue  # the status comes from the replay itself
            at = self._time_of(item)
            if at is None:
                at = last
            stamped.append(Stamped(at, item))
            last = max(last, at)
        # stable: items written at the same moment keep their file order
        self.timeline = sorted(stamped, key=lambda s: s.at)
        self.first = self.timeline[0].at if self.timeline else 0.0
        self.end = self.timeline[-1].at if self.timeline else 0.0
        self.position = 0  # items released so far
        self.clock = self.first
        self.playing = False
        self.speed_index = 1
        self._last_wall = time.monotonic()
        self.items: list[Item] = []  # what SessionFeed callers read for pending work; empty here

    @staticmethod
    def _time_of(item: Item) -> float | None:
        p = item.payload
        if item.kind == "config":
            return _seconds(p["created_at"]) if "created_at" in p else None
        if item.kind == "test":
            # the folder appears when the conductor renames it in; its mtime is that moment
            try:
                return p.scores_path.parent.stat().st_mtime if p.scores_path else None
            except OSError:
                return None
        if isinstance(p, dict) and "emitted_at" in p:
            return _seconds(p["emitted_at"])
        return None

    # ------------------------------------------------------------ the clock

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    def faster(self, step: int) -> None:
        self.speed_index = max(0, min(len(SPEEDS) - 1, self.speed_index + step))

    def drain(self, limit: int) -> list[Item]:
        """Items the clock has passed since the last call (at most `limit`)."""
        now = time.monotonic()
        if self.playing:
            self.clock = self.end if self.speed == float("inf") else self.clock + (now - self._last_wall) * self.speed
            if self.clock >= self.end:
                self.clock = self.end
        self._last_wall = now
        out = []
        while self.position < len(self.timeline) and self.timeline[self.position].at <= self.clock and len(out) < limit:
            out.append(self.timeline[self.position].item)
            self.position += 1
        if self.position >= len(self.timeline):
            self.playing = False
        return out

    def seek(self, position: int) -> list[Item]:
        """Jump so that exactly the first `position` items have happened; returns them (to refold)."""
        self.position = max(0, min(position, len(self.timeline)))
        self.clock = self.timeline[self.position - 1].at if self.position else self.first
        return [s.item for s in self.timeline[: self.position]]

    # ------------------------------------------------------------ marks for the keys and the timeline

    def marks(self, kinds: tuple[str, ...]) -> list[int]:
        """Positions just after each item of `kinds` (plans and decisions, say)."""
        return [i + 1 for i, s in enumerate(self.timeline) if s.item.kind in kinds]

    def segment_starts(self) -> list[int]:
        """Positions just after each segment's first test (the segment is then under way)."""
        out, seen = [], set()
        for i, s in enumerate(self.timeline):
            if s.item.kind == "test":
                seg = s.item.payload.test_id.split("_")[0]
                if seg not in seen:
                    seen.add(seg)
                    out.append(i + 1)
        return out

    def start(self) -> None:  # the live feed's interface: nothing to watch here
        return

    def stop(self) -> None:
        return


# ---------------------------------------------------------------- the replay console

from rich.text import Text  # noqa: E402
from textual.binding import Binding  # noqa: E402
from textual.widgets import Static  # noqa: E402

from maestro_tui.app import MaestroApp  # noqa: E402
from maestro_tui.state import SessionView  # noqa: E402


class TimelineBar(Static):
    """Position in the session, segment starts (|) and plans/decisions (·)."""

    DEFAULT_CSS = "TimelineBar { height: 1; background: $panel; }"

    def show(self, feed: ReplayFeed) -> None:
        width = max(20, (self.size.width or 100) - 40)
        n = max(1, len(feed.timeline))
        cells = ["─"] * width
        for pos in feed.marks(("plans", "decisions")):
            cells[min(width - 1, pos * width // n)] = "·"
        for pos in feed.segment_starts():
            cells[min(width - 1, pos * width // n)] = "│"
        here = min(width - 1, feed.position * width // n)
        bar = Text("".join(cells[:here]), style="bold cyan")
        bar.append("●", style="bold yellow")
        bar.append("".join(cells[here + 1:]), style="dim")
        elapsed = feed.clock - feed.first
        speed = "instant" if feed.speed == float("inf") else f"×{feed.speed:g}"
        state = "▶" if feed.playing else "⏸"
        self.update(Text.assemble((f" {state} {speed:>7s} {elapsed:8.1f}s ", "bold"), bar,
                                  (f" {feed.position}/{len(feed.timeline)}", "dim")))


class ReplayApp(MaestroApp):
    """The console, read-only, driven by a ReplayFeed."""

    BINDINGS = [
        Binding("space", "play", "play/pause", id="replay.play"),
        Binding("plus", "speed(1)", "faster", id="replay.faster"),
        Binding("minus", "speed(-1)", "slower", id="replay.slower"),
        Binding("right_square_bracket", "jump('plan', 1)", "next plan", id="replay.next_plan"),
        Binding("left_square_bracket", "jump('plan', -1)", "prev plan", id="replay.prev_plan"),
        Binding("right_curly_bracket", "jump('segment', 1)", "next segment", id="replay.next_segment"),
        Binding("left_curly_bracket", "jump('segment', -1)", "prev segment", id="replay.prev_segment"),
        Binding("g", "seek_to(0)", "start", id="replay.start"),
        Binding("G", "seek_to(-1)", "end", id="replay.end"),
    ]

    def __init__(self, session_root: Path, **kw) -> None:
        super().__init__(session_root, read_only=True, **kw)
        self.feed = ReplayFeed(self.session_root)

    def compose(self):
        yield from super().compose()
        yield TimelineBar(id="timeline")

    def tick(self) -> None:
        super().tick()
        self._synth_status()
        self.query_one(TimelineBar).show(self.feed)

    def _synth_status(self) -> None:
        cfg = (self.view.config or {}).get("settings", {})
        last = self.view.research[-1].test_id if self.view.research else "seg0_"
        self.view.conductor = {
            "state": "replay", "tests_done": self.view.tests_seen,
            "tests_total": cfg.get("segments", 0) * cfg.get("tests", 0),
            "segment": int(last.split("_")[0][3:] or 0), "segments": cfg.get("segments", 0),
            "approval": cfg.get("approval", "?"), "providers": (self.view.config or {}).get("agents", {}),
        }
        self.w_status.refresh_from(self.view, True)

    def action_play(self) -> None:
        self.feed.playing = not self.feed.playing
        self.feed._last_wall = __import__("time").monotonic()

    def action_speed(self, step: int) -> None:
        self.feed.faster(step)
        self.notify(f"speed: {'instant' if self.feed.speed == float('inf') else f'×{self.feed.speed:g}'}")

    def action_seek_to(self, position: int) -> None:
        self.seek(len(self.feed.timeline) if position < 0 else position)

    def action_jump(self, what: str, step: int) -> None:
        marks = self.feed.marks(("plans", "decisions")) if what == "plan" else self.feed.segment_starts()
        here = self.feed.position
        targets = [m for m in marks if (m > here if step > 0 else m < here)]
        if targets:
            self.seek(targets[0] if step > 0 else targets[-1])

    def seek(self, position: int) -> None:
        """Show the session exactly as it stood after `position` items."""
        items = self.feed.seek(position)
        self.feed.playing = False
        self.view = SessionView()
        tests = [i for i, item in enumerate(items) if item.kind == "test"]
        recent_from = tests[-12] if len(tests) >= 12 else 0  # only recent tests' episodes are shown
        self.view.skip_episodes = True
        for i, item in enumerate(items):
            if i == recent_from:
                self.view.skip_episodes = False
            self.view.apply(item)
            if item.kind == "test" and i < recent_from:
                item.payload.forget_scores()
        self.w_conversation.clear()
        self.w_conversation._seen = 0
        self._known_status = {pid: p["status"] for pid, p in self.view.plans.items()}  # no toasts for the past
        self._drawn = -1
        self.tick()

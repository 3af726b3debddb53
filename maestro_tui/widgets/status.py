"""The status bar: session, segment, progress, speed, approval mode, agents, what the conductor waits for."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from engine.text import visible
from maestro_tui.state import SessionView
from maestro_tui.widgets.panes import show_text


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 2; background: $panel; color: $text; padding: 0 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._rate: list[tuple[float, int]] = []
        self.dead = False  # the conductor died without saying so

    def refresh_from(self, view: SessionView, read_only: bool) -> None:
        c, cfg = view.conductor_status, view.session_config
        done, total = view.tests_seen if c.tests_done is None else c.tests_done, c.tests_total
        now = time.monotonic()
        self._rate = [(t, n) for t, n in self._rate if now - t < 10] + [(now, done)]
        t0, n0 = self._rate[0]
        rate = (done - n0) / (now - t0) if now - t0 > 0.5 else 0.0
        eta = f"ETA {max(0, total - done) / rate:,.0f}s" if rate > 0 and total > done else ""
        state = c.state
        replay = state == "replay"  # a replay's pace is the virtual clock's: no rate, no ETA
        if c.present and not c.alive() and state not in ("finished", "stopped", "failed"):
            state = "DEAD"
        self.dead = state == "DEAD"
        badges = Text()
        for role in ("strategist", "critic"):
            p = visible(c.providers.get(role, "offline"), one_line=True)  # "offline (why)": the why may be an LLM's
            badges.append(f" {role}:", style="dim")
            if p.startswith("offline"):  # rule-based, from the start or since a failure: "offline (why)"
                badges.append("OFFLINE", style="bold reverse yellow")
                badges.append(p[len("offline"):], style="yellow")
            else:
                badges.append(p, style="bold")
        line1 = Text.assemble(
            (visible(f"{cfg.session_id} ", one_line=True), "bold"),
            (f"seg {c.segment}/{c.segments} ", ""),
            (f"tests {done}/{total} ", ""),
            ("" if replay else f"{rate:,.0f}/s {eta} ", "dim"),
            (visible(f"approval:{c.approval} ", one_line=True), "bold"),
            badges,
            (f"  LLM {c.llm_calls} calls ${c.llm_cost_usd:.4f}" if c.llm_calls else "", "cyan"),
            ("  READ-ONLY" if read_only else "", "bold red"),
        )
        base = cfg.baseline
        if base is not None and base.session:
            dsr = base.deflated_sharpe
            origin = f"{base.session} {base.config_id or ''}" + ("" if dsr is None else f" DSR {dsr:.2f}")
        else:
            origin = "defaults" if cfg.present else ""
        windows = cfg.windows
        fit = ""
        if windows is not None and windows.reuse:
            fit = f"  REUSED windows: {windows.available} for {windows.segments * windows.tests} tests"
        elif windows is not None and (windows.segments, windows.tests) != (windows.asked_segments, windows.asked_tests):
            fit = f"  fitted to {windows.available} windows"
        pending = len(view.pending())
        style = {"waiting": "bold black on yellow", "DEAD": "bold white on red", "finished": "bold green",
                 "failed": "bold white on red"}.get(state, "bold")
        line2 = Text.assemble(
            (visible(f" {state.upper()} ", one_line=True), style),
            (visible(f" recorded session: {c.recorded}", one_line=True) if replay else "", "bold"),
            (f"  pending plans: {pending}", "bold yellow" if pending else ""),
            (visible(f"  waiting for: {c.waiting_for}", one_line=True) if c.waiting_for else "", "yellow"),
            (f"  corrupt lines skipped: {view.bad_lines}" if view.bad_lines else "", "red"),
            (f"  failed tests: {view.tests_failed}" if view.tests_failed else "", "red"),
            (visible(f"  base: {origin}", one_line=True) if origin else "", "dim"),
            (fit, "bold yellow" if windows is not None and windows.reuse else "yellow"),
        )
        show_text(self, Text("\n").join([line1, line2]))

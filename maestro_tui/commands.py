"""Command palette (Ctrl+P) commands that depend on the session: review a pending plan,
pause or resume, copy the selected config, switch theme, resume a dead conductor."""

from __future__ import annotations

from functools import partial

from textual.command import Hit, Hits, Provider

from themes import THEMES


class SessionCommands(Provider):
    """Commands for the session on screen."""

    def _commands(self) -> list[tuple[str, object, str]]:
        app = self.app
        session = app.session  # type: ignore[attr-defined]  # maestro_tui.app.MaestroApp's
        out = []
        for plan in session.view.pending():
            change = ", ".join(f"{k} {v}" for k, v in plan.change.items())
            out.append((f"decide plan {plan.plan_id}", partial(session.open_review, plan.plan_id), change))
        if session.mode == "live":
            out.append(("pause / resume the session", session.action_pause, "stop or restart starting new tests"))
        out.append(("copy config as JSON", session.action_copy, "the selected leaderboard config, through OSC 52"))
        for theme in [t.name for t in THEMES] + ["ansi-dark", "ansi-light"]:
            out.append((f"theme: {theme}", partial(setattr, app, "theme", theme), "change the colours"))
        if session.w_status.dead and session.mode == "live":
            out.append(("resume the session", session.action_resume, "start a new conductor on this session"))
        return out

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield Hit(1.0, name, callback, help=help_text)

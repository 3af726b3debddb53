"""What a session screen is fed by: the live feed (maestro_tui.ingest) or the replay (maestro_tui.replay).

The screen asks its feed for what happened since it last asked (`take`), folds it into its
view through the feed (`fold`), and shows the mode and progress the feed reports (`mode`,
`status`). Nothing on the screen knows which feed it has, beyond its mode: the keys of a
replay act only in a replay (maestro_tui.screens.session), and the status bar says
REPLAY because the feed is one, not because a conductor said so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from maestro_tui.state import ConductorStatus, Item, SessionView

Mode = Literal["live", "read-only", "replay"]


@dataclass
class Batch:
    """What a feed hands over on one tick."""

    items: list[Item] = field(default_factory=list)
    restart: bool = False  # fold onto a new view (feed.new_view()): a replay went back
    past: bool = False  # the items are history being shown (a seek, the replay's opening): no toasts for them


class Feed(Protocol):
    """A session's items for a session screen."""

    root: Path

    @property
    def mode(self) -> Mode:
        """live: this console steers; read-only: it watches a session steered elsewhere; replay: the past."""
        ...

    @property
    def failure(self) -> str | None:
        """Why the feed stopped reading, once it has (None while it reads)."""
        ...

    def start(self) -> None:
        """Begin reading (the screen calls it once, when it is mounted)."""

    def stop(self) -> None:
        """Stop reading (the screen calls it when it goes)."""

    def new_view(self) -> SessionView:
        """An empty view to fold into: at the start, and after a Batch with `restart`."""
        ...

    def take(self, limit: int) -> Batch:
        """What is new since the last call: at most `limit` items, unless the Batch shows a moment whole."""
        ...

    def fold(self, view: SessionView, items: list[Item]) -> None:
        """Fold `items` into `view`."""

    def status(self, view: SessionView) -> ConductorStatus:
        """State and progress for the status bar, as of what `view` holds."""
        ...

"""The session's journal: conversation, plans, audit and allocation lines, each written once.

Every record has an explicit key — what it is about, never a position — and is appended
only if no record with its key is in the file yet. A conductor that resumes after a crash
therefore writes exactly the lines an uninterrupted run would have written, and none twice:

- conversation.jsonl: the key the caller names (`s2:proposals`, `P1-003:review`,
  `P1-003:effect`, `note:4`), kept in the record; lines from before keys were kept are
  keyed by their segment, turn, agent and reference, as they were then;
- plans.jsonl: plan id and status (or `outcome`); audit.jsonl: action, plan, nonce,
  decision offset and test (an allocation decision by its time and strategy: its nonce is
  fresh on every run);
- allocation.jsonl: one deterministic stream, so a resume skips as many lines as are there.

The lines are appended by the conductor's writer (engine.session.SessionWriter), in order
with its other writes.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from agents.messages import one_line
from engine.events import event_fields, read_events
from engine.jsonl import JsonlWriter
from engine.session import ALLOCATION, AUDIT, CONVERSATION, PLANS, SessionDir, SessionWriter

log = logging.getLogger("maestro.journal")


def message_key(rec: dict[str, Any]) -> str:
    """The key of a conversation.jsonl record (older records: their segment, turn, agent and reference)."""
    if rec.get("key"):
        return str(rec["key"])
    return f"{rec['segment']}:{rec['turn']}:{rec['agent']}:{rec['message'].get('ref', '')}"


def audit_key(rec: dict[str, Any]) -> str:
    """The key of an audit.jsonl record."""
    d = rec.get("details", {})
    if rec["action"] == "allocation_decision":  # its nonce is fresh on every replay
        return f"allocation:{d.get('at')}:{d.get('strategy')}"
    return f"{rec['action']}:{rec.get('plan_id')}:{rec.get('nonce')}:{d.get('decision_offset', '')}:{d.get('test', '')}"


class Journal:
    """Appends to the session's JSON Lines files, each keyed record once; `open()` reads the keys already there."""

    def __init__(self, session: SessionDir, out: SessionWriter | None = None) -> None:
        self.session = session
        self.out = out or SessionWriter(background=False)  # the conductor's writes, in order
        self.sid = session.session_id
        self.written: dict[str, set[str]] = {CONVERSATION: set(), PLANS: set(), AUDIT: set()}
        self.writers: dict[str, JsonlWriter] = {}
        self.allocation_seen = 0  # allocation lines produced this run
        self.allocation_existing = 0  # ... and found in the file when it opened

    def open(self) -> None:
        """Read what an earlier run wrote (keys, the allocation count) and open the files for appending."""
        for rec in read_events(self.session.file(CONVERSATION)).records:
            self.written[CONVERSATION].add(message_key(rec))
        self.allocation_existing = len(read_events(self.session.file(ALLOCATION)).records)
        self.writers = {name: JsonlWriter(self.session.file(name)) for name in (CONVERSATION, PLANS, AUDIT, ALLOCATION)}

    def close(self) -> None:
        self.out.drain()  # the lines asked for are written (unless a write failed: then none after it)
        for writer in self.writers.values():
            writer.close()

    def mark(self, name: str, key: str) -> None:
        """A record with `key` is in the file already (read back by the caller)."""
        self.written[name].add(key)

    def append(self, name: str, key: str, record: dict[str, Any] | Any) -> bool:
        """Append a record unless one with `key` was written before (resume); True if written."""
        if key in self.written[name]:
            return False
        self.written[name].add(key)
        self.out.write(self.writers[name].append, record)
        return True

    def say(self, key: str, segment: int, provider: str, message: BaseModel, ref: str = "") -> None:
        """An agent message to conversation.jsonl, once per `key`; `ref` ties it to a plan."""
        body = message.model_dump()
        if ref:
            body["ref"] = ref
        rec = {
            **event_fields("message", self.sid), "key": key,
            "agent": body["agente"], "provider": provider, "segment": segment, "turn": body["turno"],
            "message": body, "text": one_line(message),
        }
        self.append(CONVERSATION, key, rec)

    def audit(self, action: str, who: str, why: str, plan_id: str | None = None, nonce: str | None = None,
              **details: Any) -> dict[str, Any]:
        """An audit.jsonl record (once per its key); the record."""
        rec = {
            **event_fields("audit", self.sid),
            "action": action, "plan_id": plan_id, "nonce": nonce, "who": who, "why": why, "details": details,
        }
        self.append(AUDIT, audit_key(rec), rec)
        log.info("audit %s %s %s: %s", action, plan_id or "", nonce or "", why)
        return rec

    def allocation(self, body: dict[str, Any]) -> None:
        """The next line of the allocation stream, unless an earlier run wrote it."""
        self.allocation_seen += 1
        if self.allocation_seen > self.allocation_existing:
            self.out.write(self.writers[ALLOCATION].append, body)

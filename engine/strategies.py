"""The strategy registry: the built-ins, and the trader's own from files and installed packages.

Strategies come from three places, all declared the same way (engine/strategy.py):
the built-ins (engine/methods.py); files named with `--strategy FILE` or the `strategies`
list in config.toml; and the `maestro_tui.strategies` entry-point group of installed
packages (an entry point names a `Strategy` or a module with `STRATEGY` / `STRATEGIES`).
A file is the trader's own code, loaded only because the trader named it; an LLM chooses
among registered strategies and proposes values, never code.

Every process that runs backtests registers the same files (the worker processes load
them by path on their first task), so a name means the same strategy everywhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.strategy import Strategy, StrategyError, raised_at

ENTRY_POINT_GROUP = "maestro_tui.strategies"

_REGISTRY: dict[str, Strategy] = {}
_FILES: dict[str, tuple[Strategy, ...]] = {}  # resolved path -> what it declared
_ENTRY_POINTS_LOADED = False


def _builtins() -> None:
    if not _REGISTRY:
        from engine.methods import BUILT_INS

        for s in BUILT_INS:
            _REGISTRY[s.name] = s


def registered() -> dict[str, Strategy]:
    """Every registered strategy by name, the built-ins first (a copy)."""
    _builtins()
    return dict(_REGISTRY)


def get(name: str) -> Strategy:
    """The strategy registered as `name`; StrategyError naming the registered ones if there is none."""
    _builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise StrategyError(f"no strategy named {name!r}; registered: {', '.join(_REGISTRY)}") from None


def register(strategy: Strategy) -> Strategy:
    """Add `strategy` to the registry after checking its declaration; StrategyError on a name taken by another."""
    _builtins()
    problem = declaration_problem(strategy)
    if problem:
        raise StrategyError(f"strategy {strategy.where()}: {problem}")
    taken = _REGISTRY.get(strategy.name)
    if taken is not None and taken is not strategy and taken.origin != strategy.origin:
        raise StrategyError(f"strategy {strategy.where()}: the name {strategy.name!r} is taken by {taken.where()}")
    _REGISTRY[strategy.name] = strategy
    return strategy


def declaration_problem(strategy: Strategy) -> str | None:
    """What is wrong with a declaration (one clause), or None: names, bounds, steps, form."""
    from engine.params import SHARED_FIELDS

    if not strategy.name.isidentifier():
        return f"name {strategy.name!r} is not an identifier (letters, digits, _)"
    if not strategy.description.strip() or "\n" in strategy.description.strip():
        return "description must be one non-empty line"
    if strategy.form not in ("kernel", "frame"):
        return f"form must be 'kernel' or 'frame', not {strategy.form!r}"
    if not callable(strategy.signal) or not callable(strategy.warmup):
        return "signal and warmup must be functions"
    seen: set[str] = set()
    for p in strategy.parameters:
        problem = p.problem()
        if problem:
            return problem
        if p.name in seen:
            return f"parameter {p.name!r} is declared twice"
        if p.name in SHARED_FIELDS:
            return f"parameter {p.name!r} shadows the shared parameter of that name (exits, gates, costs, size)"
        seen.add(p.name)
    return None


def _declared(module: ModuleType, where: str) -> tuple[Strategy, ...]:
    found = getattr(module, "STRATEGIES", None)
    if found is None:
        found = getattr(module, "STRATEGY", None)
        found = () if found is None else (found,)
    found = tuple(found)
    if not found:
        raise StrategyError(f"{where}: declares no strategy (a module-level STRATEGY = Strategy(...) or STRATEGIES = [...])")
    for s in found:
        if not isinstance(s, Strategy):
            raise StrategyError(f"{where}: STRATEGY is a {type(s).__name__}, not an engine.strategy.Strategy")
    return found


def load_file(path: str | Path) -> tuple[Strategy, ...]:
    """Load and register the strategies a file declares (once per process); StrategyError says what and where."""
    p = Path(path).expanduser()
    try:
        resolved = str(p.resolve(strict=True))
    except OSError as err:
        raise StrategyError(f"strategy file {p}: {err.strerror or err}") from None
    if resolved in _FILES:
        return _FILES[resolved]
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:12]
    name = f"maestro_user_strategy_{p.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise StrategyError(f"strategy file {p}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the trader's code failed: say where, in one line
        sys.modules.pop(name, None)
        raise StrategyError(f"strategy file {p}: {type(err).__name__}: {err} (at {raised_at(err, resolved)})") from None
    declared = tuple(_with_origin(s, str(p)) for s in _declared(module, f"strategy file {p}"))
    for s in declared:
        register(s)
    _FILES[resolved] = declared
    return declared


def _with_origin(s: Strategy, origin: str) -> Strategy:
    if s.origin != "built-in":
        return s
    from dataclasses import replace

    return replace(s, origin=origin)


def load_files(paths: Iterable[str | Path]) -> list[Strategy]:
    """`load_file` for each path, in order."""
    out: list[Strategy] = []
    for path in paths:
        out.extend(load_file(path))
    return out


def load_entry_points() -> list[Strategy]:
    """Register what the installed packages declare in the `maestro_tui.strategies` group (once per process)."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return []
    _ENTRY_POINTS_LOADED = True
    out: list[Strategy] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name} ({ep.value})"
        try:
            obj: Any = ep.load()
        except Exception as err:  # noqa: BLE001 - an installed package's code failed: say which
            raise StrategyError(f"{where}: {type(err).__name__}: {err} (at {raised_at(err)})") from None
        found = (obj,) if isinstance(obj, Strategy) else _declared(obj, where) if isinstance(obj, ModuleType) else None
        if found is None:
            raise StrategyError(f"{where}: names a {type(obj).__name__}, not a Strategy or a module declaring one")
        out.extend(register(_with_origin(s, where)) for s in found)
    return out


def recorded(strategies: Iterable[Strategy]) -> list[dict[str, Any]]:
    """session_config.json's `strategies` (read back by `load_recorded`): each name and where it came from,
    a trader's file with its SHA-256."""
    out = []
    for s in strategies:
        path = Path(s.origin) if s.origin.endswith(".py") else None  # load_file's origin is the file's path
        out.append({"name": s.name, "origin": s.origin, "file": str(path.resolve()) if path else None,
                    "sha256": _sha256(path) if path else None})
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_recorded(records: list[dict[str, Any]] | None) -> tuple[str, ...]:
    """Register the strategies a session's config records (session_config.json `strategies`: their
    files, again) and return their names. A session from before strategies were declared records
    none: it researched the built-ins."""
    if not records:
        return tuple(s.name for s in registered().values() if s.origin == "built-in")
    load_entry_points()
    for r in records:
        if r.get("file"):
            _check_unchanged(Path(r["file"]), r.get("sha256"))
            load_file(r["file"])
    return tuple(get(r["name"]).name for r in records)


def _check_unchanged(path: Path, sha256: str | None) -> None:
    """StrategyError when the file is gone or differs from the one the session started with."""
    try:
        now = _sha256(path)
    except OSError as err:
        raise StrategyError(f"strategy file {path}: {err.strerror or err} (the session was started with it)") from None
    if sha256 and now != sha256:
        raise StrategyError(f"strategy file {path} changed since the session started: its results would mix two "
                            f"versions; restore it (sha256 {sha256[:12]}…) or start a new session")


def recorded_files(records: list[dict[str, Any]] | None) -> tuple[str, ...]:
    """The trader's strategy files among a session's recorded strategies (the workers load them too)."""
    return tuple(r["file"] for r in records or () if r.get("file"))

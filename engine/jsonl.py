"""Session-file primitives: append-only JSON Lines and atomically replaced JSON documents.

The rules of DESIGN.md §4 live here. A writer appends whole lines in one ``write`` on a
file opened with O_APPEND, so a crash can at worst leave one torn last line and two
appenders never interleave inside a line. A reader skips and counts what it cannot use — a
torn last line, a corrupt line in the middle, a line that fails its model — and never
raises for it: one bad line must not hide a session. JSON documents are written to a
temporary file and renamed into place, so a reader sees the old document or the new one,
never half of one. When the OS refuses a write (a full disk, a read-only filesystem) the
writers raise SessionWriteError, naming the file, and leave no partial line or temporary
file behind.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from engine.events import Event, event_to_json

ModelT = TypeVar("ModelT", bound=BaseModel)


class SessionFileError(ValueError):
    """A session file that is missing, unreadable or not what it should be."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class SessionWriteError(OSError):
    """A session file the OS refused to write (disk or inodes full, read-only, no permission).

    Still an OSError with its errno, so code that handles OSError needs no change; ``filename``
    is the file meant (never a temporary name) and ``str()`` is the one line a person reads:
    ``cannot write PATH: No space left on device``.
    """

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def write_error(err: OSError, path: str | os.PathLike[str]) -> SessionWriteError:
    """`err` as a SessionWriteError naming `path` (the file meant, where the OS named a temporary one)."""
    if isinstance(err, SessionWriteError):
        return err
    return SessionWriteError(err.errno, err.strerror or str(err), os.fspath(path))


def os_error_line(err: OSError) -> str:
    """One line for an OSError: the path(s) and the OS reason, e.g. ``/x/s: Read-only file system``."""
    if isinstance(err, SessionWriteError):
        return str(err)
    reason = err.strerror or str(err) or type(err).__name__
    if err.filename is None:
        return reason
    where = os.fsdecode(err.filename)
    if err.filename2 is not None:
        where += f" -> {os.fsdecode(err.filename2)}"
    return f"{where}: {reason}"


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that was skipped: 1-based line number, byte offset of its start, why."""

    line_no: int
    byte_offset: int
    reason: str


@dataclass(slots=True)
class JsonlRead:
    """What a read produced: the usable records and the lines skipped.

    ``torn_tail`` is True when the last line had no newline and did not parse; it is also
    listed in ``bad_lines``, so ``len(bad_lines)`` is the number of lines skipped.
    """

    records: list[Any] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)
    torn_tail: bool = False


# ---------------------------------------------------------------------------- writing


def _json_default(obj: Any) -> Any:
    # Records built straight from numpy record arrays carry numpy scalars; json.dumps
    # knows np.float64 (a float subclass) but not np.int64, np.bool_ or np.float32.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# Built once: json.dumps with options builds a new encoder per call, ~15 % of a trade line.
_LINE_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
)


def _find_unserialisable(value: Any, where: str) -> tuple[str, str] | None:
    """Return (field path, problem) of the first value JSON cannot hold, or None."""
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return where, f"is {value}; JSON Lines files accept finite numbers only"
        return None
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _find_unserialisable(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _find_unserialisable(item, f"{where}[{i}]")
            if found:
                return found
        return None
    if value is None or isinstance(value, (str, int, bool, np.generic, np.ndarray)):
        return None
    return where, f"is a {type(value).__name__}, which JSON cannot hold"


# JSON escapes only C0 controls; DEL, C1 (0x9b is a one-byte CSI) and the bidi controls would
# reach a terminal raw through `cat` or `tail -f`: written as \u escapes, they read back the same
_TERMINAL_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _terminal_safe(text: str) -> str:
    return _TERMINAL_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _TERMINAL_UNSAFE.search(text) else text


def _record_to_line(record: Mapping[str, Any] | Event, number: int) -> str:
    """Serialise one record as a compact JSON line ending in a newline.

    ``number`` (1-based) only names the record in an error message.
    """
    try:
        if isinstance(record, Event):
            line = event_to_json(record)
            # model_construct can put a NaN in an event, which pydantic writes as null and
            # the model then refuses on read: refuse it here. A valid trade has no null.
            if "null" in line and _find_unserialisable(record, "") is not None:
                raise ValueError("non-finite number in event")
            return _terminal_safe(line) + "\n"
        return _terminal_safe(_LINE_ENCODER.encode(record)) + "\n"
    except (ValueError, TypeError) as exc:
        found = _find_unserialisable(record, "")
        if found is None:
            raise
        where, problem = found
        raise type(exc)(f"record {number}: field {where!r} {problem}") from None


def _open_for_append(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for appending and make sure the next write starts on a fresh line.

    Raises SessionWriteError when the OS refuses (read-only, no permission, no inode left).
    """
    # O_RDWR only so the last byte can be checked; O_APPEND still sends every write to the end.
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as err:
        raise write_error(err, path) from None
    try:
        size = os.fstat(fd).st_size
        # A crash can leave a torn last line. Without this newline our first record would be
        # glued onto it and lost too; with it, only the torn fragment is a bad line.
        if size and os.pread(fd, 1, size - 1) != b"\n":
            _append_whole(fd, b"\n", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _append_whole(fd: int, data: bytes, path: str | os.PathLike[str]) -> None:
    """Append ``data`` on an O_APPEND descriptor: all of it, or (disk full) none of it if it can.

    A full disk takes part of a write and refuses the rest. The part that landed would be a
    torn line in the middle of the file once the session resumes and appends after it, so
    it is cut off again; the error is raised as a SessionWriteError naming ``path``.
    """
    view = memoryview(data)
    done = 0
    try:
        while done < len(data):  # one write() is the normal case; the loop guards a short one
            done += os.write(fd, view[done:])
    except OSError as err:
        if done:
            _cut_torn_tail(fd, done)
        raise write_error(err, path) from None


def _cut_torn_tail(fd: int, done: int) -> None:
    # O_APPEND left the offset at the end of our `done` bytes. Cut them off only while they
    # are still the file's tail: bytes another appender wrote after them are not ours to
    # cut. Otherwise they stay a torn line, which every reader skips. Shrinking a file needs
    # no free space.
    try:
        end = os.lseek(fd, 0, os.SEEK_CUR)
        if os.fstat(fd).st_size == end:
            os.ftruncate(fd, end - done)
    except OSError:
        pass


def append_jsonl(
    path: str | os.PathLike[str],
    records: Iterable[Mapping[str, Any] | Event],
    *,
    fsync: bool = False,
) -> int:
    """Append records to a JSON Lines file in one write; return the number of lines.

    Raises ValueError naming the record and field when a value is NaN or infinite, and
    writes nothing in that case.
    """
    lines = [_record_to_line(r, i) for i, r in enumerate(records, start=1)]
    if not lines:
        return 0
    fd = _open_for_append(path)
    try:
        _append_whole(fd, "".join(lines).encode("utf-8"), path)
        if fsync:
            _fsync(fd, path)
    finally:
        os.close(fd)
    return len(lines)


def _fsync(fd: int, path: str | os.PathLike[str]) -> None:
    try:
        os.fsync(fd)
    except OSError as err:  # a delayed write error (ENOSPC, EIO) surfaces here
        raise write_error(err, path) from None


class JsonlWriter:
    """A JSON Lines file kept open for appending; every record reaches the file at once.

    Writes go straight to the file descriptor (no buffer), so a reader tailing the file
    sees each record as soon as ``append`` returns.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.lines_written = 0
        self._fsync = fsync
        self._fd: int | None = _open_for_append(self.path)

    def append(self, record: Mapping[str, Any] | Event) -> None:
        """Append one record as one line; SessionWriteError (nothing written) when the OS refuses."""
        self._write(_record_to_line(record, self.lines_written + 1).encode("utf-8"), 1)

    def append_many(self, records: Iterable[Mapping[str, Any] | Event]) -> int:
        """Append records in one write; return how many. Nothing is written if one is bad."""
        start = self.lines_written + 1
        lines = [_record_to_line(r, start + i) for i, r in enumerate(records)]
        if lines:
            self._write("".join(lines).encode("utf-8"), len(lines))
        return len(lines)

    def _write(self, data: bytes, n_lines: int) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path}: writer is closed")
        _append_whole(self._fd, data, self.path)
        if self._fsync:
            _fsync(self._fd, self.path)
        self.lines_written += n_lines

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------------------- reading


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity by default; the files never contain them.
    raise ValueError(f"{name} is not valid JSON")


def _validation_summary(exc: ValidationError) -> str:
    """One line for a ValidationError: the first problem, and how many more."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "record"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


class _LineParser:
    """Turn one line of bytes into a record, or into the reason it is unusable."""

    def __init__(self, model: type[BaseModel] | None) -> None:
        self.model = model

    def parse(self, raw: bytes) -> tuple[Any, str | None, bool]:
        """Return (record, None, False), or (None, reason, cut_short).

        ``cut_short`` is True when the bytes are not even complete UTF-8 JSON, which is
        what a line torn by a crash looks like; a complete object that fails its model
        is bad, not torn.
        """
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"invalid UTF-8 at byte {exc.start} of the line", True
        if self.model is not None:
            try:
                return self.model.model_validate_json(text), None, False
            except ValidationError as exc:
                first = exc.errors(include_url=False, include_input=False)[0]
                if first["type"] == "json_invalid":
                    return None, f"invalid JSON: {first['msg']}", True
                return None, _validation_summary(exc), False
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            return None, f"invalid JSON: {exc}", True
        if not isinstance(obj, dict):
            return None, f"not a JSON object but a {type(obj).__name__}", False
        return obj, None, False


class JsonlTail:
    """Incremental reader of a JSON Lines file that another process is appending to.

    Each ``read_new()`` returns the records completed since the previous call. A last line
    without its newline is left for the next call (the writer may be mid-write) unless
    ``final=True``. When the file is truncated or replaced, reading restarts from the top
    and ``restarted`` says so for that call. With ``index=True``, ``offsets[k]`` is the
    byte offset of the k-th record returned since the start (for replay seeking).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        model: type[BaseModel] | None = None,
        *,
        index: bool = False,
    ) -> None:
        self.path = Path(path)
        self.offset = 0
        self.lines_read = 0
        self.restarted = False
        self.offsets: list[int] | None = [] if index else None
        self._parser = _LineParser(model)
        self._identity: tuple[int, int] | None = None
        # Set when final=True consumed a line with no newline: whatever bytes later end
        # that same line belong to the line already reported, not to a new one.
        self._inside_reported_line = False

    def read_new(self, *, final: bool = False) -> JsonlRead:
        """Return records of the lines completed since the last call (see the class doc)."""
        self.restarted = False
        result = JsonlRead()
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                identity = (st.st_dev, st.st_ino)
                # A smaller file was truncated; another inode was replaced (renamed over).
                if st.st_size < self.offset or (
                    self._identity is not None and identity != self._identity
                ):
                    self._restart()
                self._identity = identity
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return result
        except OSError as exc:
            raise SessionFileError(self.path, f"cannot read: {exc.strerror or exc}") from None
        self._consume(chunk, final, result)
        return result

    def _restart(self) -> None:
        self.offset = 0
        self.lines_read = 0
        self.restarted = True
        self._inside_reported_line = False
        if self.offsets is not None:
            self.offsets.clear()

    def _consume(self, chunk: bytes, final: bool, result: JsonlRead) -> None:
        *lines, tail = chunk.split(b"\n")  # tail: bytes after the last newline, maybe b""
        line_offset = self.offset
        if self._inside_reported_line and lines:
            line_offset += len(lines.pop(0)) + 1
            self._inside_reported_line = False
        for raw in lines:
            self._take(raw, line_offset, result, last=False)
            line_offset += len(raw) + 1
        if tail and final:
            if not self._inside_reported_line:
                self._take(tail, line_offset, result, last=True)
            line_offset += len(tail)
            self._inside_reported_line = True
        # An unfinished last line is left unconsumed: the writer may be in the middle of it.
        self.offset = line_offset

    def _take(self, raw: bytes, line_offset: int, result: JsonlRead, *, last: bool) -> None:
        """Parse one line into ``result``; ``last`` marks a final line with no newline."""
        self.lines_read += 1
        if not raw.strip():
            return  # a blank line carries nothing; not worth a warning
        record, problem, cut_short = self._parser.parse(raw)
        if problem is None:
            result.records.append(record)
            if self.offsets is not None:
                self.offsets.append(line_offset)
            return
        if last and cut_short:
            result.torn_tail = True
            problem = f"torn last line (no newline; {problem})"
        result.bad_lines.append(BadLine(self.lines_read, line_offset, problem))


def read_jsonl(
    path: str | os.PathLike[str], model: type[BaseModel] | None = None
) -> JsonlRead:
    """Read a whole JSON Lines file: records as dicts, or as ``model`` instances if given.

    Bad lines are skipped and counted, never raised; a missing file gives an empty result.
    """
    return JsonlTail(path, model).read_new(final=True)


# ---------------------------------------------------------------------------- documents


def write_json_atomic(path: str | os.PathLike[str], obj: Mapping[str, Any] | BaseModel) -> None:
    """Replace the JSON document at ``path`` whole: readers see the old or the new, never half.

    Raises ValueError naming the field if ``obj`` holds NaN, infinity or a non-JSON value;
    the old document is then left untouched.
    """
    path = Path(path)
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    try:
        # Serialised before any file is touched, so a bad object changes nothing on disk.
        text = _terminal_safe(json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=2, default=_json_default))
    except (ValueError, TypeError) as exc:
        found = _find_unserialisable(obj, "")
        detail = f"field {found[0]!r} {found[1]}" if found else str(exc)
        raise ValueError(f"{path}: not written, {detail}") from None
    write_text_atomic(path, text + "\n", fsync=True)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, fsync: bool = False) -> None:
    """Write `text` (UTF-8) to a temporary file beside `path` and rename it into place.

    A reader sees the old file or the new one, never half of one. `fsync` also makes it
    durable across a power cut (a crash of the process needs no fsync). When the OS refuses
    (disk full, read-only…) the old file stays, no temporary file is left, and
    SessionWriteError names `path`.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:  # no inode left, read-only, no permission: the old file stays
        raise write_error(err, path) from None
    try:
        try:
            _write_fd(fd, text.encode("utf-8"), fsync=fsync)
        finally:
            os.close(fd)
        # mkstemp makes the file 0600; session files are meant to be read by other tools.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)  # a full disk gets its space back; the old file stays
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise write_error(exc, path) from None
        raise
    if fsync:
        _fsync_directory(path.parent)


def _write_fd(fd: int, data: bytes, *, fsync: bool) -> None:
    # Unbuffered, so a full disk raises here, once, rather than again from a buffer's close.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    if fsync:
        os.fsync(fd)


def overwrite_in_place(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` over the bytes of the file at ``path``, padded with spaces to its old size.

    The last resort for a document that must not be lost when the disk is full and
    write_text_atomic has no room for its temporary file: a text no longer than the old
    file needs no new block and no inode. Not atomic — a reader may catch it half written,
    a crash in the middle corrupts it — so never the first choice. JSON allows the padding
    (trailing whitespace). Raises SessionWriteError when the OS refuses.
    """
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError as err:
        raise write_error(err, path) from None
    old_size = 0
    try:
        old_size = os.fstat(fd).st_size
        if len(data) < old_size:  # spaces, not a truncate: no byte of the old document may stay after the new one
            data = data.rstrip(b"\n") + b" " * (old_size - len(data.rstrip(b"\n")) - 1) + b"\n"
        view = memoryview(data)
        done = 0
        while done < len(data):
            done += os.pwrite(fd, view[done:], done)
        os.fsync(fd)
    except OSError as err:
        if old_size == 0:  # nothing was there but what we could not finish: leave nothing
            try:
                os.unlink(path)
            except OSError:
                pass
        raise write_error(err, path) from None
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable across a power cut; some filesystems refuse it.
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON document that must be an object; raise SessionFileError if it is not."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SessionFileError(path, "file not found") from None
    except OSError as exc:
        raise SessionFileError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise SessionFileError(path, f"not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise SessionFileError(path, f"corrupt JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise SessionFileError(path, f"expected a JSON object, found a {type(obj).__name__}")
    return obj


def read_document(path: str | os.PathLike[str], model: type[ModelT]) -> ModelT:
    """Read a JSON document through its model; SessionFileError (one line: the field and why) if it breaks it."""
    try:
        return model.model_validate(read_json(path))
    except ValidationError as exc:
        raise SessionFileError(path, _validation_summary(exc)) from None

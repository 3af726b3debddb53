"""Disks and paths that refuse: a full disk stops a session with one clear line and resumes into
the same files; a path that cannot be a (writable) folder is one line and exit 2, never a traceback.

The full-disk tests mount small tmpfs filesystems, which needs root (or mount permission);
where the machine refuses, they skip and say why.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine import session as session_files
from engine.jsonl import SessionWriteError, append_jsonl, read_json, read_jsonl
from engine.session import ConductorState, SessionDir, read_conductor_state, write_conductor_state
from tests.sessions import assert_same_sessions, cli, headless_session, only_session

SMALL = ("--segments", "2", "--tests", "12", "--seed", "11")
PAGE = 4096  # a tmpfs hands out whole pages

Mount = Callable[[str, str], Path]


# ---------------------------------------------------------------- mounts


def _mount(args: list[str]) -> None:
    """Run mount(8) with `args`; skip the test, saying why, where this machine does not allow it."""
    try:
        out = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command here: the disk tests need a small tmpfs")
    if out.returncode != 0:
        pytest.skip(f"cannot mount here ({out.stderr.strip() or out.returncode}): "
                    "the disk tests need root or mount permission for a small tmpfs")


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """mount(name, options): a tmpfs with `options` at tmp_path/name, unmounted after the test."""
    mounted: list[Path] = []

    def make(name: str, options: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        _mount(["-t", "tmpfs", "-o", options, "tmpfs", str(where)])
        mounted.append(where)
        return where

    yield make
    for where in reversed(mounted):
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)  # busy: detach it anyway


def _remount(where: Path, options: str) -> None:
    _mount(["-o", f"remount,{options}", str(where)])


def _footprint(session: Path) -> tuple[int, int]:
    """(bytes, inodes) a session takes on a tmpfs: whole pages per file; an inode per file and folder."""
    entries = list(session.rglob("*"))
    pages = sum(-(-p.stat().st_size // PAGE) for p in entries if p.is_file())
    return pages * PAGE, len(entries) + 2  # + the session folder and the sessions folder


# ---------------------------------------------------------------- a full disk


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The small session run uninterrupted on a disk with room: the yardstick."""
    return headless_session(tmp_path_factory.mktemp("reference"), *SMALL)


def _assert_failed_for_want_of_space(out: subprocess.CompletedProcess, session: Path) -> None:
    """Exit 1, one line on stderr naming a file of the session and the OS reason; conductor.json says failed."""
    assert out.returncode == 1, out.stderr + out.stdout
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert "No space left on device" in lines[0] and str(session) in lines[0], lines[0]
    state = read_conductor_state(SessionDir(session))
    if state is not None:  # the machine may have had no byte left for it: then it keeps its last state
        assert state.state == "failed" and "No space left on device" in (state.error or ""), state
    done = len(session_files.test_folders(SessionDir(session)))
    assert 0 < done < 24, f"the disk was meant to fill part-way, {done} of 24 tests were written"
    # what the disk refused is gone, not half there: no torn line, no partial folder, no temporary file
    for path in session.rglob("*.jsonl"):
        assert not read_jsonl(path).bad_lines, path
    assert not list(session.rglob(".*")), "a partial folder or a temporary file was left"


@pytest.mark.slow
@pytest.mark.parametrize("short_of", ["space", "inodes"])
def test_a_full_disk_fails_the_session_in_one_line_and_resume_after_freeing_space_finishes_it(
    reference: Path, mount: Mount, short_of: str
):
    room, inodes = _footprint(reference)
    # half of what the session needs, then four times as much
    tight, ample = ((f"size={room // 2 // 1024}k", f"size={4 * room // 1024}k") if short_of == "space"
                    else (f"nr_inodes={inodes // 2}", f"nr_inodes={4 * inodes}"))
    disk = mount("disk", tight)
    sessions = disk / "sessions"

    out = cli("run", "--headless", *SMALL, "--sessions-dir", str(sessions))
    session = only_session(sessions)
    _assert_failed_for_want_of_space(out, session)
    listed = cli("ls", "--sessions-dir", str(sessions))
    assert listed.returncode == 0 and "failed" in listed.stdout, listed.stdout + listed.stderr

    _remount(disk, ample)
    resumed = cli("run", "--resume", str(session))
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert read_json(session / "conductor.json")["state"] == "finished"
    assert_same_sessions(reference, session)


def _fill(disk: Path) -> list[Path]:
    """Ballast files, a page each, until the disk (or its inode table) takes no more."""
    ballast = []
    for n in range(100_000):
        path = disk / f"ballast{n}"
        try:
            path.write_bytes(b"x" * PAGE)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
            if path.exists() and path.stat().st_size < PAGE:
                path.unlink()
            return ballast
        ballast.append(path)
    raise AssertionError("the disk never filled")


def test_a_record_the_disk_takes_only_half_of_is_cut_off_not_left_torn(mount: Mount):
    disk = mount("disk", "size=64k")
    audit = disk / "audit.jsonl"
    append_jsonl(audit, [{"n": 1}])
    ballast = _fill(disk)
    ballast[-1].unlink()  # room for one page of the three the next record needs: a short write
    with pytest.raises(SessionWriteError) as refused:
        append_jsonl(audit, [{"n": 2, "pad": "x" * (3 * PAGE)}])
    assert refused.value.errno == errno.ENOSPC
    assert str(refused.value) == f"cannot write {audit}: No space left on device"
    assert audit.read_bytes() == b'{"n":1}\n'


def test_conductor_json_keeps_its_last_word_in_place_when_no_inode_is_left(mount: Mount):
    disk = mount("disk", "size=1m,nr_inodes=64")
    session = SessionDir(disk)
    running = ConductorState(session_id="s", pid=1, host="h", state="running", heartbeat="2026-01-01T00:00:00.000Z",
                             started_at="2026-01-01T00:00:00.000Z", segments=2, tests_done=5, tests_total=24)
    write_conductor_state(session, running)
    _fill(disk)  # no inode left: the atomic write's temporary file cannot be made
    failed = running.model_copy(update={"state": "failed", "error": "cannot write /x/trades.jsonl: " + "No space " * 200})

    with pytest.raises(SessionWriteError):  # a heartbeat is not worth a non-atomic write
        write_conductor_state(session, failed.model_copy(update={"state": "running"}))
    assert read_conductor_state(session) == running

    write_conductor_state(session, failed, last_word=True)
    kept = read_conductor_state(session)
    assert kept is not None and kept.state == "failed" and kept.tests_done == 5
    assert kept.error and kept.error.startswith("cannot write /x/trades.jsonl: No space")
    assert not list(disk.glob(".conductor.json.*")), "a temporary file was left"


# ---------------------------------------------------------------- paths that cannot be folders


def _a_file(tmp_path: Path, _mount: Mount) -> Path:
    path = tmp_path / "sessions"
    path.write_text("not a folder\n")
    return path


def _a_dangling_link(tmp_path: Path, _mount: Mount) -> Path:
    path = tmp_path / "sessions"
    path.symlink_to(tmp_path / "gone")
    return path


def _a_read_only_filesystem(tmp_path: Path, mount: Mount) -> Path:
    return mount("sessions", "ro,size=64k")


def _a_folder_without_write_permission(tmp_path: Path, _mount: Mount) -> Path:
    path = tmp_path / "sessions"
    path.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root ignores permission bits; an immutable folder refuses even root
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root, which ignores a folder's mode, and chattr +i is not available here")
    return path


def _allow_writes_again(path: Path) -> None:
    """Undo _a_folder_without_write_permission, so the temporary folder can be removed."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    path.chmod(0o700)


def _state_of(path: Path) -> tuple[bool, bool, bytes | list[str] | None]:
    """What a test asserts is untouched: is it a link, a folder, and its content or listing."""
    if path.is_symlink():
        return True, False, None
    if path.is_dir():
        return False, True, sorted(os.listdir(path))
    return False, False, path.read_bytes()


BAD_FOLDERS = {
    "a-file": (_a_file, "is a file, not a folder"),
    "a-dangling-link": (_a_dangling_link, "dangling symbolic link"),
    "no-write-permission": (_a_folder_without_write_permission, "not writable"),
    "a-read-only-filesystem": (_a_read_only_filesystem, "read-only filesystem"),
}


@pytest.fixture(params=list(BAD_FOLDERS))
def bad_sessions_dir(request, tmp_path: Path, mount: Mount) -> Iterator[tuple[Path, str]]:
    make, reason = BAD_FOLDERS[request.param]
    path = make(tmp_path, mount)
    yield path, reason
    if make is _a_folder_without_write_permission:
        _allow_writes_again(path)


def _assert_one_line(out: subprocess.CompletedProcess, *words: str) -> str:
    assert out.returncode == 2, out.stderr + out.stdout
    assert "Traceback" not in out.stderr + out.stdout
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.slow
def test_a_sessions_dir_that_cannot_take_a_session_is_one_line_exit_2_and_nothing_written(
    bad_sessions_dir: tuple[Path, str], tmp_path: Path
):
    path, reason = bad_sessions_dir
    before = sorted(os.listdir(tmp_path)), _state_of(path)
    out = cli("run", "--headless", *SMALL, "--sessions-dir", str(path))
    _assert_one_line(out, str(path), reason)
    assert (sorted(os.listdir(tmp_path)), _state_of(path)) == before, "something was written"


def test_a_sessions_dir_from_the_environment_is_checked_the_same_way(tmp_path: Path):
    path = _a_file(tmp_path, None)  # type: ignore[arg-type]
    out = cli("run", "--headless", *SMALL, env={"MAESTRO_SESSIONS_DIR": str(path)})
    _assert_one_line(out, str(path), "not a folder")


@pytest.mark.slow
@pytest.mark.parametrize("make", [_a_file, _a_dangling_link], ids=["a-file", "a-dangling-link"])
@pytest.mark.parametrize("command", ["report {}", "decide {}", "decide {} P1-001 approve", "replay {}", "attach {}",
                                     "run --resume {}"])
def test_a_session_dir_that_is_not_a_folder_is_one_line_exit_2(tmp_path: Path, make, command: str):
    path = make(tmp_path, None)
    _assert_one_line(cli(*command.format(path).split()), str(path))


@pytest.mark.parametrize("make", [_a_file, _a_dangling_link], ids=["a-file", "a-dangling-link"])
def test_ls_on_a_sessions_dir_that_is_not_a_folder_is_one_line_exit_2(tmp_path: Path, make):
    path = make(tmp_path, None)
    _assert_one_line(cli("ls", "--sessions-dir", str(path)), str(path))


def test_ls_on_a_sessions_dir_that_does_not_exist_yet_lists_nothing(tmp_path: Path):
    out = cli("ls", "--sessions-dir", str(tmp_path / "none-yet"))
    assert out.returncode == 0 and "no sessions" in out.stdout and not out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", [("check-data",), ("backtest", "--data")], ids=" ".join)
@pytest.mark.parametrize("kind", ["a-folder", "a-dangling-link"])
def test_a_data_path_that_is_not_a_file_is_one_line_exit_2(tmp_path: Path, command, kind):
    path = tmp_path / "bars.csv"
    if kind == "a-folder":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "gone.csv")
    _assert_one_line(cli(*command, str(path)), str(path))


@pytest.mark.slow
def test_commands_that_write_into_a_read_only_session_say_so_in_one_line(reference: Path, tmp_path: Path):
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    _mount(["--bind", str(reference), str(frozen)])
    try:
        _mount(["-o", "remount,bind,ro", str(frozen)])
        for args in (("report", str(frozen)), ("decide", str(frozen), "P1-001", "approve"),
                     ("run", "--resume", str(frozen))):
            _assert_one_line(cli(*args), str(frozen), "ead-only")
    finally:
        subprocess.run(["umount", str(frozen)], capture_output=True)


# ---------------------------------------------------------------- the conductor's writer


def test_the_conductors_writes_land_in_the_order_asked_and_the_first_failure_stops_the_rest(tmp_path: Path):
    out = session_files.SessionWriter()
    log = tmp_path / "log.txt"

    def append(text: str) -> None:
        with open(log, "a") as fh:
            fh.write(text)

    def refuse() -> None:
        raise SessionWriteError(tmp_path / "trades.jsonl", "No space left on device")

    for k in range(50):
        out.write(append, f"{k},")
    out.flush()
    assert log.read_text() == "".join(f"{k}," for k in range(50))
    out.write(refuse)
    out.write(append, "after the failure")
    out.drain()  # waits, never raises
    with pytest.raises(SessionWriteError, match="No space left"):
        out.flush()
    with pytest.raises(SessionWriteError):
        out.write(append, "refused at once")
    out.close()
    assert log.read_text() == "".join(f"{k}," for k in range(50)), "a write after the failure was made"


def test_a_writer_without_a_thread_writes_at_once(tmp_path: Path):
    out = session_files.SessionWriter(background=False)
    out.write((tmp_path / "now.txt").write_text, "written")
    assert (tmp_path / "now.txt").read_text() == "written"

"""A process pool whose `submit` is one write to a pipe: the conductor's thread hands a task over without waking another.

`concurrent.futures.ProcessPoolExecutor` passes every task through two threads of the
submitting process (a manager that moves it to a queue, a feeder that writes it), and
every result back through the manager again. On a conductor whose one thread is the
limit, each of those hand-overs of the GIL costs more than the pickling itself: measured
on a default session, `submit` took 1.6 ms a call, most of it waiting for the GIL back.

Here each worker has a pipe of its own. `submit` pickles the call and writes it to the
least busy worker's pipe (the worker reads the next call when it is done with the one
before); one reader thread waits on every pipe and worker at once and settles the
futures. A worker that dies breaks the pool as it breaks a ProcessPoolExecutor: every
call in flight fails with `BrokenProcessPool`, and new calls are refused — what
engine.executor.TestRunner expects, to rebuild the pool and retry those tests alone.
"""

from __future__ import annotations

import collections
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future, InvalidStateError
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from typing import Any


@dataclass
class _Worker:
    process: Any  # a multiprocessing Process of the pool's context
    conn: Connection  # the pool's end of the worker's pipe
    calls: collections.deque[Future] = field(default_factory=collections.deque)  # sent, in order, not yet answered


class WorkerPool(Executor):
    """`workers` processes of `context`, each started with `initializer(*initargs)`, each fed through its own pipe."""

    def __init__(self, workers: int, context: BaseContext, initializer: Callable[..., None],
                 initargs: tuple[Any, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._closed = False
        self._workers: list[_Worker] = []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(  # type: ignore[attr-defined]  # every concrete context has one
                target=_serve, args=(theirs, initializer, initargs), daemon=True)
            process.start()
            theirs.close()
            self._workers.append(_Worker(process, ours))
        self._reader = threading.Thread(target=self._read, name="pool-reader", daemon=True)
        self._reader.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._broken is not None:
                raise BrokenProcessPool(self._broken)
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            worker = min(self._workers, key=lambda w: len(w.calls))
            worker.calls.append(future)
            # under the lock: the calls on a pipe are answered in the order written. A call is a few hundred
            # bytes, and the reader never takes this lock while a worker waits on it, so the write never blocks long
            try:
                worker.conn.send((fn, args, kwargs))
            except OSError as err:  # the worker is gone: the reader will say so to every call in flight
                worker.calls.pop()
                raise BrokenProcessPool(f"a worker process is gone ({err})") from err
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for worker in self._workers:
                if cancel_futures:  # what a worker has not begun: its result, if it comes, is not wanted
                    for future in list(worker.calls)[1:]:
                        future.cancel()
                try:
                    worker.conn.send(None)  # the worker ends after the calls before it
                except OSError:
                    pass
        if wait:  # the reader ends when every worker has
            for worker in self._workers:
                worker.process.join()
            self._reader.join()

    # ------------------------------------------------------------ the reader thread

    def _read(self) -> None:
        live = {w.conn: w for w in self._workers}  # pipes still open
        running = {w.process.sentinel: w for w in self._workers}  # processes not seen ended
        while live or running:
            ready = wait([*live, *running])
            for conn in [r for r in ready if r in live]:  # answers before deaths: a worker may answer, then die
                worker = live[conn]
                try:
                    ok, value, trace = conn.recv()
                except (EOFError, OSError):  # its end closed: it ended
                    del live[conn]
                    self._ended(worker)
                    continue
                except Exception as err:  # noqa: BLE001 - an answer that cannot be unpickled is that call's failure
                    ok, value, trace = False, err, ""
                with self._lock:
                    future = worker.calls.popleft() if worker.calls else None
                if future is not None:
                    _settle(future, ok, value, trace)
            for sentinel in [r for r in ready if r in running]:
                worker = running[sentinel]
                if worker.conn in live and worker.conn.poll():
                    continue  # what it wrote before it ended is read first
                del running[sentinel]
                live.pop(worker.conn, None)
                self._ended(worker)

    def _ended(self, worker: _Worker) -> None:
        """A worker's process ended: after `shutdown` with nothing left to answer, as it should; else it died."""
        with self._lock:
            expected = self._closed and not worker.calls
        if not expected:
            self._break(worker)

    def _break(self, worker: _Worker) -> None:
        """A worker died: the pool is broken, every call in flight fails, the other workers are stopped."""
        code = worker.process.exitcode
        with self._lock:
            if self._broken is None:
                self._broken = f"a worker process ended abruptly (exit code {code})"
            failed = [f for w in self._workers for f in w.calls]
            for w in self._workers:
                w.calls.clear()
        for w in self._workers:
            if w.process.is_alive():
                w.process.terminate()
        for future in failed:
            _settle(future, False, BrokenProcessPool(self._broken))


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, as its `__cause__` (as ProcessPoolExecutor gives it)."""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


def _settle(future: Future, ok: bool, value: Any, trace: str = "") -> None:
    try:
        if ok:
            future.set_result(value)
        else:
            if trace and isinstance(value, BaseException):
                value.__cause__ = RemoteTraceback(trace)
            future.set_exception(value)
    except InvalidStateError:  # cancelled at shutdown
        pass


def _serve(conn: Connection, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    """A worker: run each call read from `conn` and write back (True, result, "") or (False, exception, its
    traceback), until None."""
    initializer(*initargs)
    while True:
        try:
            call = conn.recv()
        except EOFError:
            return
        if call is None:
            return
        fn, args, kwargs = call
        try:
            answer = (True, fn(*args, **kwargs), "")
        except BaseException as err:  # noqa: BLE001 - the caller's to handle, as with any executor
            answer = (False, err, "".join(traceback.format_exception(err)))
        try:
            conn.send(answer)
        except Exception as err:  # noqa: BLE001 - an answer that cannot be pickled
            conn.send((False, RuntimeError(f"{type(err).__name__}: {err} (sending back {fn.__name__}'s answer)"), ""))

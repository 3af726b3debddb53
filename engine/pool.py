"""A process pool whose `submit` is one write to a pipe: the conductor's thread hands a task over without waking another.

`concurrent.futures.ProcessPoolExecutor` passes every task through two threads of the
submitting process (a manager that moves it to a queue, a feeder that writes it), and
every result back through the manager again. On a conductor whose one thread is the
limit, each of those hand-overs of the GIL costs more than the pickling itself: measured
on a default session, `submit` took 1.6 ms a call, most of it waiting for the GIL back.

Here each worker has a pipe of its own. `submit` pickles the call and writes it to the
pipe of a worker that has fewer than `DEPTH` calls (the one it runs, the next); when none
has, the call waits in the pool. One reader thread waits on every pipe and worker at once,
settles the futures, and hands a waiting call to the worker that has just answered: as
with one shared queue, a slow test holds up no other. A worker that dies breaks the pool as it breaks a ProcessPoolExecutor: every
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
from multiprocessing.reduction import ForkingPickler
from typing import Any


@dataclass
class _Worker:
    process: Any  # a multiprocessing Process of the pool's context
    conn: Connection  # the pool's end of the worker's pipe
    calls: collections.deque[Future] = field(default_factory=collections.deque)  # sent, in order, not yet answered


# calls written to a worker ahead of its answers: the one it runs and the next, so it never waits for the
# reader between two; the rest wait in the pool for whichever worker finishes first (a slow test holds up no other)
DEPTH = 2


class WorkerPool(Executor):
    """`workers` processes of `context`, each started with `initializer(*initargs)`, each fed through its own pipe."""

    def __init__(self, workers: int, context: BaseContext, initializer: Callable[..., None],
                 initargs: tuple[Any, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._closed = False
        self._told = False  # the workers were told to end (`_stop_when_sent`)
        self._pending: collections.deque[tuple[Future, bytes]] = collections.deque()  # calls no worker has yet
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
        call = bytes(ForkingPickler.dumps((fn, args, kwargs)))  # pickled here, outside the lock
        with self._lock:
            if self._broken is not None:
                raise BrokenProcessPool(self._broken)
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            worker = min(self._workers, key=lambda w: len(w.calls))
            if len(worker.calls) < DEPTH:
                self._send(worker, future, call)
            else:  # every worker has its next call: this one goes to the first that finishes one (the reader)
                self._pending.append((future, call))
        return future

    def _send(self, worker: _Worker, future: Future, call: bytes) -> None:
        """Write `call` to `worker` (under the lock: the calls on a pipe are answered in the order written; the
        reader reads answers outside it, so a write never waits long)."""
        worker.calls.append(future)
        try:
            worker.conn.send_bytes(call)
        except OSError:  # the worker is gone: the reader says so to every call in flight, this one too
            pass

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if cancel_futures:  # what no worker has begun: not wanted, even if its answer comes
                for future, _ in self._pending:
                    future.cancel()
                self._pending.clear()
                for worker in self._workers:
                    for future in list(worker.calls)[1:]:
                        future.cancel()
            self._stop_when_sent()
        if wait:  # the reader ends when every worker has
            self._reader.join()
            for worker in self._workers:
                worker.process.join()

    def _stop_when_sent(self) -> None:
        """After shutdown, once no call waits to be sent: tell every worker to end after its calls (under the lock)."""
        if self._closed and not self._pending and not self._told:
            self._told = True
            for worker in self._workers:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass

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
                    if self._pending and self._broken is None:  # the worker takes the next call waiting
                        self._send(worker, *self._pending.popleft())
                    self._stop_when_sent()
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
            failed = [f for w in self._workers for f in w.calls] + [f for f, _ in self._pending]
            for w in self._workers:
                w.calls.clear()
            self._pending.clear()
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
    traceback), until None. An exception that is not an `Exception` is not an answer: it ends the worker."""
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
        except Exception as err:  # noqa: BLE001 - the caller's to handle, as with any executor
            answer = (False, err, "".join(traceback.format_exception(err)))
        # anything else (SystemExit, KeyboardInterrupt) ends the worker: the pool breaks, the caller is told so
        try:
            conn.send(answer)
        except Exception as err:  # noqa: BLE001 - an answer that cannot be pickled
            conn.send((False, RuntimeError(f"{type(err).__name__}: {err} (sending back {fn.__name__}'s answer)"), ""))

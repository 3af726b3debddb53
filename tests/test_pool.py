"""engine.pool.WorkerPool: answers in order, a worker's exception with its traceback, a death breaking the pool as
ProcessPoolExecutor's does (engine.executor.TestRunner counts on it), and a shutdown that cancels what is queued."""

from __future__ import annotations

import math
import multiprocessing
import operator
import os
import signal
import time
from concurrent.futures import wait
from concurrent.futures.process import BrokenProcessPool

import pytest

from engine.pool import RemoteTraceback, WorkerPool

CONTEXT = multiprocessing.get_context("forkserver")


def no_setup() -> None:
    pass


@pytest.fixture
def pool():
    p = WorkerPool(2, CONTEXT, no_setup)
    yield p
    p.shutdown(wait=True, cancel_futures=True)


def test_every_call_is_answered_with_its_own_result_by_both_workers(pool: WorkerPool):
    futures = [pool.submit(operator.mul, k, k) for k in range(40)]
    assert [f.result(timeout=30) for f in futures] == [k * k for k in range(40)]
    pids = {f.result(timeout=30) for f in [pool.submit(os.getpid) for _ in range(8)]}
    assert len(pids) == 2 and os.getpid() not in pids


def test_calls_beyond_the_next_go_to_the_worker_that_finishes_first_not_behind_a_slow_one(pool: WorkerPool):
    slow = pool.submit(time.sleep, 5)
    quick = [pool.submit(os.getpid) for _ in range(6)]  # two written at once, the rest held for whichever answers
    assert quick[-1].result(timeout=30) and not slow.done()
    assert len({f.result(timeout=0) for f in quick[2:]}) == 1  # the free worker took every held call


def test_a_call_that_raises_fails_alone_with_the_workers_traceback(pool: WorkerPool):
    bad, good = pool.submit(math.sqrt, -1.0), pool.submit(math.sqrt, 4.0)
    with pytest.raises(ValueError, match="math domain error") as raised:
        bad.result(timeout=30)
    assert isinstance(raised.value.__cause__, RemoteTraceback) and "Traceback" in str(raised.value.__cause__)
    assert good.result(timeout=30) == 2.0
    assert pool.submit(abs, -3).result(timeout=30) == 3  # the pool goes on


def test_a_dead_worker_fails_every_call_in_flight_and_the_pool_refuses_more(pool: WorkerPool):
    pids = {f.result(timeout=30) for f in [pool.submit(os.getpid) for _ in range(8)]}
    slow = [pool.submit(time.sleep, 5) for _ in range(4)]  # two on each worker
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    done, _ = wait(slow, timeout=30)
    assert len(done) == 4
    assert all(isinstance(f.exception(), BrokenProcessPool) for f in slow)
    with pytest.raises(BrokenProcessPool):
        pool.submit(abs, -1)


def test_shutdown_cancelling_drops_the_queued_calls_and_ends_the_workers():
    pool = WorkerPool(1, CONTEXT, no_setup)
    running = pool.submit(time.sleep, 0.3)
    queued = [pool.submit(abs, -k) for k in range(5)]
    pool.shutdown(wait=True, cancel_futures=True)
    assert running.result(timeout=0) is None
    assert all(f.cancelled() for f in queued)
    assert all(not w.process.is_alive() for w in pool._workers)
    with pytest.raises(RuntimeError):
        pool.submit(abs, -1)

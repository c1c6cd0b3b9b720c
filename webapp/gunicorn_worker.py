"""The gunicorn worker: gthread, with new connections spread evenly over the workers.

Gunicorn's workers share one listening socket, and a gthread worker accepts every connection
it is woken for, however many it already holds (gunicorn issues #908, #2817, #3433). A
keep-alive connection then stays with that worker for its whole life. When a proxy or a load
generator opens its connections in a burst, one worker often takes all of them: it serves
every request on one core while the other workers idle, at half the throughput on two cores
(measured: 8 connections split 8/0 between 2 workers served 337-353 requests/s, any other
split 576-690).

This worker gives way, as nginx's workers do (``accept_mutex_delay``): the workers publish
how many connections each holds in a table they share (made before the master forks them),
and one holding more than one connection beyond the least loaded live worker waits a moment
before it accepts, longer the more it holds beyond. Every worker is woken for a new
connection, so the less loaded one accepts it meanwhile and the other finds nothing left
(``EAGAIN``, which gunicorn ignores). Workers within one connection of each other accept at
once, so a stream of short connections is not slowed (measured with ``Connection: close``:
1,344-1,640 requests/s against 1,272-1,511 for plain gthread, where waiting on a worker's own
count alone, whatever the others held, cut it to 830); a worker still accepts after at most
``MAX_ACCEPT_DELAY``, and gives way to no one when the table has no other live worker.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

GIVE_WAY_BEYOND = 1  # connections a worker may hold beyond the least loaded one's
ACCEPT_DELAY = 0.002  # seconds a worker waits per connection held beyond that
MAX_ACCEPT_DELAY = 0.010
SLOTS = 256  # workers that can share the table; any more accept without giving way

# (pid, connections held) per worker. Anonymous shared memory, made when the master imports
# this module (to load the worker class), so every worker it forks shares it.
_table = multiprocessing.RawArray(ctypes.c_long, 2 * SLOTS)
_claiming = multiprocessing.Lock()


def accept_delay(mine: int, fewest: int | None) -> float:
    """How long a worker holding ``mine`` connections waits before accepting one more, when
    the least loaded other live worker holds ``fewest`` (``None``: there is none)."""
    beyond = 0 if fewest is None else mine - fewest - GIVE_WAY_BEYOND
    if beyond <= 0:
        return 0.0
    return min(beyond * ACCEPT_DELAY, MAX_ACCEPT_DELAY)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's (not ours to signal)
        return True
    return True


def claim_slot(pid: int) -> int | None:
    """A row of the table for worker ``pid``: a free one, or one a dead worker left."""
    with _claiming:
        for slot in range(SLOTS):
            holder = _table[2 * slot]
            if holder in (0, pid) or not _alive(holder):
                _table[2 * slot], _table[2 * slot + 1] = pid, 0
                return slot
    return None


def release_slot(slot: int | None) -> None:
    if slot is not None:
        with _claiming:
            _table[2 * slot], _table[2 * slot + 1] = 0, 0


def set_connections(slot: int, held: int) -> None:
    _table[2 * slot + 1] = held


def fewest_elsewhere(slot: int) -> int | None:
    """The fewest connections any other live worker holds (``None`` when there is none)."""
    rows = _table[:]  # one copy of the whole table
    held = [
        (rows[2 * other + 1], rows[2 * other])
        for other in range(SLOTS)
        if rows[2 * other] and other != slot
    ]
    # A worker killed before it could clear its row is no one to give way to: the next
    # least loaded is asked (usually the first one asked is alive).
    for fewest, pid in sorted(held):
        if _alive(pid):
            return fewest
    return None


class BalancedThreadWorker(ThreadWorker):
    """gthread, leaving new connections to less loaded workers for a few milliseconds."""

    slot: int | None = None

    def init_process(self) -> None:
        self.slot = claim_slot(os.getpid())
        super().init_process()  # runs the worker until it exits

    def run(self) -> None:
        try:
            super().run()
        finally:
            release_slot(self.slot)

    def publish(self) -> None:
        if self.slot is not None:
            set_connections(self.slot, self.nr_conns)

    def accept(self, server: Any, listener: Any) -> None:
        if self.slot is not None:
            delay = accept_delay(self.nr_conns, fewest_elsewhere(self.slot))
            if delay:
                # Requests being served go on meanwhile; the less loaded worker is awake too.
                time.sleep(delay)
        super().accept(server, listener)
        self.publish()

    def finish_request(self, fs: Any) -> None:
        super().finish_request(fs)
        self.publish()

    def murder_keepalived(self) -> None:
        super().murder_keepalived()
        self.publish()

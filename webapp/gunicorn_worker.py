"""The gunicorn worker: gthread, with new connections spread evenly over the workers.

Gunicorn's workers share one listening socket, and a gthread worker accepts every connection
it is woken for, however many it already holds (gunicorn issues #908, #2817, #3433). A
keep-alive connection then stays with that worker for its whole life. When a proxy or a load
generator opens its connections in a burst, one worker often takes all of them: it serves
every request on one core while the other workers idle, at half the throughput on two cores
(measured: 8 connections split 8/0 between 2 workers served 337-353 requests/s, any other
split 576-690).

This worker gives way, as nginx's workers do (``accept_mutex_delay``): one that already
holds at least as many connections as it has threads waits a moment before it accepts, a
little longer for each connection it holds beyond that. Every worker is woken for a new
connection, so a less loaded worker accepts it in the meantime and the loaded one finds
nothing left (``EAGAIN``, which gunicorn ignores). A worker still accepts when all are
loaded, after at most ``MAX_ACCEPT_DELAY``; with few connections it accepts at once.
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

ACCEPT_DELAY = 0.002  # seconds per connection held beyond the thread count
MAX_ACCEPT_DELAY = 0.010


def accept_delay(connections: int, threads: int) -> float:
    """How long a worker holding ``connections`` waits before accepting one more."""
    beyond = connections - threads + 1
    if beyond <= 0:
        return 0.0
    return min(beyond * ACCEPT_DELAY, MAX_ACCEPT_DELAY)


class BalancedThreadWorker(ThreadWorker):
    """gthread, leaving new connections to less loaded workers for a few milliseconds."""

    def accept(self, server: Any, listener: Any) -> None:
        delay = accept_delay(self.nr_conns, self.cfg.threads)
        if delay:
            # The main thread only polls; while it sleeps the request threads go on.
            time.sleep(delay)
        super().accept(server, listener)

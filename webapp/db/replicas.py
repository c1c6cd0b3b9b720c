"""Read replicas: which server a request's queries go to, and when a replica is trusted.

- **Routing.** With ``DATABASE_REPLICA_URLS`` set, each replica is a Flask-SQLAlchemy bind
  (``replica-0``, ...) and ``db.session`` is a :class:`RoutingSession`, whose ``get_bind``
  (SQLAlchemy's documented hook for choosing an engine per session) answers one engine for the
  whole request, chosen before its first statement: a GET/HEAD/OPTIONS request whose view is
  not marked ``@changes_data``, ``@reads_in_transaction`` or :func:`reads_from_primary`
  reads from a replica; every other request runs wholly on the primary. A GET that writes
  without its mark is refused by the write guard (``webapp.db.session``) before anything
  runs, so no request is ever half on a replica and half on the primary.
- **Read-your-writes.** After a request commits, the primary's WAL insert position (read
  after the commit, so the commit record is behind it) goes into the browser's signed
  session; that browser's reads go to a replica only once it has replayed that far.
- **Positions without a round trip per request.** Each process keeps each replica's replayed
  position, refreshed at most every ``REPLICA_POSITION_MAX_AGE`` seconds; a browser whose
  last write is newer than the cached position costs one fresh check of the replica.
- **Lag, timed** (DESIGN §7): WAL the replica had received but not replayed when we looked,
  and primary positions this process saw committed that the replica has not replayed, each
  with the time it was first known; the lag is the age of the oldest one still pending. An
  idle primary therefore causes no lag, however old the last replayed transaction is.
- **Faults.** A replica that cannot be reached, errors under a request, lags more than
  ``REPLICA_MAX_LAG_SECONDS`` or is no longer a standby is skipped for
  ``REPLICA_RETRY_SECONDS``. A read request whose replica failed under it is run again,
  whole, on the primary (:class:`ReplicaRetry`), so no request fails because of a replica.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import flask_sqlalchemy.session
from flask import Flask, current_app, g, has_request_context, request
from flask import session as browser_session
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from webapp.db.session import READ_METHODS, reads_without_transaction

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

EXTENSION = "webapp.replicas"
BIND_PREFIX = "replica-"
SESSION_LSN = "_db_lsn"  # the primary's WAL position after this browser's last commit
ENVIRON_DB = "webapp.db"  # "primary" or "replica": where the request's reads went
ENVIRON_REPLICA = "webapp.replica"  # host:port of that replica
ENVIRON_REPLICA_FAILED = "webapp.replica_failed"  # set by the error page: run it again
ENVIRON_PRIMARY_ONLY = "webapp.primary_only"  # set for that second run
REPLICA_CONNECT_TIMEOUT = 2  # seconds: a replica that does not answer by then is skipped
MAX_PENDING = 64  # positions remembered per replica for its lag (merged beyond that)

# One round trip: what the standby has received and replayed (bytes since 0/0), and whether
# it still is a standby (a promoted one answers NULL for both).
POSITION_SQL = text(
    "SELECT pg_is_in_recovery(),"
    " (pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::bigint,"
    " (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"
)
# After a commit: the end of the WAL written so far, so at or past that commit's record.
PRIMARY_POSITION_SQL = text("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint")

View = TypeVar("View", bound=Callable[..., Any])


def reads_from_primary(view: View) -> View:
    """Mark a read view that must see the primary itself (readiness checks)."""
    view.db_route = "primary"  # type: ignore[attr-defined]
    return view


def address_of(url: str) -> str:
    """``host:port`` of a database URL (the first host of a multi-host one)."""
    parsed = make_url(url)
    hosts = parsed.query.get("host")
    if hosts:
        first = hosts if isinstance(hosts, str) else hosts[0]
        return first if ":" in first else f"{first}:5432"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def bind_options(urls: list[str], engine_options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``SQLALCHEMY_BINDS`` entries for the replicas: the primary's pool options, a short
    connect timeout (libpq's, unless the URL sets one)."""
    binds = {}
    for number, url in enumerate(urls):
        options: dict[str, Any] = {**engine_options, "url": url}
        connect_args = dict(options.get("connect_args", {}))
        if "connect_timeout" not in make_url(url).query:
            connect_args.setdefault("connect_timeout", REPLICA_CONNECT_TIMEOUT)
        options["connect_args"] = connect_args
        binds[f"{BIND_PREFIX}{number}"] = options
    return binds


@dataclass
class Replica:
    """One standby as this process sees it."""

    address: str
    engine: Engine
    replayed: int | None = None  # bytes of WAL replayed when last checked
    checked_at: float = float("-inf")  # time.monotonic() of that check
    skipped_until: float = 0.0
    reason: str = ""  # why it is skipped
    # (first known at, position) of WAL known to exist that the replica had not replayed.
    pending: deque[tuple[float, int]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one check at a time
    positions: threading.Lock = field(default_factory=threading.Lock)  # guards the above

    def lag(self, now: float) -> float:
        with self.positions:
            return now - self.pending[0][0] if self.pending else 0.0

    def expect(self, position: int, now: float) -> None:
        """WAL up to ``position`` exists (received by it, or committed on the primary)."""
        with self.positions:
            self._expect(position, now)

    def _expect(self, position: int, now: float) -> None:
        if self.replayed is not None and position <= self.replayed:
            return
        if self.pending and position <= self.pending[-1][1]:
            return
        if len(self.pending) >= MAX_PENDING:  # merge: the lag is overstated, never understated
            self.pending[-1] = (self.pending[-1][0], position)
        else:
            self.pending.append((now, position))

    def observe(self, received: int | None, replayed: int, now: float) -> None:
        with self.positions:
            self.replayed = replayed
            self.checked_at = now
            while self.pending and self.pending[0][1] <= replayed:
                self.pending.popleft()
            if received is not None:
                self._expect(received, now)


class ReplicaSet:
    """The replicas of one process, their cached positions and which one a read may use."""

    def __init__(
        self,
        replicas: list[Replica],
        *,
        max_lag: float,
        retry_after: float,
        position_max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replicas = replicas
        self.max_lag = max_lag
        self.retry_after = retry_after
        self.position_max_age = position_max_age
        self.clock = clock
        self._turn = itertools.count()

    def pick(self, after: int | None) -> Replica | None:
        """A replica to read from that has replayed ``after`` (if given), else None."""
        count = len(self.replicas)
        start = next(self._turn) % count
        for step in range(count):
            replica = self.replicas[(start + step) % count]
            if self.usable(replica, after):
                return replica
        return None

    def usable(self, replica: Replica, after: int | None) -> bool:
        now = self.clock()
        if now < replica.skipped_until:
            return False
        if now - replica.checked_at >= self.position_max_age and not self.refresh(replica):
            return False
        if replica.replayed is None:  # another thread is checking it for the first time
            return False
        lag = replica.lag(self.clock())
        if lag > self.max_lag:
            self.skip(replica, f"lagging {lag:.1f} s behind the primary")
            return False
        if after is None or replica.replayed >= after:
            return True
        # Behind this browser's last write by the cached position: look again, once.
        return self.refresh(replica) and replica.replayed >= after

    def refresh(self, replica: Replica) -> bool:
        """Ask the replica where it is; False if it cannot be used (then it is skipped)."""
        if not replica.lock.acquire(blocking=False):
            return True  # another thread is asking: use what is known
        try:
            with replica.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                standby, received, replayed = conn.execute(POSITION_SQL).one()
        except SQLAlchemyError as error:
            self.skip(replica, f"unreachable: {first_line(error)}")
            return False
        finally:
            replica.lock.release()
        if not standby or replayed is None:
            self.skip(replica, "not a standby (promoted?)")
            return False
        replica.observe(received, replayed, self.clock())
        return True

    def skip(self, replica: Replica, reason: str) -> None:
        replica.skipped_until = self.clock() + self.retry_after
        replica.reason = reason
        replica.checked_at = float("-inf")  # check it afresh when it is tried again

    def committed(self, position: int) -> None:
        """The primary wrote up to ``position``: every replica must replay that far."""
        now = self.clock()
        for replica in self.replicas:
            replica.expect(position, now)

    def by_address(self, address: str) -> Replica | None:
        return next((r for r in self.replicas if r.address == address), None)

    def report(self) -> list[dict[str, Any]]:
        """Each replica's state and lag, as ``/readyz`` lists them (checked if stale)."""
        states = []
        for replica in self.replicas:
            now = self.clock()
            if now >= replica.skipped_until and now - replica.checked_at >= self.position_max_age:
                self.refresh(replica)
            now = self.clock()
            state: dict[str, Any] = {"replica": replica.address}
            if now < replica.skipped_until:
                state.update(
                    state="skipped",
                    reason=replica.reason,
                    retry_in_seconds=round(replica.skipped_until - now, 1),
                )
            else:
                lag = replica.lag(now)
                state["state"] = "ok" if lag <= self.max_lag else "lagging"
                state["lag_seconds"] = round(lag, 3)
            states.append(state)
        return states


def first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def replica_set() -> ReplicaSet | None:
    return current_app.extensions.get(EXTENSION)


def replica_report() -> dict[str, list[dict[str, Any]]]:
    """``{"replicas": [...]}`` for ``/readyz``; nothing when there are no replicas."""
    replicas = replica_set()
    return {"replicas": replicas.report()} if replicas is not None else {}


# -- routing ------------------------------------------------------------------------------


def request_replica() -> Replica | None:
    """The replica this request reads from (None: the primary), chosen on first use."""
    try:
        return g._db_replica
    except AttributeError:
        pass
    replicas = replica_set()
    replica = None
    if replicas is not None and reads_on_replica():
        after = browser_session.get(SESSION_LSN)
        replica = replicas.pick(after if isinstance(after, int) else None)
    g._db_replica = replica
    request.environ[ENVIRON_DB] = "replica" if replica else "primary"
    if replica is not None:
        request.environ[ENVIRON_REPLICA] = replica.address
    return replica


def reads_on_replica() -> bool:
    """A read request, not asked to run on the primary, whose view needs no transaction."""
    if request.environ.get(ENVIRON_PRIMARY_ONLY) or not reads_without_transaction():
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "db_route", None) != "primary"


class RoutingSession(flask_sqlalchemy.session.Session):
    """``db.session``: a read request's statements go to its replica, all others to the
    primary (or to the bind Flask-SQLAlchemy chooses)."""

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: Engine | Connection | None = None,
        **kwargs: Any,
    ) -> Engine | Connection:
        if bind is None and has_request_context() and EXTENSION in current_app.extensions:
            replica = request_replica()
            if replica is not None:
                return replica.engine
        return super().get_bind(mapper, clause=clause, bind=bind, **kwargs)


@event.listens_for(RoutingSession, "after_commit")
def _note_commit(_session: RoutingSession) -> None:
    if has_request_context() and EXTENSION in current_app.extensions:
        g._db_committed = True


def remember_commit_position(response: Any) -> Any:
    """After a request that committed: the browser carries the primary's position."""
    replicas = replica_set()
    if replicas is None or not g.get("_db_committed"):
        return response
    from webapp.extensions import db

    try:
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            position = conn.scalar(PRIMARY_POSITION_SQL)
    except SQLAlchemyError as error:
        current_app.logger.warning("could not read the primary's WAL position: %s", error)
        return response
    if position is not None:
        previous = browser_session.get(SESSION_LSN)
        browser_session[SESSION_LSN] = max(position, previous if isinstance(previous, int) else 0)
        replicas.committed(position)
    return response


# -- a replica that fails under a request -------------------------------------------------

STATEMENT_FAULTS = ("ProgrammingError", "DataError", "IntegrityError", "NotSupportedError")


def retry_on_primary(error: DBAPIError) -> bool:
    """True if ``error`` came from this request's replica: the request will run again on the
    primary (and, unless our SQL was at fault, the replica is skipped for a while)."""
    if not has_request_context() or EXTENSION not in current_app.extensions:
        return False
    replica = g.get("_db_replica")
    replicas = replica_set()
    if replica is None or replicas is None:
        return False
    if error.connection_invalidated or type(error).__name__ not in STATEMENT_FAULTS:
        replicas.skip(replica, f"failed under a request: {first_line(error)}")
    request.environ[ENVIRON_REPLICA_FAILED] = replica.address
    current_app.logger.warning(
        "replica %s failed, reading from the primary: %s", replica.address, first_line(error)
    )
    return True


class ReplicaRetry:
    """WSGI middleware: a read request whose replica failed is answered by a second run on
    the primary. The first run's answer is held (it is never sent) until it is known."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in READ_METHODS:
            return self.app(environ, start_response)
        held: list[tuple[str, list[tuple[str, str]], Any]] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            held.append((status, headers, exc_info))
            return _no_write

        body = self.app(environ, hold)
        if environ.pop(ENVIRON_REPLICA_FAILED, None):
            close = getattr(body, "close", None)
            if close is not None:
                close()
            environ[ENVIRON_PRIMARY_ONLY] = True
            environ.pop(ENVIRON_REPLICA, None)
            return self.app(environ, start_response)
        if held:
            start_response(*held[-1])
        return body


def _no_write(_data: bytes) -> None:
    raise RuntimeError("the write() callable is not supported while a response is held")


# -- set-up -------------------------------------------------------------------------------


def register(app: Flask) -> None:
    """Route reads to the configured replicas (nothing at all without them)."""
    from webapp.extensions import db

    keys = sorted(k for k in app.config.get("SQLALCHEMY_BINDS", {}) if k.startswith(BIND_PREFIX))
    if not keys:
        return
    with app.app_context():
        replicas = [
            Replica(address_of(str(app.config["SQLALCHEMY_BINDS"][key]["url"])), db.engines[key])
            for key in keys
        ]
    app.extensions[EXTENSION] = ReplicaSet(
        replicas,
        max_lag=app.config["REPLICA_MAX_LAG_SECONDS"],
        retry_after=app.config["REPLICA_RETRY_SECONDS"],
        position_max_age=app.config["REPLICA_POSITION_MAX_AGE"],
    )
    app.after_request(remember_commit_position)
    app.wsgi_app = ReplicaRetry(app.wsgi_app)  # type: ignore[method-assign]

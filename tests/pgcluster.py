"""Private PostgreSQL servers for tests and drills: a primary, streaming standbys, PgBouncer.

Each server lives in a temporary folder on a free port, so restarting, stopping or promoting
it disturbs nothing else on the machine (the shared test server is never touched).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path:
    bin_dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not bin_dirs:
        raise FileNotFoundError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return bin_dirs[-1]


def as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the postgres user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PrivateCluster:
    """A PostgreSQL server of our own, in a temporary folder on a free port."""

    def __init__(self, database: str = "webapp", folder: Path | None = None) -> None:
        self.bin = postgres_bin()
        self.folder = folder or Path(tempfile.mkdtemp(prefix="webapp-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.database = database
        self.as_postgres = as_postgres()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{self.database}"

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.as_postgres, *args], check=True, capture_output=True)

    def pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            str(self.bin / "pg_ctl"),
            action,
            "-w",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-o",
            options,
            *extra,
        )

    def _own_folder(self) -> None:
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")

    def init(self, settings: dict[str, str] | None = None) -> None:
        """``initdb`` (trust for local connections and replication) plus extra settings."""
        self._own_folder()
        self.run(
            str(self.bin / "initdb"), "-N", "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        self.configure(settings or {})

    def configure(self, settings: dict[str, str]) -> None:
        if settings:
            conf = self.data / "postgresql.auto.conf"
            with conf.open("a") as file:
                file.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    def start(self, settings: dict[str, str] | None = None) -> None:
        if not self.data.exists():
            self.init(settings)
        elif settings:
            self.configure(settings)
        self.pg_ctl("start")

    def restart(self) -> None:
        self.pg_ctl("restart")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("stop", "-m", mode)

    def promote(self) -> None:
        self.pg_ctl("promote")

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        try:
            if self.is_running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def standby(
        self, settings: dict[str, str] | None = None, application_name: str | None = None
    ) -> PrivateCluster:
        """A new streaming standby of this server (``pg_basebackup -R``), started.

        ``application_name`` goes into its ``primary_conninfo``: the name the primary's
        ``synchronous_standby_names`` knows it by."""
        replica = PrivateCluster(self.database)
        replica._own_folder()
        self.run(
            str(self.bin / "pg_basebackup"),
            "-D",
            str(replica.data),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        if application_name:
            replica.name_in_conninfo(application_name)
        replica.start(settings)
        return replica

    def name_in_conninfo(self, application_name: str) -> None:
        """Add ``application_name`` to the ``primary_conninfo`` that ``-R`` wrote."""
        conf = self.data / "postgresql.auto.conf"
        lines = conf.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.startswith("primary_conninfo = '"):
                lines[number] = line[:-1] + f" application_name={application_name}'"
        conf.write_text("\n".join(lines) + "\n")

    def cut_off_standbys(self) -> None:
        """Break the link to every standby and keep it broken: replication connections are
        refused (``pg_hba.conf``, reloaded) and the WAL senders are ended. A standby retries
        every ``wal_retrieve_retry_interval``; with synchronous replication, commits wait."""
        hba = self.data / "pg_hba.conf"
        hba.write_text("host replication all all reject\n" + hba.read_text())
        self.sql("SELECT pg_reload_conf()")
        self.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication")

    def rewind_from(self, source: PrivateCluster) -> None:
        """Make this stopped former primary a standby of ``source`` (``pg_rewind -R``): the
        WAL it wrote that ``source`` never received is undone, then it replays from
        ``source``. Needs ``wal_log_hints = on`` (or data checksums) on this server, and its
        WAL back to the last checkpoint the two share (``wal_keep_size``)."""
        self.run(
            str(self.bin / "pg_rewind"),
            "-D",
            str(self.data),
            f"--source-server=host=127.0.0.1 port={source.port} user=postgres dbname=postgres",
            "-R",
        )

    def sql(self, statement: str, database: str | None = None) -> object:
        """Run one statement in autocommit on this server; the first column of its first row."""
        url = make_url(self.url).set(database=database or self.database)
        engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                result = conn.execute(text(statement))
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()

    def create_database(self) -> None:
        self.sql(f'CREATE DATABASE "{self.database}"', database="postgres")

    def wait_until(self, statement: str, timeout: float = 10.0) -> None:
        """Poll ``statement`` until it answers true."""
        deadline = time.monotonic() + timeout
        while not self.sql(statement):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.address}: still not true after {timeout} s: {statement}")
            time.sleep(0.05)


def replayed(primary: PrivateCluster, standby: PrivateCluster, timeout: float = 10.0) -> None:
    """Wait until ``standby`` has replayed everything ``primary`` has written so far."""
    lsn = primary.sql("SELECT pg_current_wal_lsn()")
    standby.wait_until(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn", timeout)


class PgBouncer:
    """Debian's pgbouncer in ``pool_mode = transaction`` on a free port, for given servers."""

    BINARY = "/usr/sbin/pgbouncer"

    def __init__(self, databases: dict[str, str]) -> None:
        """``databases``: the name clients use (``*``: any) → ``host:port[/dbname]``."""
        self.databases = databases
        self.folder = Path(tempfile.mkdtemp(prefix="webapp-pgbouncer-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return Path(PgBouncer.BINARY).exists()

    def url(self, name: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def ini(self) -> str:
        lines = ["[databases]"]
        for name, target in self.databases.items():
            address, _, dbname = target.partition("/")
            host, port = address.rsplit(":", 1)
            entry = f"{name} = host={host} port={port}"
            lines.append(f"{entry} dbname={dbname}" if dbname else entry)
        lines += [
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            f"unix_socket_dir = {self.folder}",
            "auth_type = trust",
            f"auth_file = {self.folder / 'users.txt'}",
            "pool_mode = transaction",
            "default_pool_size = 20",
            "max_client_conn = 500",
            "server_reset_query =",
            # A server that is down answers its waiting clients with an error within seconds.
            "server_login_retry = 1",
            "server_connect_timeout = 2",
            "query_wait_timeout = 5",
            "ignore_startup_parameters = extra_float_digits,options",
            f"logfile = {self.folder / 'pgbouncer.log'}",
            "admin_users = postgres",
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        (self.folder / "users.txt").write_text('"postgres" ""\n')
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(self.ini())
        command = [self.BINARY, str(ini)]
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            for path in self.folder.iterdir():
                shutil.chown(path, "postgres", "postgres")
            command = [*as_postgres(), *command]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"pgbouncer did not start: see {self.folder}") from None
                time.sleep(0.05)

    def admin(self, command: str) -> None:
        """A command on PgBouncer's admin console (``KILL db``, ``RESUME db``, ...)."""
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="pgbouncer"
        )
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(command)
        finally:
            conn.close()

    def wait_reachable(self, name: str, timeout: float = 10.0) -> None:
        """Until a query through this PgBouncer reaches the server behind ``name``."""
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = psycopg2.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname=name
                )
                try:
                    with conn.cursor() as cursor:
                        cursor.execute("SELECT 1")
                    return
                finally:
                    conn.close()
            except psycopg2.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


_TEST_BOUNCER: PgBouncer | None = None


def run_pgbouncer(server: str) -> PgBouncer:
    """The PgBouncer this test run goes through (``TEST_VIA_PGBOUNCER=1``), started once and
    stopped when the run ends; ``server`` is ``host:port`` of the PostgreSQL behind it."""
    global _TEST_BOUNCER
    if _TEST_BOUNCER is None:
        import atexit

        _TEST_BOUNCER = PgBouncer({"*": server})
        _TEST_BOUNCER.start()
        atexit.register(_TEST_BOUNCER.stop)
    return _TEST_BOUNCER


def via_pgbouncer() -> bool:
    return os.environ.get("TEST_VIA_PGBOUNCER", "").lower() in {"1", "true", "yes"}

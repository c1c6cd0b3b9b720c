"""``make replica-demo``: the app on a primary, a streaming standby and PgBouncer, on one machine.

    python -m tests.replica_demo                 # serves until Ctrl-C
    python -m tests.replica_demo --check         # start, one read served by the replica, stop

Starts, on free ports in temporary folders (the shared PostgreSQL is never touched): a
private primary, one standby (``pg_basebackup -R``) and Debian's pgbouncer (transaction mode)
in front of the primary. Migrates through ``MIGRATIONS_DATABASE_URL`` (the primary directly),
seeds a little data and a sign-in, then serves the app with gunicorn: ``DATABASE_URL``
through PgBouncer, ``DATABASE_REPLICA_URLS`` the standby. Each request's JSON log line on
stdout says where its reads went (``"db"``). Ctrl-C stops everything and removes the folders.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.pgcluster import PgBouncer, PrivateCluster, free_port, postgres_bin, replayed
from tests.soak.http import Browser

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "webapp_demo"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password-1"  # a throwaway demo database


def flask(env: dict[str, str], *args: str) -> None:
    command = [sys.executable, "-m", "flask", "--app", "webapp", *args]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.1)


def read_on_replica(port: int, log_path: Path) -> dict[str, object]:
    """GET /posts/ once; the request's log line (it must say the replica served it)."""
    browser = Browser("127.0.0.1", port)
    result = browser.get("/posts/")
    browser.close()
    if result.status != 200:
        raise RuntimeError(f"/posts/ answered {result.status}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if line.startswith("{"):
                record = dict(json.loads(line))
                if record.get("path") == "/posts/":
                    return record
        time.sleep(0.1)
    raise RuntimeError(f"no log line for /posts/ in {log_path}: {log_path.read_text()[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="the app's port (default: free)")
    parser.add_argument("--check", action="store_true", help="one read, then stop")
    args = parser.parse_args(argv)
    postgres_bin()
    if not PgBouncer.available():
        raise SystemExit(f"make replica-demo needs pgbouncer at {PgBouncer.BINARY}")
    primary = PrivateCluster(DATABASE)
    standby: PrivateCluster | None = None
    bouncer: PgBouncer | None = None
    gunicorn: subprocess.Popen[bytes] | None = None
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        print(f"primary   127.0.0.1:{primary.port}  ({primary.folder})", flush=True)
        primary.start()
        primary.create_database()
        standby = primary.standby()
        print(f"standby   127.0.0.1:{standby.port}  ({standby.folder})", flush=True)
        bouncer = PgBouncer({DATABASE: f"{primary.address}/{DATABASE}"})
        bouncer.start()
        print(f"pgbouncer 127.0.0.1:{bouncer.port}  (transaction mode, to the primary)")
        port = args.port or free_port()
        env = {
            **os.environ,
            "WEBAPP_ENV": "development",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "SITE_URL": f"http://127.0.0.1:{port}",
            "DATABASE_URL": bouncer.url(DATABASE),
            "DATABASE_REPLICA_URLS": standby.url,
            "MIGRATIONS_DATABASE_URL": primary.url,
            "WEB_CONCURRENCY": "2",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
        }
        print("migrating (MIGRATIONS_DATABASE_URL: the primary directly) and seeding", flush=True)
        flask(env, "db", "upgrade")
        flask(env, "seed", "--users", "20", "--items", "200", "--posts", "100", "--tags", "10")
        account = ("--email", "demo@example.com", "--username", DEMO_USER)
        flask(env, "create-admin", *account, "--password", DEMO_PASSWORD)
        replayed(primary, standby)
        log_path = primary.folder / "gunicorn.log"
        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            "python:webapp.gunicorn_conf",
            "wsgi:app",
        ]
        output = log_path.open("wb") if args.check else None
        gunicorn = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
        wait_for_port(port, gunicorn)
        if args.check:
            line = read_on_replica(port, log_path)
            print(json.dumps(line))
            return 0 if line.get("db") == "replica" else 1
        print(HELP.format(port=port, standby=standby, primary=primary, bouncer=bouncer), flush=True)
        while not stopping and gunicorn.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping gunicorn, pgbouncer, the standby and the primary", flush=True)
        if gunicorn is not None and gunicorn.poll() is None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=30)
        if bouncer is not None:
            bouncer.stop()
        if standby is not None:
            standby.remove()
        primary.remove()
    return 0


HELP = """
The app: http://127.0.0.1:{port}/   (sign in as demo / demo-password-1)

Watch reads move: each request's JSON log line below says where its reads went.
  curl -s -o /dev/null http://127.0.0.1:{port}/posts/
      -> "db": "replica", "replica": "{standby.address}"
  sign in and create an item                               -> the POST runs on the primary; your
                                                              next pages read from the replica once
                                                              it has replayed your write
  hold the standby's replay, then write and read again:
    psql -h 127.0.0.1 -p {standby.port} -U postgres -c 'SELECT pg_wal_replay_pause()'
                                                           -> your reads go to the primary ("db":
                                                              "primary"); others' after 10 s of lag
    psql -h 127.0.0.1 -p {standby.port} -U postgres -c 'SELECT pg_wal_replay_resume()'
  curl -s http://127.0.0.1:{port}/readyz                  -> the replica's state and lag
  psql -h 127.0.0.1 -p {primary.port} -U postgres {primary.database}
      (the primary directly; through PgBouncer: -p {bouncer.port})

Ctrl-C stops everything.
"""


if __name__ == "__main__":
    raise SystemExit(main())

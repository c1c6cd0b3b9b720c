"""``make bench-import``: 100,000 user rows imported through the admin's import code, beside a
plain ``COPY`` of the same rows, in one run on PostgreSQL.

1. The database (``BENCH_DATABASE_URL``, default ``webapp_import_bench`` on the local
   PostgreSQL) gets the models' tables afresh; one admin does the import.
2. A CSV of ``--rows`` users (the export's columns, ``id`` left empty) is made in memory.
3. Import, timed as the view runs it (in process, no HTTP): ``check_file`` (every row through
   the forms' fields, the file-wide and database checks), ``write_rows`` (the users, and one
   outbox invitation each), the audit event, the commit.
4. ``COPY ... FROM STDIN (FORMAT csv)`` of the same rows into a scratch table made ``LIKE
   users INCLUDING ALL`` (the same indexes, the trigram one too), committed; then dropped.

Exit status 0 when the import took under ``--budget`` seconds (30), 1 when not, 2 when it
cannot run.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from webapp import create_app
from webapp.admin.import_rows import KINDS, check_file, write_rows
from webapp.audit import audit
from webapp.config import normalise_database_url
from webapp.extensions import db
from webapp.models import User

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/webapp_import_bench"
HEADER = ["id", "email", "username", "active", "admin", "created_at", "email_confirmed_at",
          "last_login_at"]  # fmt: skip
COPY_COLUMNS = "email, username, hashed_password, is_active, is_admin, created_at"
WHEN = "2024-03-01T10:00:00+00:00"


def ensure_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            if not found:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def users_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for n in range(rows):
        writer.writerow(["", f"bench{n}@example.com", f"bench{n}", "true", "false", WHEN, "", ""])
    return out.getvalue().encode()


def copy_csv(rows: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for n in range(rows):
        writer.writerow([f"bench{n}@example.com", f"bench{n}", "!imported$x", "t", "f", WHEN])
    return out.getvalue()


def timed(label: str, results: dict[str, float], function: Any) -> Any:
    started = time.perf_counter()
    value = function()
    results[label] = time.perf_counter() - started
    return value


def run(url: str, rows: int) -> dict[str, float]:
    ensure_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "RATELIMIT_ENABLED": False})
    results: dict[str, float] = {}
    with app.app_context():
        with db.engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            db.metadata.create_all(conn)
        admin = User(email="bench-admin@example.com", username="bench-admin", is_admin=True)
        admin.hashed_password = "!bench"
        db.session.add(admin)
        db.session.commit()
        data = users_csv(rows)
        with app.test_request_context("/admin/users/import/confirm", method="POST"):
            started = time.perf_counter()
            checked = timed("check_file", results, lambda: check_file(KINDS["users"], data))
            assert checked.ok and checked.total == rows, checked.errors[:5]
            emails = timed("write_rows", results, lambda: write_rows(checked))

            def finish() -> None:
                audit("admin.user.import", admin, after={"rows": rows, "bytes": len(data)})
                db.session.commit()

            timed("audit+commit", results, finish)
            results["import"] = time.perf_counter() - started
            assert emails == rows
        copy_rows = copy_csv(rows)
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("DROP TABLE IF EXISTS import_bench_copy")
            cursor.execute("CREATE TABLE import_bench_copy (LIKE users INCLUDING ALL)")
            connection.commit()
            started = time.perf_counter()
            cursor.copy_expert(
                f"COPY import_bench_copy ({COPY_COLUMNS}) FROM STDIN (FORMAT csv)",
                io.StringIO(copy_rows),
            )
            connection.commit()
            results["COPY"] = time.perf_counter() - started
            cursor.execute("DROP TABLE import_bench_copy")
            connection.commit()
        finally:
            connection.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds the import may take")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    args = parser.parse_args(argv)
    url = normalise_database_url(args.database_url)
    try:
        results = run(url, args.rows)
    except OperationalError as error:
        print(f"bench-import: cannot use {url}: {error.orig}", file=sys.stderr)
        return 2
    print(f"{args.rows:,} user rows on {make_url(url).database}")
    for label in ("check_file", "write_rows", "audit+commit", "import", "COPY"):
        print(f"  {label:<14} {results[label]:7.2f} s")
    print(f"  import / COPY  {results['import'] / results['COPY']:7.1f} x")
    try:
        load = os.getloadavg()[0]
        print(f"  (load average at the end: {load:.1f} on {os.cpu_count()} cores)")
    except OSError:
        pass
    ok = results["import"] < args.budget
    print(f"import {'under' if ok else 'OVER'} the {args.budget:g} s budget")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""``make replica-demo`` starts, serves a read from its replica, and stops (``--check``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import postgres_unavailable
from tests.pgcluster import PgBouncer, postgres_bin
from webapp import ROOT


def test_the_demo_serves_a_read_from_its_standby_and_cleans_up() -> None:
    try:
        postgres_bin()
    except FileNotFoundError as error:
        postgres_unavailable(str(error))
    if not PgBouncer.available():
        postgres_unavailable(f"{PgBouncer.BINARY} is missing")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("DATABASE_URL", "DATABASE_REPLICA_URLS", "MIGRATIONS_DATABASE_URL"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.replica_demo", "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    folders = [
        line.split("(")[1].rstrip(")") for line in done.stdout.splitlines() if "  (/" in line
    ]
    assert len(folders) == 2  # the primary's and the standby's
    line = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("{")))
    standby = next(x for x in done.stdout.splitlines() if x.startswith("standby"))
    assert line["path"] == "/posts/" and line["status"] == 200
    assert line["db"] == "replica"
    assert line["replica"] == standby.split()[1]  # host:port of the demo's standby
    assert not any(os.path.exists(folder) for folder in folders)  # stopped and removed

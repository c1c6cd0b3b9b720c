"""Every revision's SQL, generated offline one revision at a time, linted with squawk.

Used by tests/test_migration_rules.py (so by ``make test``) and tests/online_migration/run.py.
The exceptions file (migrations/squawk-exceptions.toml) names each finding the suite lets
pass: the revision (or ``*`` for a rule no revision is held to), the rule and the reason.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Flask

from tests.conftest import BASE_TEST_CONFIG
from webapp import ROOT, create_app

EXCEPTIONS_FILE = ROOT / "migrations" / "squawk-exceptions.toml"
# Offline SQL needs the dialect only: nothing connects to this address.
OFFLINE_URL = "postgresql+psycopg2://lint@127.0.0.1:1/lint"
PG_VERSION = "15"  # the oldest PostgreSQL the site runs on
ANY_REVISION = "*"


@dataclass(frozen=True, order=True)
class Finding:
    revision: str
    rule: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.revision}: {self.rule} (line {self.line}): {self.message}"


@dataclass(frozen=True)
class Exception_:
    revision: str
    rule: str
    reason: str

    def covers(self, finding: Finding) -> bool:
        return self.rule == finding.rule and self.revision in (finding.revision, ANY_REVISION)


def squawk_binary() -> str:
    """squawk from the virtualenv this Python runs in (``squawk-cli`` in setup.cfg's test
    extra), else from PATH."""
    beside = Path(sys.executable).with_name("squawk")
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if found is None:
        raise RuntimeError("squawk is not installed: pip install -e '.[test]' brings squawk-cli")
    return found


def lint_app() -> Flask:
    return create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": OFFLINE_URL})


def alembic_config(app: Flask, extra_locations: Sequence[Path] = ()) -> Config:
    """Flask-Migrate's Alembic configuration, with ``extra_locations`` of revisions kept
    outside the real chain (the online-migration demonstrations)."""
    config: Config = app.extensions["migrate"].migrate.get_config()
    if extra_locations:
        locations = [Path(config.get_main_option("script_location") or "") / "versions"]
        config.set_main_option("path_separator", "os")
        config.set_main_option(
            "version_locations", os.pathsep.join(str(p) for p in [*locations, *extra_locations])
        )
    return config


def revision_ranges(script: ScriptDirectory) -> Iterator[tuple[str, str]]:
    """(revision, ``from:to`` range) for every revision: each is generated on its own.

    A merge revision is generated from its first parent (offline SQL starts from one
    revision); merges hold no operations of their own.
    """
    for revision in script.walk_revisions():
        parents = revision.down_revision
        start = "base" if not parents else parents if isinstance(parents, str) else parents[0]
        yield revision.revision, f"{start}:{revision.revision}"


def revision_sql(extra_locations: Sequence[Path] = ()) -> dict[str, str]:
    """Each revision's offline PostgreSQL SQL (``flask db upgrade --sql from:to``)."""
    app = lint_app()
    sql: dict[str, str] = {}
    with app.app_context():
        config = alembic_config(app, extra_locations)
        script = ScriptDirectory.from_config(config)
        for revision, span in revision_ranges(script):
            buffer = io.StringIO()
            config.output_buffer = buffer
            command.upgrade(config, span, sql=True)
            sql[revision] = buffer.getvalue()
    return sql


def squawk(sql_by_revision: dict[str, str]) -> list[Finding]:
    """squawk's findings on each revision's SQL (one squawk run for all of them)."""
    with tempfile.TemporaryDirectory(prefix="squawk-") as folder:
        files = {}
        for revision, sql in sql_by_revision.items():
            path = Path(folder) / f"{revision}.sql"
            path.write_text(sql)
            files[path.name] = revision
        done = subprocess.run(
            [squawk_binary(), "--reporter", "json", "--pg-version", PG_VERSION, *sorted(files)],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"squawk failed ({done.returncode}): {done.stderr.strip()}")
    return sorted(
        Finding(files[Path(f["file"]).name], f["rule_name"], int(f["line"]), f["message"])
        for f in json.loads(done.stdout)
    )


def load_exceptions(path: Path = EXCEPTIONS_FILE) -> list[Exception_]:
    entries = tomllib.loads(path.read_text())["exception"]
    exceptions = [Exception_(e["revision"], e["rule"], e["reason"].strip()) for e in entries]
    for exception in exceptions:
        if not exception.reason:
            raise ValueError(f"{path.name}: {exception.revision} {exception.rule} has no reason")
    return exceptions


def unexcepted(findings: list[Finding], exceptions: list[Exception_]) -> list[Finding]:
    return [f for f in findings if not any(e.covers(f) for e in exceptions)]


def unused(findings: list[Finding], exceptions: list[Exception_]) -> list[Exception_]:
    """Exceptions that excuse nothing any more (stale entries hide the next real finding)."""
    return [e for e in exceptions if not any(e.covers(f) for f in findings)]

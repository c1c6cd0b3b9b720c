"""Every revision's SQL passes squawk, or migrations/squawk-exceptions.toml says why not.

The SQL is generated offline (``flask db upgrade --sql <parent>:<revision>``) for each
revision the migrations directory holds, so a new revision is linted without a word here.
"""

from __future__ import annotations

import pytest

from tests.migration_lint import (
    ANY_REVISION,
    Finding,
    load_exceptions,
    revision_sql,
    squawk,
    unexcepted,
    unused,
)
from webapp import ROOT

DEMO_VERSIONS = ROOT / "tests" / "online_migration"


@pytest.fixture(scope="module")
def sql_by_revision() -> dict[str, str]:
    return revision_sql()


@pytest.fixture(scope="module")
def findings(sql_by_revision: dict[str, str]) -> list[Finding]:
    return squawk(sql_by_revision)


def test_every_revision_passes_squawk_or_names_its_exception(findings: list[Finding]) -> None:
    left = unexcepted(findings, load_exceptions())
    assert left == [], "squawk findings not in migrations/squawk-exceptions.toml:\n" + "\n".join(
        map(str, left)
    )


def test_no_exception_outlives_its_finding(findings: list[Finding]) -> None:
    stale = unused(findings, load_exceptions())
    assert stale == [], f"exceptions that excuse nothing: {stale}"


def test_every_revision_is_linted_with_the_timeouts_set(sql_by_revision: dict[str, str]) -> None:
    assert {"0001", "0002", "0003", "0004"} <= sql_by_revision.keys()
    for revision, sql in sql_by_revision.items():
        assert f"-> {revision}" in sql  # its own SQL, not the whole chain's
        assert sql.index("SET lock_timeout = '5000ms';") < sql.index("BEGIN;"), revision
        assert "SET statement_timeout = '60000ms';" in sql


def test_exceptions_name_a_revision_a_rule_and_a_reason(sql_by_revision: dict[str, str]) -> None:
    for exception in load_exceptions():
        assert exception.revision in {*sql_by_revision, ANY_REVISION}
        assert exception.rule
        assert len(exception.reason) > 20


def test_squawk_passes_the_safe_demonstration_and_flags_the_naive_one() -> None:
    """The check can fail: the same change written the naive way is caught; written with
    the helpers, it passes with no exception of its own."""
    sql = revision_sql([DEMO_VERSIONS / "safe", DEMO_VERSIONS / "naive"])
    left = unexcepted(squawk(sql), load_exceptions())
    assert {(f.revision, f.rule) for f in left} == {
        ("demo_naive", "require-concurrent-index-creation")
    }
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_items_title_key" in sql["demo_safe"]

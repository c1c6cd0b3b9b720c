"""Failover for real: the drill (``tests/failover/drill.py``), short, with synchronous
replication: writes through gunicorn on a multi-host ``DATABASE_URL``, the standby cut off,
the primary killed, the standby promoted.

A few seconds of load before and after; the whole test takes about half a minute.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import postgres_unavailable
from tests.failover.drill import RECOVERY_LIMIT, DrillReport, drill
from tests.pgcluster import postgres_bin
from webapp.config import load_config
from webapp.db.replicas import address_of


@pytest.fixture(scope="module")
def sync_drill() -> DrillReport:
    try:
        postgres_bin()
    except FileNotFoundError as error:
        postgres_unavailable(str(error))
    report = drill("sync", clients=6, before=2.5, cut=1.0, detect=1.0, after=3.0, log=False)
    print(report.text())
    return report


def test_answers_during_the_switch_are_503_with_retry_after_never_500(
    sync_drill: DrillReport,
) -> None:
    assert sync_drill.server_errors == 0, sync_drill.text()
    assert not sync_drill.transport_errors, sync_drill.text()
    # The switch was seen: requests failed while there was no primary, each said when to retry.
    assert sync_drill.statuses[503] > 0, sync_drill.text()
    assert sync_drill.without_retry_after == 0, sync_drill.text()
    assert sync_drill.window is not None
    assert sync_drill.window[1] < sync_drill.stop_to_promote + RECOVERY_LIMIT, sync_drill.text()


def test_writes_work_again_within_seconds_of_the_promotion_with_no_restart(
    sync_drill: DrillReport,
) -> None:
    assert sync_drill.promote_to_first_write is not None, sync_drill.text()
    assert sync_drill.promote_to_first_write < 5.0, sync_drill.text()


def test_with_synchronous_replication_every_acknowledged_write_is_there_exactly_once(
    sync_drill: DrillReport,
) -> None:
    assert sync_drill.acked > 0
    assert sync_drill.lost == [], sync_drill.text()
    assert sync_drill.doubled == [], sync_drill.text()
    assert sync_drill.found == sync_drill.acked


def test_the_old_primary_rejoins_as_a_standby_with_pg_rewind(sync_drill: DrillReport) -> None:
    assert sync_drill.rejoined.startswith("yes"), sync_drill.rejoined
    assert sync_drill.problems == [], sync_drill.text()


def test_a_multi_host_database_url_is_kept_as_libpq_needs_it(tmp_path: Path) -> None:
    """``postgresql://`` becomes psycopg2's; the hosts and target_session_attrs stay."""
    query = "?host=db-a:5432&host=db-b:5433&target_session_attrs=read-write&connect_timeout=2"
    config = load_config(tmp_path, {"SQLALCHEMY_DATABASE_URI": f"postgresql://app@/webapp{query}"})
    url = config["SQLALCHEMY_DATABASE_URI"]
    assert url == f"postgresql+psycopg2://app@/webapp{query}"
    assert make_url(url).query["host"] == ("db-a:5432", "db-b:5433")
    assert address_of(url) == "db-a:5432"  # what a log line calls it

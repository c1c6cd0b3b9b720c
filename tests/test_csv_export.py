from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from webapp.web.csv_export import escape_cell, iter_csv


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+1", "'+1"),
        ("-1+2", "'-1+2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        (-5, "-5"),
        (None, ""),
        (True, "true"),
        (datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "2026-01-02T03:04:00+00:00"),
    ],
)
def test_escape_cell(value: object, expected: str) -> None:
    assert escape_cell(value) == expected


def test_iter_csv_streams_line_by_line_and_parses_back() -> None:
    chunks = list(iter_csv(["id", "title"], [(1, "=HYPERLINK()"), (2, 'quote "me", ok')]))
    assert len(chunks) == 3
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert rows == [["id", "title"], ["1", "'=HYPERLINK()"], ["2", 'quote "me", ok']]

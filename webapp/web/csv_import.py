"""Reading a CSV file someone uploaded: UTF-8 (with or without a BOM) or a clear refusal, and
cells read back as ``csv_export`` wrote them."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from webapp.web.csv_export import FORMULA_PREFIXES

# Byte-order marks of the encodings a spreadsheet may save "Unicode text" in, besides UTF-8.
OTHER_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
SAVE_AS_UTF8 = 'Save it as "CSV UTF-8" (or UTF-8 text) and upload it again.'


class UnreadableFile(ValueError):
    """The file is not CSV text that can be read; the message says why and what to do."""


def decode_utf8(data: bytes) -> str:
    """``data`` as text: UTF-8, a leading BOM dropped. Anything else raises
    ``UnreadableFile`` naming the line where it stops being UTF-8."""
    for bom, name in OTHER_BOMS:
        if data.startswith(bom):
            raise UnreadableFile(f"The file is {name} text, not UTF-8. {SAVE_AS_UTF8}")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise UnreadableFile(
            f"The file is not UTF-8 text: line {line} holds bytes that UTF-8 does not have "
            f"(byte {error.start + 1}: 0x{data[error.start]:02X}). {SAVE_AS_UTF8}"
        ) from error


def unescape_cell(text: str) -> str:
    """A cell as it was before ``escape_cell``: a ``'`` that the export put before a
    formula-looking text goes again. Any other text stays as it is."""
    if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
    return text


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet would run ``text`` as a formula (the import keeps it as text)."""
    return text.startswith(FORMULA_PREFIXES)


@dataclass(frozen=True)
class Record:
    """One record of the file: the line it starts on (the header is line 1) and its cells."""

    line: int
    cells: list[str]


def read_records(text: str) -> Iterator[Record]:
    """The file's records, blank lines skipped. A cell may span lines (quoted), so each
    record carries the line it starts on. ``csv.Error`` is raised as ``UnreadableFile``."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    last_line = 0
    try:
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num
            if cells:
                yield Record(line, cells)
    except csv.Error as error:
        raise UnreadableFile(f"Line {reader.line_num} is not valid CSV: {error}.") from error

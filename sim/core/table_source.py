"""Read a user's CSV / TSV / JSONL file as records, each with the physical line where it starts.

Lines are split on "\\n" only: `str.splitlines` would also split on U+2028, U+0085, form feeds and lone carriage
returns, which are ordinary characters inside a text. A quoted CSV field may span lines; its record still
reports the line where it starts, and the records after it keep their true line numbers. Every value is a
string (a JSON number or true/false is read as its JSON text, `7` as "7": ids and trial outcomes are often
written so; objects, lists and null are refused, never stringified), every requested value is non-empty,
and the file, its lines, its fields and its number of records have caps, so no input crashes, misleads or
exhausts the reader.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sim.core.errors import DataFileError, Problem
from sim.core.limits import MAX_DATA_FILE_BYTES

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv", ".tsv")


@dataclass(frozen=True)
class Limits:
    """Caps of one kind of file: `rows` records at most, `chars` characters per value at most."""

    rows: int
    chars: int

    @property
    def line_bytes(self) -> int:
        # A physical line holds at most a few values; UTF-8 takes at most 4 bytes per character.
        return 4 * self.chars + (1 << 16)


@dataclass(frozen=True)
class Record:
    """One record: `line` where it starts (1-based) and its requested values by column."""

    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class Table:
    """A file's records; `columns` are the requested columns the file has (required and optional)."""

    file: str
    columns: tuple[str, ...]
    records: tuple[Record, ...]


def read_table(path: str | Path, what: str, required: Sequence[str], optional: Sequence[str] = (), *,
               limits: Limits, hint: str = "", may_be_empty: Sequence[str] = ()) -> Table:
    """The records of a CSV, TSV or JSONL file, restricted to `required` + the `optional` columns it has.

    `what` names the file in messages ("passages", "tickets"); `hint` is appended to a missing-column message
    (how to name other columns); the columns in `may_be_empty` may hold empty strings (BEIR's titles). Errors are `DataFileError`s naming the file as given, the line and the column.
    """
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise DataFileError(Problem(file, None, "", f"no such {what} file" if not p.exists() else
                                    f"not a file; give the path of a {what} file"))
    suffix = p.suffix.lower()
    if suffix not in JSONL_SUFFIXES + CSV_SUFFIXES:
        raise DataFileError(Problem(file, None, "", f"unknown file type '{p.suffix}'; use .csv, .tsv or .jsonl"))
    size = p.stat().st_size
    if size > MAX_DATA_FILE_BYTES:
        raise DataFileError(Problem(file, None, "", f"{size:,} bytes; a {what} file holds at most "
                                    f"{MAX_DATA_FILE_BYTES:,} bytes: split it or sample it"))
    with p.open("rb") as f:
        lines = _text_lines(f, file, what, limits)
        if suffix in JSONL_SUFFIXES:
            columns, records = _jsonl_records(lines, file, required, optional, limits, may_be_empty)
        else:
            columns, records = _csv_records(lines, file, required, optional, limits, hint,
                                            "\t" if suffix == ".tsv" else ",", may_be_empty)
    if not records:
        raise DataFileError(Problem(file, None, "", f"the {what} file is empty" if columns is None else
                                    f"the {what} file has a header but no rows"))
    return Table(file, columns or (), tuple(records))


def _text_lines(f: BinaryIO, file: str, what: str, limits: Limits) -> Iterator[tuple[int, str]]:
    """(line number, text with its line ending) of each physical line, decoded as UTF-8 and checked."""
    n = 0
    while raw := f.readline(limits.line_bytes + 1):
        n += 1
        if len(raw) > limits.line_bytes:
            raise DataFileError(Problem(file, n, "", f"the line is longer than {limits.line_bytes:,} bytes; a "
                                        f"value holds at most {limits.chars:,} characters"))
        if n == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataFileError(Problem(file, 1, "", f"UTF-16 text; save the {what} file as UTF-8"))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            column = len(raw[:exc.start].decode("utf-8", "replace")) + 1
            raise DataFileError(Problem(file, n, "", f"not UTF-8 text (column {column}, byte 0x{raw[exc.start]:02x}"
                                        f"); save the {what} file as UTF-8")) from None
        if "\x00" in text:
            raise DataFileError(Problem(file, n, "", f"a NUL character (column {text.index(chr(0)) + 1}): a "
                                        f"binary file? A {what} file is UTF-8 text"))
        yield n, text.removeprefix("\ufeff") if n == 1 else text


def _value(value: object, file: str, line: int, column: str, limits: Limits, may_be_empty: Sequence[str] = ()) -> str:
    """A requested value: a string (surrounding whitespace dropped) within the character cap, non-empty unless
    its column is in `may_be_empty`."""
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        value = json.dumps(value)  # a scalar as written: 7 -> "7", true -> "true", 1.5 -> "1.5"
    if not isinstance(value, str):
        kind = {dict: "an object", list: "a list", type(None): "null"}.get(type(value), "not a finite number")
        raise DataFileError(Problem(file, line, column, f"is {kind} ({str(value)[:40]}); it must be a string, a "
                                    "number or true/false (nested values are not read)"))
    if len(value) > limits.chars:
        raise DataFileError(Problem(file, line, column, f"{len(value):,} characters; at most {limits.chars:,}"))
    if not value.strip() and column not in may_be_empty:
        raise DataFileError(Problem(file, line, column, "is empty; every record needs one"))
    return value.strip()


def _jsonl_records(lines: Iterator[tuple[int, str]], file: str, required: Sequence[str],
                   optional: Sequence[str], limits: Limits,
                   may_be_empty: Sequence[str] = ()) -> tuple[tuple[str, ...] | None, list[Record]]:
    """One JSON object per non-blank line; the optional columns of the first object are required of all."""
    columns: tuple[str, ...] | None = None
    records: list[Record] = []
    for n, text in lines:
        if not text.strip():
            continue
        try:
            obj = json.loads(text, object_pairs_hook=lambda pairs, n=n: _unique_keys(pairs, file, n))
        except json.JSONDecodeError as exc:
            raise DataFileError(Problem(file, n, "", f"not valid JSON ({exc.msg}, column {exc.colno}); a JSONL "
                                        "file holds one object per line")) from None
        except RecursionError:
            raise DataFileError(Problem(file, n, "", "JSON nested too deeply")) from None
        if not isinstance(obj, dict):
            raise DataFileError(Problem(file, n, "", f"each line must be a JSON object, not {type(obj).__name__}"))
        if columns is None:
            columns = tuple(required) + tuple(c for c in optional if c in obj)
        missing = [c for c in columns if c not in obj]
        if missing:
            raise DataFileError(Problem(file, n, "", f"missing field(s) {missing}; the line has {sorted(obj)}"))
        _count(records, file, n, limits)
        records.append(Record(n, {c: _value(obj[c], file, n, c, limits, may_be_empty) for c in columns}))
    return columns, records


def _unique_keys(pairs: list[tuple[str, object]], file: str, line: int) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise DataFileError(Problem(file, line, twice[0], "appears twice in one object; keep one"))
    return dict(pairs)


def _csv_records(lines: Iterator[tuple[int, str]], file: str, required: Sequence[str], optional: Sequence[str],
                 limits: Limits, hint: str, delimiter: str,
                 may_be_empty: Sequence[str] = ()) -> tuple[tuple[str, ...] | None, list[Record]]:
    """Records under a header line; a record spans as many physical lines as its quoted fields need."""
    texts = (text for _, text in lines)
    with _field_limit(limits.chars):
        reader = csv.reader(texts, delimiter=delimiter)
        header: list[str] | None = None
        where: dict[str, int] = {}
        columns: tuple[str, ...] = ()
        records: list[Record] = []
        end = 0  # the last physical line read so far
        while True:
            start = end + 1
            try:
                row = next(reader, None)
            except csv.Error as exc:
                raise DataFileError(Problem(file, start, "", _csv_message(exc, limits))) from None
            if row is None:
                break
            end = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if header is None:
                header = row
                twice = sorted({c for c in header if header.count(c) > 1})
                if twice:
                    raise DataFileError(Problem(file, start, "", f"column {twice[0]!r} appears twice in the "
                                                "header; name each column once"))
                missing = [c for c in required if c not in header]
                if missing:
                    raise DataFileError(Problem(file, start, "", f"missing column(s) {missing}; the header has "
                                                f"{header}{hint}"))
                columns = tuple(required) + tuple(c for c in optional if c in header)
                where = {c: header.index(c) for c in columns}
                continue
            if len(row) != len(header):
                quote = "a tab" if delimiter == "\t" else "a comma"
                raise DataFileError(Problem(file, start, "", f"{len(row)} fields, the header has {len(header)} "
                                            f"({quote} inside a value needs the value in double quotes)"))
            _count(records, file, start, limits)
            records.append(Record(start, {c: _value(row[i], file, start, c, limits, may_be_empty)
                                          for c, i in where.items()}))
    return (None if header is None else columns), records


def _count(records: list[Record], file: str, line: int, limits: Limits) -> None:
    if len(records) >= limits.rows:
        raise DataFileError(Problem(file, line, "", f"more than {limits.rows:,} records; that is the cap: split "
                                    "the file or sample it"))


def _csv_message(exc: csv.Error, limits: Limits) -> str:
    if "field limit" in str(exc):
        return f"a value longer than {limits.chars:,} characters (the cap per value)"
    if "new-line character" in str(exc):
        return "a line break inside an unquoted value (a lone carriage return?); quote the value"
    return f"not valid CSV ({exc})"


@contextmanager
def _field_limit(chars: int):
    """The csv module's field size limit (process-wide, 131,072 by default) set to our cap while reading."""
    previous = csv.field_size_limit(chars)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


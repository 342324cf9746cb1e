"""Time entries from time-tracker CSV exports, keyed by issue identifier.

Linear has no worklogs, so agencies import the time they track elsewhere. This module is
pure: text (or a file) in, :class:`TimeEntry` objects and human-readable problems out. No
database, no configuration.

Recognised exports (the format is detected from the header row; column names are matched
case-insensitively after trimming, in any order, extra columns ignored; the delimiter may be
``,``, ``;`` or a tab; a UTF-8 BOM and an Excel ``sep=`` first line are tolerated):

``toggl`` - Toggl Track "Detailed report" CSV. Header of a real export::

    User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,
    End time,Duration,Tags,Amount ()

  Required: ``Start date``, ``Start time``, ``Duration``, ``Description``. Used: ``User``
  (or ``Member``) -> person_name, ``Email``, ``Task``, ``Project``. ``Duration`` is
  ``H:MM:SS`` (``H:MM`` and decimal hours are accepted too).

``clockify`` - Clockify "Detailed report" CSV. Header of a real export::

    Project,Client,Description,Task,User,Group,Email,Tags,Billable,Start Date,Start Time,
    End Date,End Time,Duration (h),Duration (decimal),Billable Rate (USD),
    Billable Amount (USD)

  Required: ``Start Date``, ``Start Time``, ``Description`` and ``Duration (h)`` or
  ``Duration (decimal)``. ``Duration (h)`` (``H:MM:SS``) is preferred, ``Duration
  (decimal)`` is the fallback when it is empty. Dates follow the workspace setting
  (``MM/DD/YYYY``, ``DD/MM/YYYY``, ``DD.MM.YYYY``, ``YYYY-MM-DD``...), times may be
  ``hh:mm[:ss] AM/PM`` or 24 h.

``harvest`` - Harvest "Detailed time report" CSV. Header of a real export::

    Date,Client,Project,Project Code,Task,Notes,Hours,Hours Rounded,Billable?,Invoiced?,
    Approved?,First Name,Last Name,Roles,Employee?,Billable Rate,Billable Amount,
    Cost Rate,Cost Amount,Currency,External Reference URL

  Required: ``Date``, ``Task``, ``Notes``, ``Hours``. Used: ``First Name`` + ``Last Name``
  -> person_name, ``Email`` if present, ``External Reference URL``, ``Start Time`` if
  present (accounts tracking timestamps). ``Hours`` (not ``Hours Rounded``) is the duration.

``generic`` - ``date,issue,hours[,person][,comment]``. ``date`` is ISO ``YYYY-MM-DD`` or an
  ISO datetime (naive = local time in ``tz``); ``hours`` is decimal with ``.`` or ``,``;
  ``person`` is an email address (contains ``@``) or a name.

Issue key, in this order: the dedicated column (generic ``issue``; Harvest ``External
Reference URL`` when it is a Linear/Jira link such as ``https://linear.app/acme/issue/INI-12/
slug`` or ``https://x.atlassian.net/browse/ACME-3``), else the first match of
``\\b([A-Z][A-Z0-9_]{1,9}-\\d+)\\b`` in the text columns (Toggl and Clockify: Description then
Task; Harvest: Notes then Task; generic: comment). Free text is matched case-sensitively (so
``utf-8`` or ``covid-19`` are not keys); keys from a dedicated column or a URL may be in any
case. Keys are upper-cased.

Dates without a time are placed at 12:00 in ``tz``; a wall-clock time that occurs twice on a
DST change takes its first occurrence, one that does not exist is read with the offset in
force before the change (``zoneinfo`` rules for ``fold=0``).

A row that cannot become an entry (no issue key - it may be internal time -, a duration that
is not a positive number, a date that cannot be read...) is reported in
:attr:`ParseResult.problems`, one line per row, and never raises. Only a file that cannot be
read at all raises :class:`TimesheetError`.

Entry ids are a hash of the format, the parsed content (issue, start, seconds, person,
comment, project, task) and the occurrence index among identical rows: re-importing the same
export - even re-saved with another delimiter or column order, or re-exported after invoicing
- yields the same ids, and two identical rows of one file are two entries.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "FORMATS",
    "ParseResult",
    "TimeEntry",
    "TimesheetError",
    "detect_format",
    "parse_text",
    "parse_timesheet",
]

FORMATS: tuple[str, ...] = ("toggl", "clockify", "harvest", "generic")
_FORMAT_LABELS = (
    "Toggl Track detailed report, Clockify detailed report, Harvest detailed time report, "
    "or generic 'date,issue,hours[,person,comment]'"
)

KEY_RE = re.compile(r"\b([A-Z][A-Z0-9_]{1,9}-\d+)\b")
_KEY_FULL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{1,9}-\d+")
_DELIMITERS = (",", ";", "\t")
_NOON = time(12, 0)
_SNIPPET = 60


class TimesheetError(ValueError):
    """The file cannot be read at all: empty, undecodable, or not a recognised export."""


@dataclass(frozen=True)
class TimeEntry:
    entry_id: str  # stable: same export -> same ids; identical rows get distinct ids
    issue_key: str | None  # e.g. "INI-12"; always set for parsed entries
    started_at: datetime  # aware
    seconds: int  # > 0
    person_email: str | None
    person_name: str | None
    comment: str  # description / notes, "" if none
    source_format: str  # "toggl" | "clockify" | "harvest" | "generic"
    line: int  # 1-based line in the file where the row starts (header = line 1)


@dataclass
class ParseResult:
    format: str
    entries: list[TimeEntry]
    problems: list[str]  # one line per skipped row: "line 7: no issue key in 'Réunion'"


# --------------------------------------------------------------------------- detection


def _norm(name: str) -> str:
    """Header cell -> lookup name: no BOM, no surrounding quotes/space, single spaces, lower."""
    return " ".join(name.replace("\ufeff", "").strip().strip('"').split()).casefold()


def detect_format(header: list[str]) -> str:
    """The export format of a CSV header row (one of :data:`FORMATS`).

    Raises :class:`TimesheetError` with a one-line message when the header is not recognised.
    """
    cols = {_norm(cell) for cell in header}
    if {"date", "issue", "hours"} <= cols:
        return "generic"
    if {"start date", "start time", "description"} <= cols and (
        "duration (h)" in cols or "duration (decimal)" in cols
    ):
        return "clockify"
    if {"start date", "start time", "duration", "description"} <= cols:
        return "toggl"
    if {"date", "task", "notes", "hours"} <= cols:
        return "harvest"
    shown = ", ".join(cell.strip() for cell in header[:8] if cell.strip())
    if len(header) > 8:
        shown += ", ..."
    raise TimesheetError(
        f"unrecognised timesheet header ({shown or 'no columns'}); "
        f"expected a {_FORMAT_LABELS} CSV export"
    )


# --------------------------------------------------------------------------- reading


def parse_timesheet(path: Path | str, *, tz: str = "Europe/Paris") -> ParseResult:
    """Parse a CSV export file (UTF-8 with or without BOM, UTF-16 with BOM, or Windows-1252)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TimesheetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_text(_decode(data), tz=tz)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel "Unicode text"
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise TimesheetError("invalid UTF-16 text") from exc
    if b"\x00" in data:
        raise TimesheetError("not a text file (it contains NUL bytes)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TimesheetError("cannot decode the file: neither UTF-8 nor Windows-1252 text")


def parse_text(text: str, *, tz: str = "Europe/Paris") -> ParseResult:
    """Parse the text of a CSV export; see the module docstring for formats and rules."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimesheetError(f"unknown time zone {tz!r}") from exc
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise TimesheetError("empty file")

    line_offset = 0
    forced: str | None = None
    first, _, rest = text.partition("\n")
    sep_hint = re.fullmatch(r"\s*sep=(.)\s*", first, flags=re.IGNORECASE)
    if sep_hint:  # Excel's "sep=;" first line
        forced, text, line_offset = sep_hint.group(1), rest, 1
        if not text.strip():
            raise TimesheetError("empty file")

    fmt, delimiter, header = _sniff(text, [forced] if forced else list(_DELIMITERS))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    next(reader)  # header
    rows: list[tuple[int, list[str]]] = []
    previous_end = reader.line_num
    try:
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if any(cell.strip() for cell in cells):
                rows.append((start + line_offset, cells))
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): not a sane export
        raise TimesheetError(f"line {previous_end + 1 + line_offset}: {exc}") from exc
    return _Parser(fmt, header, zone, delimiter).run(rows)


def _sniff(text: str, delimiters: Sequence[str]) -> tuple[str, str, list[str]]:
    """(format, delimiter, header): the delimiter whose header row is a recognised format."""
    best: tuple[str, str, list[str]] | None = None
    widest: list[str] = []
    for delimiter in delimiters:
        try:
            header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        except csv.Error:
            continue
        if len(header) > len(widest):
            widest = header
        try:
            fmt = detect_format(header)
        except TimesheetError:
            continue
        if best is None or len(header) > len(best[2]):
            best = (fmt, delimiter, header)
    if best is None:
        detect_format(widest)  # raises with the most readable column list
        raise AssertionError("unreachable")  # pragma: no cover
    return best


# --------------------------------------------------------------------------- values


class _RowError(Exception):
    """A row that cannot become an entry; the message goes to ParseResult.problems."""


class _DateOrder(Enum):
    MDY = "month first"
    DMY = "day first"


_YMD_RE = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})")
_XXY_RE = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})")
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(?:([AaPp])\.?\s*[Mm]\.?)?")
_CLOCK_RE = re.compile(r"(-?)(\d+):([0-5]?\d)(?::([0-5]?\d))?")


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def _date_parts(raw: str, order: _DateOrder) -> tuple[int, int, int] | None:
    """(year, month, day) of a date cell, or None when its shape is not a date."""
    if m := _YMD_RE.fullmatch(raw):
        return int(m.group(1)), int(m.group(3)), int(m.group(4))
    if m := _XXY_RE.fullmatch(raw):
        a, b, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
        return (year, a, b) if order is _DateOrder.MDY else (year, b, a)
    return None


def _try_date(raw: str, order: _DateOrder) -> date | None:
    parts = _date_parts(raw.strip(), order)
    if parts is None:
        return None
    try:
        return date(*parts)
    except ValueError:
        return None


def _parse_date(raw: str, order: _DateOrder, label: str) -> date:
    parsed = _try_date(raw, order)
    if parsed is None:
        raise _RowError(f"{label} '{_snippet(raw)}' is not a valid date")
    return parsed


def _detect_date_order(values: Iterable[str], *, ampm: bool, delimiter: str) -> _DateOrder:
    """Month-first or day-first for a whole file's non-ISO dates.

    The order under which every date is valid wins (one value with a part > 12 settles it);
    if both or neither do, the one reading more dates; on a tie, hints: AM/PM times mean a
    US locale (month first); a ``;`` delimiter or dotted dates mean a European one (day
    first); otherwise month first, Clockify's default.
    """
    slashed = [v.strip() for v in values if _XXY_RE.fullmatch(v.strip())]
    scores = {o: sum(_try_date(v, o) is not None for v in slashed) for o in _DateOrder}
    if scores[_DateOrder.MDY] != scores[_DateOrder.DMY]:
        return max(scores, key=scores.__getitem__)
    if ampm:
        return _DateOrder.MDY
    if delimiter == ";" or any("." in v for v in slashed):
        return _DateOrder.DMY
    return _DateOrder.MDY


def _parse_time(raw: str, label: str) -> time:
    m = _TIME_RE.fullmatch(raw.strip())
    if m is None:
        raise _RowError(f"{label} '{_snippet(raw)}' is not a valid time")
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if meridiem := m.group(4):
        if not 1 <= hour <= 12:
            raise _RowError(f"{label} '{_snippet(raw)}' is not a valid time")
        hour = hour % 12 + (12 if meridiem in "Pp" else 0)
    try:
        return time(hour, minute, second)
    except ValueError:
        raise _RowError(f"{label} '{_snippet(raw)}' is not a valid time") from None


def _decimal(raw: str) -> Decimal | None:
    text = raw.strip().replace("\u00a0", "").replace(" ", "")
    if text.lower().endswith("h"):
        text = text[:-1]
    if "," in text:
        text = text.replace(",", "") if "." in text else text.replace(",", ".")
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)", text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex already guards
        return None


def _positive(seconds: int, raw: str, label: str) -> int:
    if seconds <= 0:
        raise _RowError(f"{label} '{_snippet(raw)}' is not positive")
    return seconds


def _hours_seconds(raw: str, label: str) -> int:
    """Decimal hours ('1.5', '0,25') -> seconds, rounded to the second."""
    value = _decimal(raw)
    if value is None:
        raise _RowError(f"{label} '{_snippet(raw)}' is not a number")
    seconds = int((value * 3600).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return _positive(seconds, raw, label)


def _clock_seconds(raw: str, label: str) -> int:
    """'H:MM:SS' or 'H:MM' (hours may exceed 24), or decimal hours -> seconds."""
    m = _CLOCK_RE.fullmatch(raw.strip())
    if m is None:
        return _hours_seconds(raw, label)
    sign, hours, minutes, seconds = m.groups()
    total = int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)
    return _positive(-total if sign else total, raw, label)


def _find_key(*texts: str) -> str | None:
    """First issue key in free text (upper-case keys only, see module docstring)."""
    for text in texts:
        if m := KEY_RE.search(text):
            return m.group(1)
    return None


def _key_from_url(url: str) -> str | None:
    """Issue key of a tracker link: a path segment or query value that is exactly a key."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    candidates = [unquote(s) for s in parts.path.split("/")]
    candidates += [value for _, value in parse_qsl(parts.query)]
    candidates += [unquote(parts.fragment)]
    for candidate in candidates:
        if _KEY_FULL_RE.fullmatch(candidate.strip()):
            return candidate.strip().upper()
    return None


# --------------------------------------------------------------------------- rows


class _Row:
    """Cells of one data row, looked up by normalized header name."""

    def __init__(self, index: dict[str, int], cells: list[str]) -> None:
        self._index = index
        self._cells = cells

    def get(self, *names: str) -> str:
        """Value of the first of `names` present and non-empty, else ''.

        Values are stripped and their line breaks normalized to ``\\n``, so the same export
        saved with CRLF or LF line endings gives the same entries (and ids).
        """
        for name in names:
            i = self._index.get(name)
            if i is not None and i < len(self._cells) and (value := self._cells[i].strip()):
                return value.replace("\r\n", "\n").replace("\r", "\n")
        return ""


@dataclass(frozen=True)
class _Draft:
    issue_key: str
    started_at: datetime
    seconds: int
    person_email: str | None
    person_name: str | None
    comment: str
    project: str
    task: str


def _no_key(*texts: str) -> _RowError:
    shown = next((t for t in texts if t), "")
    if not shown:
        return _RowError("no issue key (empty description)")
    return _RowError(f"no issue key in '{_snippet(shown)}'")


class _Parser:
    """Turns the data rows of one file into entries and problems."""

    def __init__(self, fmt: str, header: list[str], zone: ZoneInfo, delimiter: str) -> None:
        self.fmt = fmt
        self.zone = zone
        self.delimiter = delimiter
        self.index: dict[str, int] = {}
        for i, cell in enumerate(header):
            self.index.setdefault(_norm(cell), i)
        self.order = _DateOrder.MDY
        handlers: dict[str, Callable[[_Row], _Draft]] = {
            "toggl": self._toggl,
            "clockify": self._clockify,
            "harvest": self._harvest,
            "generic": self._generic,
        }
        self.handler = handlers[fmt]

    def run(self, rows: list[tuple[int, list[str]]]) -> ParseResult:
        date_column = "date" if self.fmt in ("harvest", "generic") else "start date"
        parsed_rows = [(line, _Row(self.index, cells)) for line, cells in rows]
        self.order = _detect_date_order(
            (row.get(date_column) for _, row in parsed_rows),
            ampm=any(
                re.search(r"[AaPp]\.?\s*[Mm]\.?$", row.get("start time")) for _, row in parsed_rows
            ),
            delimiter=self.delimiter,
        )
        entries: list[TimeEntry] = []
        problems: list[str] = []
        seen: Counter[str] = Counter()
        for line, row in parsed_rows:
            try:
                draft = self.handler(row)
            except _RowError as exc:
                problems.append(f"line {line}: {exc}")
                continue
            content = json.dumps(
                [
                    self.fmt,
                    draft.issue_key,
                    draft.started_at.isoformat(),
                    draft.seconds,
                    draft.person_email or "",
                    draft.person_name or "",
                    draft.comment,
                    draft.project,
                    draft.task,
                ],
                ensure_ascii=False,
            )
            occurrence = seen[content]
            seen[content] += 1
            digest = hashlib.sha256(f"{content}#{occurrence}".encode()).hexdigest()[:32]
            entries.append(
                TimeEntry(
                    entry_id=digest,
                    issue_key=draft.issue_key,
                    started_at=draft.started_at,
                    seconds=draft.seconds,
                    person_email=draft.person_email,
                    person_name=draft.person_name,
                    comment=draft.comment,
                    source_format=self.fmt,
                    line=line,
                )
            )
        return ParseResult(format=self.fmt, entries=entries, problems=problems)

    def _local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.zone)

    def _start(self, row: _Row, date_column: str) -> datetime:
        day = _parse_date(row.get(date_column), self.order, "date")
        raw_time = row.get("start time")
        at = _parse_time(raw_time, "start time") if raw_time else _NOON
        return self._local(day, at)

    def _draft(
        self, row: _Row, key: str, seconds: int, start: datetime, name: str, comment: str
    ) -> _Draft:
        return _Draft(
            issue_key=key,
            started_at=start,
            seconds=seconds,
            person_email=row.get("email") or None,
            person_name=name or None,
            comment=comment,
            project=row.get("project"),
            task=row.get("task"),
        )

    def _toggl(self, row: _Row) -> _Draft:
        description, task = row.get("description"), row.get("task")
        key = _find_key(description, task)
        if key is None:
            raise _no_key(description, task)
        seconds = _clock_seconds(row.get("duration"), "duration")
        start = self._start(row, "start date")
        return self._draft(row, key, seconds, start, row.get("user", "member"), description)

    def _clockify(self, row: _Row) -> _Draft:
        description, task = row.get("description"), row.get("task")
        key = _find_key(description, task)
        if key is None:
            raise _no_key(description, task)
        if raw := row.get("duration (h)"):
            seconds = _clock_seconds(raw, "duration")
        else:
            seconds = _hours_seconds(row.get("duration (decimal)"), "duration")
        start = self._start(row, "start date")
        return self._draft(row, key, seconds, start, row.get("user"), description)

    def _harvest(self, row: _Row) -> _Draft:
        notes, task = row.get("notes"), row.get("task")
        key = _key_from_url(row.get("external reference url")) or _find_key(notes, task)
        if key is None:
            raise _no_key(notes, task)
        seconds = _hours_seconds(row.get("hours"), "hours")
        start = self._start(row, "date")
        name = " ".join(p for p in (row.get("first name"), row.get("last name")) if p)
        return self._draft(row, key, seconds, start, name, notes)

    def _generic(self, row: _Row) -> _Draft:
        issue, comment = row.get("issue"), row.get("comment")
        if issue:
            if _KEY_FULL_RE.fullmatch(issue):
                key: str | None = issue.upper()
            else:
                key = _key_from_url(issue) or _find_key(issue)
            if key is None:
                raise _RowError(f"issue '{_snippet(issue)}' is not an issue key")
        else:
            key = _find_key(comment)
            if key is None:
                raise _no_key(comment)
        seconds = _hours_seconds(row.get("hours"), "hours")
        start = self._generic_start(row.get("date"))
        person = row.get("person")
        return _Draft(
            issue_key=key,
            started_at=start,
            seconds=seconds,
            person_email=person if "@" in person else None,
            person_name=person if person and "@" not in person else None,
            comment=comment,
            project="",
            task="",
        )

    def _generic_start(self, raw: str) -> datetime:
        if _YMD_RE.fullmatch(raw) and (day := _try_date(raw, _DateOrder.MDY)):
            return self._local(day, _NOON)
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise _RowError(f"date '{_snippet(raw)}' is not an ISO date or datetime") from None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=self.zone)
        return moment.astimezone(self.zone)


# -- into the store ------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What `tmabot import-timesheet` did with a file."""

    format: str
    rows: int  # entries with an issue key found in the file
    imported: int  # new entries stored
    already: int  # entries stored by an earlier import of the same rows
    seconds: int  # time of the new entries
    unknown: dict[str, int]  # issue key not among the client's tickets -> rows
    problems: list[str]  # rows skipped (no key, bad duration, ...)


def import_timesheet(store: Any, client_id: str, path: Path, *, tz: str,
                     now: datetime | None = None) -> ImportReport:
    """Parse an export and store its entries for the client's tickets, idempotently.

    Entries are keyed by a hash of their row: importing the same file again (or an
    overlapping later export) adds only rows not seen before. Entries whose issue key is
    not one of the client's synced tickets are reported and left out (sync first, or
    check the key): one client's time can never land on another client's ticket.
    """
    result = parse_timesheet(path, tz=tz)
    keys = store.ticket_keys(client_id)
    stamp = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    unknown: dict[str, int] = {}
    for e in result.entries:
        key = (e.issue_key or "").upper()
        owner = keys.get(key)
        if owner is None:
            unknown[key] = unknown.get(key, 0) + 1
            continue
        rows.append({
            "entry_id": e.entry_id, "tracker": owner[0], "issue_id": owner[1],
            "issue_key": key, "started_at": e.started_at, "seconds": e.seconds,
            "person_email": e.person_email, "person_name": e.person_name,
            "comment": e.comment, "source_format": e.source_format,
            "file_name": Path(path).name, "imported_at": stamp,
        })
    new = store.save_time_entries(client_id, rows)
    return ImportReport(result.format, len(result.entries), len(new), len(rows) - len(new),
                        sum(r["seconds"] for r in rows if r["entry_id"] in new), unknown,
                        list(result.problems))

"""A client's stored tickets as the INTERFACE.md objects (JSON, table, CSV)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import DONE
from tmabot.store import Store

P_LEVELS = ("P0", "P1", "P2", "P3")


def priority_level(tracker_priority: str | None, mapping: Mapping[str, str]) -> tuple[str, bool]:
    """(P-level, known). No or an unmapped priority is P3, flagged to the PM (DOMAIN.md §2)."""
    if tracker_priority:
        lowered = {k.lower(): v for k, v in mapping.items()}
        level = lowered.get(tracker_priority.strip().lower())
        if level in P_LEVELS:
            return level, True
    return "P3", False


def resolution_at(transitions: Iterable[Mapping[str, Any]],
                  status_category: str) -> datetime | None:
    """The last entry into *done*; None while the ticket is not done (a reopened ticket)."""
    if status_category != DONE:
        return None
    last: datetime | None = None
    for t in transitions:
        if t["to_category"] == DONE and t["from_category"] != DONE:
            last = t["at"]
    return last


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        try:
            y, m = text.split("-")
            month = cls(int(y), int(m))
        except ValueError:
            raise ValueError(f"--month {text!r}: expected YYYY-MM, e.g. 2026-10") from None
        if not 1 <= month.month <= 12:
            raise ValueError(f"--month {text!r}: month must be 01 to 12")
        return month

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) of the calendar month in the agency's zone."""
        start = datetime(self.year, self.month, 1, tzinfo=tz)
        nxt = date(self.year + (self.month == 12), self.month % 12 + 1, 1)
        return start, datetime(nxt.year, nxt.month, 1, tzinfo=tz)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat() if value is not None else None


def client_tickets(
    store: Store, client_id: str, *, tz: ZoneInfo, priorities: Mapping[str, str],
    month: Month | None = None, at: datetime | None = None,
) -> list[dict[str, Any]]:
    """The client's tickets as INTERFACE.md objects; with `month`, those created, resolved or
    worked on (a worklog started) in it, in the agency's zone. `at` hides what came later."""
    rows = store.client_tickets(client_id)
    hist: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in store.client_transitions(client_id):
        if at is None or t["at"] <= at:
            hist[(t["tracker"], t["issue_id"])].append(t)
    spent: dict[tuple[str, str], int] = defaultdict(int)
    worked: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for w in store.client_worklogs(client_id):
        if at is None or w["started_at"] <= at:
            spent[(w["tracker"], w["issue_id"])] += w["seconds"]
            worked[(w["tracker"], w["issue_id"])].append(w["started_at"])
    start, end = month.bounds(tz) if month else (None, None)
    out: list[dict[str, Any]] = []
    for r in rows:
        ident = (r["tracker"], r["issue_id"])
        if at is not None and r["created_at"] > at:
            continue
        resolved = resolution_at(hist[ident], r["status_category"]) or (
            r["resolved_at"] if r["status_category"] == DONE and not hist[ident] else None)
        if start is not None and end is not None and not (
                start <= r["created_at"] < end
                or (resolved is not None and start <= resolved < end)
                or any(start <= s < end for s in worked[ident])):
            continue
        level, _known = priority_level(r["tracker_priority"], priorities)
        out.append({
            "key": r["key"], "source": r["source"], "url": r["url"], "title": r["title"],
            "priority": level, "tracker_priority": r["tracker_priority"],
            "status": r["status"], "status_category": r["status_category"],
            "created_at": _iso(r["created_at"], tz), "resolved_at": _iso(resolved, tz),
            "time_spent_hours": round(spent[ident] / 3600.0, 2),
            "assignee_email": r["assignee_email"],
            "project": r["project"], "issue_type": r["issue_type"],
            "labels": list(r["labels"] or []), "components": list(r["components"] or []),
            "updated_at": _iso(r["updated_at"], tz),
            "history_complete": bool(r["history_complete"] and r["worklogs_complete"]),
        })
    return out


CSV_COLUMNS = ("key", "title", "priority", "tracker_priority", "status", "status_category",
               "created_at", "resolved_at", "time_spent_hours", "assignee_email", "url")


def csv_safe(value: Any) -> str:
    """A cell a spreadsheet will not run: leading = + - @ (and tab/CR) are neutralised."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def to_csv(items: Iterable[Mapping[str, Any]], columns: Iterable[str] = CSV_COLUMNS) -> str:
    cols = list(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for item in items:
        writer.writerow([csv_safe(item.get(c)) for c in cols])
    return buf.getvalue()

"""A client's stored tickets as the INTERFACE.md objects (JSON, table, CSV)."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from connectors.base import DONE
from tmabot.calendar import BusinessCalendar, from_epoch
from tmabot.classify import Classification, Rule, TicketColumns, rules_from_config
from tmabot.classify import explain as explain_rules
from tmabot.engine import run_batch
from tmabot.months import Month
from tmabot.sla import (
    INDICATORS,
    STATES,
    Move,
    SlaPolicy,
    SlaResult,
    build_input,
    status_matcher,
)
from tmabot.store import Store

log = logging.getLogger("tmabot.tickets")

P_LEVELS = ("P0", "P1", "P2", "P3")
NO_PRIORITY = {"no priority", "none", "aucune"}  # a priority that says there is none


def priority_level(tracker_priority: str | None, mapping: Mapping[str, str]) -> tuple[str, bool]:
    """(P-level, known). No or an unmapped priority is P3, flagged to the PM (DOMAIN.md §2)."""
    if tracker_priority and tracker_priority.strip().lower() not in NO_PRIORITY:
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


def flagged(item: Mapping[str, Any], states: tuple[str, ...] = ("at_risk", "breached")
            ) -> list[str]:
    """The indicators of a ticket (a `tickets_json` item) still running in one of `states`:
    what nudges, digests, `/tma` and the report's alerts speak about."""
    return [name for name, ind in item["sla"].items()
            if ind["state"] in states and not ind["stopped_at"]]


def first_agency_comments(rows: Sequence[Mapping[str, Any]], domains: Sequence[str],
                          now: datetime) -> list[float]:
    """Per ticket, the first public comment up to `now` by someone of the agency (an email
    in one of `domains` or their subdomains), as epoch seconds; NaN without one."""
    from tmabot.config import is_agency_email

    out: list[float] = []
    for r in rows:
        first = math.nan
        for created, email, public in r.get("comments") or ():  # stored oldest first
            at = datetime.fromisoformat(created)
            if at > now:
                break
            if public and is_agency_email(email, domains):
                first = at.timestamp()
                break
        out.append(first)
    return out


def tracker_sla(row: Mapping[str, Any], now: datetime) -> Any:
    """The tracker's own SLA figures as synced (Linear's sla* fields; Jira Service
    Management's SLA fields by name). A JSM cycle still running when synced whose breach
    instant has passed by `now` is shown breached: JSM does not touch the issue for that."""
    sla = (row.get("extra") or {}).get("sla")
    if row.get("source") != "jira" or not isinstance(sla, dict):
        return sla
    out = {}
    for name, figures in sla.items():
        figures = dict(figures)
        breach = figures.get("breach_at")
        if figures.get("state") == "running" and breach and datetime.fromisoformat(
                breach) <= now:
            figures["state"] = "breached"
        out[name] = figures
    return out


# JSM's default SLA names (English and French) -> the indicator they measure.
JSM_INDICATORS = (("first response", "response"), ("première réponse", "response"),
                  ("resolution", "resolution"), ("résolution", "resolution"))


def sla_disagreements(item: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(JSM SLA name, indicator, JSM's state, tmabot's state) where one says breached and
    the other does not, for the JSM SLAs whose name says what they measure."""
    out = []
    for name, figures in (item.get("tracker_sla") or {}).items() if item.get(
            "source") == "jira" else ():
        indicator = next((ind for words, ind in JSM_INDICATORS if words in name.lower()), None)
        if indicator is None or not isinstance(figures, dict):
            continue
        ours = item["sla"][indicator]["state"]
        theirs = figures.get("state")
        if ours in ("none", "not_started") or theirs in (None, "none"):
            continue
        if (theirs == "breached") != (ours == "breached"):
            out.append((name, indicator, str(theirs), ours))
    return out


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    """ISO 8601 with the agency's offset; whole seconds unless the tracker gave millis."""
    return value.astimezone(tz).isoformat() if value is not None else None


@dataclass
class Evaluated:
    """A client's tickets with everything computed, before filtering to a month."""

    rows: list[dict[str, Any]]
    columns: TicketColumns
    classification: Classification
    sla: SlaResult
    rules: tuple[Rule, ...]
    spent: dict[tuple[str, str], int]  # seconds, from `time_source`
    time_source: dict[tuple[str, str], str]  # tracker | timesheet | estimate | none
    entries: dict[tuple[str, str], list[tuple[datetime, int]]]  # (start, seconds)
    resolved: list[datetime | None]
    now: datetime
    # `[sla] response_on_comment`: each ticket's first agency comment (epoch s, NaN: none).
    commented: list[float] | None = None
    # Some ticket was created in, or moved into, a staging status by `now`.
    staging_used: bool = False

    def responded_by(self, i: int) -> str | None:
        """What answered ticket i: "comment", "status" (a move out of *new*), "creation"
        (created outside *new*), or None while unanswered."""
        response = float(self.sla.response_at[i])
        if response != response:
            return None
        created = self.rows[i]["created_at"].timestamp()
        comment = self.commented[i] if self.commented is not None else math.nan
        if comment == comment and max(comment, created) == response:
            return "comment"
        return "creation" if response == created else "status"


def evaluate(store: Store, settings: Any, client: Any, *, at: datetime | None = None,
             calendar: BusinessCalendar | None = None) -> Evaluated:
    """Classify the client's tickets and run their SLA clocks as of `at` (default: now).

    What happened after `at` is invisible: tickets created later are left out, later
    transitions and worklogs ignored.
    """
    now = at or datetime.now(UTC)
    rows = [r for r in store.client_tickets(client.id) if r["created_at"] <= now]
    hist: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in store.client_transitions(client.id):
        hist[(t["tracker"], t["issue_id"])].append(t)
    spent, entries, source = time_spent(store, client, rows, now)
    statuses: dict[str, tuple[str, str]] = {}
    for tracker in {r["tracker"] for r in rows}:
        facts = store.tracker_facts(tracker)
        if facts is not None:
            statuses.update(facts[0].status_categories)
    cal = calendar or BusinessCalendar.from_settings(settings.calendar, settings.agency.timezone)
    commented = (first_agency_comments(rows, settings.sla.agency_domains, now)
                 if settings.sla.response_on_comment else None)
    pause = status_matcher(settings.sla.pause_statuses, statuses)
    staging = status_matcher(settings.sla.staging_statuses, statuses)
    moves = [[Move(t["at"].timestamp(), t["from_status"], t["to_status"],
                   t["from_category"] or "todo", t["to_category"] or "todo",
                   t["from_status_id"], t["to_status_id"])
              for t in hist[(r["tracker"], r["issue_id"])]] for r in rows]
    data = build_input([r["created_at"].timestamp() for r in rows],
                       [(r["status_id"], r["status"], r["status_category"]) for r in rows],
                       moves, now=now.timestamp(), pause=pause, staging=staging,
                       first_agency_comment=commented)
    priorities = settings.priorities_for(client)
    levels = [priority_level(r["tracker_priority"], priorities) for r in rows]
    codes = np.asarray([P_LEVELS.index(level) for level, _known in levels], dtype=np.int8)
    policy = SlaPolicy.for_client(client, settings.sla, day_hours=cal.day_seconds / 3600)
    targets, absolute = policy.arrays(codes, cal)
    hours = np.asarray([max(spent[(r["tracker"], r["issue_id"])] / 3600.0,
                            r["estimate_hours"] or 0.0) for r in rows], dtype=np.float64)
    columns = TicketColumns(
        titles=[r["title"] or "" for r in rows], issue_types=[r["issue_type"] for r in rows],
        labels=[tuple(r["labels"] or ()) for r in rows],
        components=[tuple(r["components"] or ()) for r in rows],
        projects=[r["project"] for r in rows], hours=hours,
        descriptions=[r["description"] or "" for r in rows],
        epics=[r["parent_key"] for r in rows])
    rules = rules_from_config(settings)
    contract = client.contract
    allowance = contract.run_hours_allowance if contract.model != "credit_temps" else None
    classification, result = run_batch(
        columns, rules, data, now=now.timestamp(), calendar=cal, targets=targets,
        absolute=absolute, at_risk_ratio=policy.at_risk_ratio, run_hours_allowance=allowance,
        run_ticket_max_hours=contract.run_ticket_max_hours)
    resolved: list[datetime | None] = []
    for i, r in enumerate(rows):
        value = result.resolved_at[i]
        if value == value:  # not NaN
            resolved.append(datetime.fromtimestamp(float(value), UTC))
        elif (r["status_category"] == DONE and not hist[(r["tracker"], r["issue_id"])]
              and r["resolved_at"] is not None and r["resolved_at"] <= now):
            resolved.append(r["resolved_at"])
        else:
            resolved.append(None)
    for i, (level, known) in enumerate(levels):
        rows[i]["_priority"] = level
        rows[i]["_priority_known"] = known
    return Evaluated(rows, columns, classification, result, rules, spent, source,
                     entries, resolved, now, commented,
                     bool(data.initial_staging.any() or data.t_to_staging.any()))


def time_spent(store: Store, client: Any, rows: list[dict[str, Any]], now: datetime,
               ) -> tuple[dict[tuple[str, str], int],
                          dict[tuple[str, str], list[tuple[datetime, int]]],
                          dict[tuple[str, str], str]]:
    """Seconds spent per ticket, when the work started, and where the figure comes from.

    Per ticket, the first source that has something: the tracker's worklogs, then the
    imported timesheets, then the client's estimate → hours table (Linear estimates);
    otherwise 0 h from "none". Sources are never added together, so time logged both in
    Jira and in a time tracker is not counted twice.
    """
    def by_ticket(items: list[dict[str, Any]]) -> dict[tuple[str, str],
                                                        list[tuple[datetime, int]]]:
        out: dict[tuple[str, str], list[tuple[datetime, int]]] = defaultdict(list)
        for x in items:
            if x["started_at"] <= now:
                out[(x["tracker"], x["issue_id"])].append((x["started_at"], x["seconds"]))
        return out

    sources = (("tracker", by_ticket(store.client_worklogs(client.id))),
               ("timesheet", by_ticket(store.client_time_entries(client.id))))
    spent: dict[tuple[str, str], int] = defaultdict(int)
    worked: dict[tuple[str, str], list[tuple[datetime, int]]] = {}
    source: dict[tuple[str, str], str] = {}
    for r in rows:
        ident = (r["tracker"], r["issue_id"])
        name, found = next(((n, per[ident]) for n, per in sources if ident in per),
                           ("none", None))
        if found is not None:
            worked[ident], spent[ident] = found, sum(sec for _start, sec in found)
            source[ident] = name
            continue
        hours = client.hours_for_estimate((r.get("extra") or {}).get("estimate"))
        if hours is not None:
            spent[ident], source[ident] = round(hours * 3600), "estimate"
        else:
            source[ident] = "none"
    return spent, worked, source


def _sla_json(ev: Evaluated, i: int, tz: ZoneInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    clock = "24/7" if ev.sla.absolute[i] else "business"
    for name in INDICATORS:
        ind = ev.sla.indicators[name]
        target = ind.target[i]
        out[name] = {
            "clock": clock,
            "target_hours": None if target != target else round(float(target) / 3600, 4),
            "elapsed_hours": round(float(ind.elapsed[i]) / 3600, 4),
            "state": STATES[int(ind.state[i])],
            "due_at": _iso(from_epoch(float(ind.due[i]), tz), tz),
            "stopped_at": _iso(from_epoch(float(ind.stop[i]), tz), tz),
        }
    return out


def client_tickets(
    store: Store, settings: Any, client: Any, *, month: Month | None = None,
    at: datetime | None = None, explain: bool = False,
) -> list[dict[str, Any]]:
    """The client's tickets as INTERFACE.md objects; with `month`, those created, resolved or
    worked on (a worklog started) in it, in the agency's zone. `at` hides what came later."""
    ev = evaluate(store, settings, client, at=at)
    return tickets_json(ev, settings, month=month, explain=explain)


def tickets_json(ev: Evaluated, settings: Any, *, month: Month | None = None,
                 explain: bool = False) -> list[dict[str, Any]]:
    tz = ZoneInfo(settings.agency.timezone)
    start, end = month.bounds(tz) if month else (None, None)
    out: list[dict[str, Any]] = []
    for i, r in enumerate(ev.rows):
        ident = (r["tracker"], r["issue_id"])
        resolved = ev.resolved[i]
        if start is not None and end is not None and not (
                start <= r["created_at"] < end
                or (resolved is not None and start <= resolved < end)
                or any(start <= s < end for s, _sec in ev.entries.get(ident, ()))):
            continue
        response = ev.sla.response_at[i]
        item = {
            "key": r["key"], "source": r["source"], "url": r["url"], "title": r["title"],
            "category": str(ev.classification.category[i]),
            "category_rule": ev.classification.rule[i],
            "scope": str(ev.classification.scope[i]),
            "priority": r["_priority"], "tracker_priority": r["tracker_priority"],
            "status": r["status"], "status_category": r["status_category"],
            "created_at": _iso(r["created_at"], tz),
            "first_response_at": _iso(from_epoch(float(response), tz), tz),
            "first_response_by": ev.responded_by(i),
            "resolved_at": _iso(resolved, tz),
            "time_spent_hours": round(ev.spent[ident] / 3600.0, 2),
            "time_source": ev.time_source.get(ident, "none"),
            "assignee_email": r["assignee_email"],
            "sla": _sla_json(ev, i, tz),
            "priority_known": r["_priority_known"],
            "project": r["project"], "issue_type": r["issue_type"],
            "labels": list(r["labels"] or []), "components": list(r["components"] or []),
            "updated_at": _iso(r["updated_at"], tz),
            "history_complete": bool(r["history_complete"] and r["worklogs_complete"]),
            "status_type": r.get("status_type"),
            # The tracker's own SLA figures (Linear: slaType, slaBreachesAt...), to compare.
            "tracker_sla": tracker_sla(r, ev.now),
        }
        if explain:
            item["classification_trace"] = explain_rules(ev.columns, i, ev.rules)
        out.append(item)
    return out


def ticket_uses(ev: Evaluated) -> list[Any]:
    """The evaluated tickets as consumption.TicketUse (their time from `time_source`; an
    estimate counts at the ticket's resolution, not before)."""
    from tmabot.consumption import Indicator, TicketUse, Work

    out = []
    for i, r in enumerate(ev.rows):
        ident = (r["tracker"], r["issue_id"])
        work = [Work(start, seconds) for start, seconds in ev.entries.get(ident, [])]
        if ev.time_source.get(ident) == "estimate" and ev.resolved[i] is not None:
            work = [Work(ev.resolved[i], ev.spent[ident])]  # type: ignore[arg-type]
        indicators = []
        for name in INDICATORS:
            ind = ev.sla.indicators[name]
            stop = float(ind.stop[i])
            target = float(ind.target[i])
            indicators.append(Indicator(
                name, STATES[int(ind.state[i])],
                from_epoch(stop, UTC),
                float(ind.elapsed[i]), None if target != target else target))
        out.append(TicketUse(
            key=r["key"], title=r["title"], category=str(ev.classification.category[i]),
            scope=str(ev.classification.scope[i]), priority=r["_priority"],
            created_at=r["created_at"], work=tuple(work), indicators=tuple(indicators),
            url=r["url"]))
    return out


def client_consumption(store: Store, settings: Any, client: Any, month: Month, *,
                       at: datetime | None = None, uptime: Any = None,
                       evaluated: Evaluated | None = None) -> Any:
    """The month's consumption, with SLA figures as of the month's end (or `at`).
    `evaluated`: the client's tickets already evaluated at that instant, to reuse."""
    from tmabot.consumption import UptimeFigure, consumption

    tz = ZoneInfo(settings.agency.timezone)
    _start, end = month.bounds(tz)
    now = at or datetime.now(UTC)
    ev = evaluated or evaluate(store, settings, client, at=min(now, end))
    figure = UptimeFigure(uptime.percent, uptime.incidents) if uptime is not None else None
    result = consumption(client.contract, ticket_uses(ev), month, tz, uptime=figure)
    if uptime is not None:
        result.details["uptime"] = {"percent": uptime.percent, "incidents": uptime.incidents,
                                    "source": uptime.source,
                                    "provider_percent": uptime.provider_percent}
    return result


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

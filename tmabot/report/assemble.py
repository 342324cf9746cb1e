"""Gather a client-month's facts into the report's data: the INTERFACE.md JSON shape.

Seven sections, in the guide's order (DOMAIN.md §4): executive summary (≤ 3 lines from
the facts), tickets handled, plan consumption, updates done, availability, alerts and
recommendations, next month. Every figure is computed here; rendering only formats.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tmabot.calendar import BusinessCalendar
from tmabot.classify import CATEGORY_LABELS_EN, CATEGORY_LABELS_FR
from tmabot.months import Month
from tmabot.report.i18n import Text, text_for
from tmabot.tickets import client_consumption, evaluate, flagged, tickets_json

UPDATE_CATEGORIES = ("preventif", "securite")
# "WordPress 6.6 → 6.7", "PHP 8.1 vers 8.3", "Drupal 10.2 -> 10.3", "Symfony 6.4 to 7.1"
_VERSION = re.compile(
    r"(?P<component>[A-Za-zÀ-ÿ][\w.+#-]*(?:\s[A-Za-zÀ-ÿ][\w.+#-]*)?)\s+"
    r"(?P<old>v?\d+(?:\.\d+)*)\s*(?:→|->|=>|vers|to|en)\s*(?P<new>v?\d+(?:\.\d+)*)",
    re.IGNORECASE)
_LEAD = re.compile(r"^.*?\b(mise à jour|mise a jour|mises à jour|maj|update|upgrade|passage|"
                   r"montée de version|montée en version)\b(\s+(de|du|des|à|a|of|to|vers))?\s+",
                   re.IGNORECASE)
# Preventive / security slots per tier cadence (DOMAIN.md §3).
CADENCE = {"essentiel": (None, None), "business": ("quarterly", "monthly"),
           "critique": ("monthly", "continuous")}


def version_change(title: str) -> dict[str, str] | None:
    match = _VERSION.search(_LEAD.sub("", title))
    if not match:
        return None
    return {"component": match.group("component").strip(), "from": match.group("old"),
            "to": match.group("new")}


def _first_business_day(day: date, cal: BusinessCalendar) -> date:
    while not cal.hours_on(day):
        day += timedelta(days=1)
    return day


def assemble(store: Any, settings: Any, client: Any, month: Month, *,
             at: datetime | None = None, uptime: Any = None) -> dict[str, Any]:
    """The report's data (INTERFACE.md `report --format json`, plus rendering details)."""
    tz = ZoneInfo(settings.agency.timezone)
    locale = settings.agency.locale
    t = text_for(locale)
    start, end = month.bounds(tz)
    now = at or datetime.now(UTC)
    as_of = min(now, end)
    cal = BusinessCalendar.from_settings(settings.calendar, settings.agency.timezone)
    ev = evaluate(store, settings, client, at=as_of, calendar=cal)
    tickets = tickets_json(ev, settings, month=month)
    cons = client_consumption(store, settings, client, month, at=as_of, uptime=uptime,
                              evaluated=ev)
    labels = CATEGORY_LABELS_FR if locale == "fr" else CATEGORY_LABELS_EN

    resolved_in_month = [x for x in tickets if x["resolved_at"]
                         and start <= datetime.fromisoformat(x["resolved_at"]) < end]
    updates = []
    for x in resolved_in_month:
        if x["category"] in UPDATE_CATEGORIES:
            updates.append({"key": x["key"], "title": x["title"], "category": x["category"],
                            "category_label": labels[x["category"]],
                            "resolved_at": x["resolved_at"], "url": x["url"],
                            "version": version_change(x["title"])})
    compliance = {name: {k: v for k, v in row.items() if k != "breaches"}
                  for name, row in cons.details["sla_compliance"].items()}
    breaches = [{"indicator": name, **b} for name, row in
                cons.details["sla_compliance"].items() for b in row["breaches"]]
    all_items = tickets_json(ev, settings)
    open_items = [x for x in all_items if x["status_category"] != "done"]
    alerts = _alerts(t, client, cons, breaches, open_items, tickets, uptime)
    alerts += audit_alerts(store, settings, client, ev, t.fr, month)
    next_month = _next_month(t, client, month, open_items, cal, tz)
    hours = sum(x["time_spent_hours"] for x in tickets)
    status = ("critical" if any(a["level"] == "critical" for a in alerts)
              else "warning" if any(a["level"] == "warning" for a in alerts) else "ok")
    summary = _summary(t, status, tickets, resolved_in_month, hours, updates, cons, uptime)
    by_category: dict[str, int] = {}
    for x in tickets:
        by_category[x["category"]] = by_category.get(x["category"], 0) + 1
    data: dict[str, Any] = {
        "client": client.id, "client_name": client.name, "month": str(month),
        "month_label": t.month_label(month), "locale": locale, "status": status,
        "summary": summary, "tickets": tickets, "consumption": cons.as_json(),
        "updates": updates,
        "uptime": {"percent": uptime.percent if uptime is not None else None,
                   "incidents": uptime.incidents if uptime is not None else [],
                   "target": client.contract.uptime_target,
                   "source": getattr(uptime, "source", None)},
        "alerts": alerts, "next_month": next_month, "sla_compliance": compliance,
        "sla_breaches": breaches,
        "tickets_by_category": {labels[k]: v for k, v in sorted(
            by_category.items(), key=lambda kv: list(labels).index(kv[0]))},
        "hours": round(hours, 2),
        "agency": {"name": settings.agency.name, "colour": settings.report.colour},
        "generated_at": now.astimezone(tz).isoformat(timespec="seconds"),
        "as_of": as_of.astimezone(tz).isoformat(timespec="seconds"),
        "trend": trend(store, settings, client, month, tz, ev),
    }
    return data


def audit_alerts(store: Any, settings: Any, client: Any, ev: Any, fr: bool,
                 month: Month) -> list[dict[str, str]]:
    """The audit's active critical and high signals, as recommendations (this month's
    report, being made, counts as sent)."""
    from tmabot.audit import audit_client

    result = audit_client(store, settings, client, now=ev.now, evaluated=ev,
                          reporting=str(month))
    out = []
    if result["three_criticals"]:
        out.append({"level": "critical", "text": (
            "Audit immédiat recommandé : pas de staging, mises à jour en retard et aucune "
            "sauvegarde testée (règle des trois signaux critiques)." if fr else
            "Immediate audit recommended: no staging, updates overdue and no tested backup "
            "(rule of three criticals).")})
    for s in result["signals"]:
        if s["active"] and s["level"] in ("critical", "high"):
            out.append({"level": "warning" if s["level"] == "high" else "critical",
                        "text": f"{s['id']} — {s['label']} : {s['reason']}" if fr
                        else f"{s['id']} — {s['label']}: {s['reason']}"})
    return out


def trend(store: Any, settings: Any, client: Any, month: Month, tz: ZoneInfo,
          ev: Any) -> list[dict[str, Any]]:
    """Tickets created and hours logged over the 6 months ending with `month`."""
    months = [month]
    for _ in range(5):
        months.insert(0, months[0].previous())
    out = []
    for m in months:
        s, e = m.bounds(tz)
        created = sum(1 for r in ev.rows if s <= r["created_at"] < e)
        seconds = sum(sec for items in ev.entries.values() for started, sec in items
                      if s <= started < e)
        out.append({"month": str(m), "tickets": created, "hours": round(seconds / 3600, 2)})
    return out


def _alerts(t: Text, client: Any, cons: Any, breaches: list[dict[str, Any]],
            open_items: list[dict[str, Any]], tickets: list[dict[str, Any]], uptime: Any,
            ) -> list[dict[str, str]]:
    alerts: list[dict[str, str]] = []
    for b in breaches:
        level = "critical" if b["priority"] == "P0" else "warning"
        alerts.append({"level": level, "text": t.breach(b)})
    for x in open_items:
        for name in flagged(x):
            ind = x["sla"][name]
            level = "critical" if ind["state"] == "breached" and x["priority"] == "P0" \
                else "warning"
            alerts.append({"level": level, "text": t.open_risk(x, name, ind)})
    c = cons
    if c.model == "forfait" and c.details.get("over_quota_tickets"):
        alerts.append({"level": "warning", "text": t.over_quota(c)})
    if c.model == "forfait" and c.details.get("run_overage_hours"):
        alerts.append({"level": "warning", "text": t.run_over(c)})
    if c.model == "credit_temps":
        if c.details.get("low_balance"):
            alerts.append({"level": "warning", "text": t.low_balance(c)})
        if c.overage_hours:
            alerts.append({"level": "warning", "text": t.out_of_plan(c)})
    if uptime is not None and uptime.percent is not None \
            and uptime.percent < client.contract.uptime_target:
        alerts.append({"level": "critical" if c.model == "sla" else "warning",
                       "text": t.uptime_below(uptime.percent, client.contract.uptime_target)})
    for note in c.credit_notes:
        alerts.append({"level": "info", "text": t.credit_note(note)})
    quotes = c.details.get("tickets_to_quote") or []
    if quotes:
        alerts.append({"level": "info", "text": t.to_quote(quotes)})
    unclassified = c.details.get("unclassified") or []
    if unclassified:
        alerts.append({"level": "info", "text": t.unclassified(unclassified)})
    unknown = [x["key"] for x in tickets if not x.get("priority_known", True)]
    if unknown:
        alerts.append({"level": "info", "text": t.no_priority(unknown)})
    return alerts


def _next_month(t: Text, client: Any, month: Month, open_items: list[dict[str, Any]],
                cal: BusinessCalendar, tz: ZoneInfo) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for x in open_items:
        dues = [ind["due_at"] for ind in x["sla"].values()
                if ind["due_at"] and ind["stopped_at"] is None]
        out.append({"title": f"{x['key']} — {x['title']}", "due": min(dues) if dues else None,
                    "kind": "ticket", "priority": x["priority"]})
    out.sort(key=lambda item: (item["due"] is None, item["due"] or "", item["title"]))
    preventive, security = CADENCE.get(client.contract.tier or "", (None, None))
    nxt = month.next()
    if preventive == "monthly" or (preventive == "quarterly" and nxt.month in (1, 4, 7, 10)):
        day = _first_business_day(nxt.first_day() + timedelta(days=7), cal)
        out.append({"title": t.preventive_slot(preventive), "due": day.isoformat(),
                    "kind": "preventif", "priority": None})
    elif preventive == "quarterly":
        q = Month(nxt.year, ((nxt.month - 1) // 3 + 1) * 3 + 1) if nxt.month < 10 \
            else Month(nxt.year + 1, 1)
        day = _first_business_day(q.first_day() + timedelta(days=7), cal)
        out.append({"title": t.preventive_slot(preventive), "due": day.isoformat(),
                    "kind": "preventif", "priority": None})
    if security in ("monthly", "continuous"):
        day = _first_business_day(nxt.first_day(), cal)
        out.append({"title": t.security_slot(security), "due": day.isoformat(),
                    "kind": "securite", "priority": None})
    return out


def _summary(t: Text, status: str, tickets: list[dict[str, Any]],
             resolved: list[dict[str, Any]], hours: float, updates: list[dict[str, Any]],
             cons: Any, uptime: Any) -> list[str]:
    lines = [t.status_line(status, len(tickets), len(resolved), hours)]
    highlights = []
    if uptime is not None and uptime.percent is not None:
        highlights.append(t.uptime_short(uptime.percent))
    if updates:
        highlights.append(t.updates_short(updates))
    if highlights:
        lines.append(" ; ".join(highlights) + ".")
    lines.append(t.consumption_line(cons))
    return lines[:3]

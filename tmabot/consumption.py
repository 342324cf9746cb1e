"""What a client's plan consumed in a month (DOMAIN.md §3). Pure; money is Decimal.

Attribution, in the agency's time zone: a ticket counts in the month it was created; time
counts in the month its worklog started (a worklog at 23:30 on the 31st in Paris is that
month's, whatever UTC says).

Rules chosen where the guide is silent (also in the README):
- A contract starting mid-month gets the full monthly quota and Run allowance for that
  month (no proration: the fee is not prorated either); work before the start is not
  counted.
- Tickets whose scope is `quote_required` (out of scope, or Run work too big or on a plan
  without Run hours) are listed to quote and never consumed; `unclassified` tickets are
  listed with their hours and never consumed either, until a rule or label classifies them.
- forfait: the corrective quota is used in creation order; the time logged in the month on
  the tickets beyond it is overage. Run hours are used in worklog order; the worklog that
  crosses the allowance is split. Préventif, sécurité, supervision are included.
- credit_temps: every counted worklog is rounded up to `rounding_minutes` and drawn from
  the purchases available at its start (bought on or before that day, not expired), the
  oldest purchase first; what the credit cannot cover is split off as out of plan. A
  purchase expires `expiry_months` after its date (0: never); what is left of it then is
  lost. The balance carries over from month to month.
- sla: compliance over the indicators with a target that stopped in the month; a P0
  resolution breach earns a credit note when the ticket is resolved, per started hour late.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tmabot.months import Month, add_months

CENT = Decimal("0.01")
HOUR = 3600


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def hours(seconds: float) -> float:
    return round(seconds / HOUR, 4)


@dataclass(frozen=True)
class Work:
    """One stretch of logged time on a ticket."""

    started_at: datetime  # aware
    seconds: int


@dataclass(frozen=True)
class Indicator:
    name: str  # response | resolution | delivery
    state: str
    stopped_at: datetime | None
    elapsed_seconds: float
    target_seconds: float | None


@dataclass(frozen=True)
class TicketUse:
    key: str
    title: str
    category: str
    scope: str  # included | quote_required | unclassified
    priority: str
    created_at: datetime
    work: tuple[Work, ...] = ()
    indicators: tuple[Indicator, ...] = ()
    url: str = ""


@dataclass
class UptimeFigure:
    percent: float | None
    incidents: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Consumption:
    model: str
    month: str
    tickets_used: int
    tickets_included: int | None
    run_hours_used: float
    run_hours_included: float
    hours_used: float
    hours_balance: float | None
    overage_hours: float
    overage_amount: Decimal
    uptime_percent: float | None
    credit_notes: list[dict[str, Any]]
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out = {
            "model": self.model, "month": self.month, "tickets_used": self.tickets_used,
            "tickets_included": self.tickets_included, "run_hours_used": self.run_hours_used,
            "run_hours_included": self.run_hours_included, "hours_used": self.hours_used,
            "hours_balance": self.hours_balance, "overage_hours": self.overage_hours,
            "overage_amount": str(self.overage_amount), "uptime_percent": self.uptime_percent,
            "credit_notes": [{**c, "amount": str(c["amount"])} for c in self.credit_notes],
        }
        out.update(self.details)
        return out


# -- the computation ---------------------------------------------------------------------


def _in(when: datetime, start: datetime, end: datetime) -> bool:
    return start <= when < end


def _rounded(seconds: int, minutes: int) -> int:
    unit = minutes * 60
    return math.ceil(seconds / unit) * unit if seconds > 0 else 0


def consumption(contract: Any, tickets: Sequence[TicketUse], month: Month, tz: ZoneInfo, *,
                uptime: UptimeFigure | None = None) -> Consumption:
    """The INTERFACE.md `consumption` object of one client-month (plus details)."""
    start, end = month.bounds(tz)
    contract_start = datetime.combine(contract.start, datetime.min.time(), tz)
    counted_from = max(start, contract_start)
    rate = Decimal(contract.hourly_rate)
    quota = contract.tickets_quota
    run_allowance = float(contract.run_hours_allowance)

    def month_work(t: TicketUse) -> list[Work]:
        return [w for w in t.work if _in(w.started_at, counted_from, end)]

    correctif = sorted((t for t in tickets if t.category == "correctif"
                        and _in(t.created_at, counted_from, end)),
                       key=lambda t: (t.created_at, t.key))
    in_scope = [t for t in tickets if t.scope == "included"]
    to_quote = [t for t in tickets if t.scope == "quote_required"
                and (_in(t.created_at, start, end) or month_work(t))]
    unclassified = [t for t in tickets if t.scope == "unclassified"
                    and (_in(t.created_at, start, end) or month_work(t))]
    included_seconds = sum(w.seconds for t in in_scope for w in month_work(t))

    # Run hours, in worklog order; the worklog that crosses the allowance is split.
    run_work = sorted(((w, t) for t in in_scope if t.category == "evolutif_run"
                       for w in month_work(t)), key=lambda x: (x[0].started_at, x[1].key))
    run_used = sum(w.seconds for w, _t in run_work)
    run_over = max(0, run_used - round(run_allowance * HOUR))

    details: dict[str, Any] = {
        "tickets_to_quote": [{"key": t.key, "title": t.title, "category": t.category,
                              "hours": hours(sum(w.seconds for w in month_work(t))),
                              "url": t.url} for t in to_quote],
        "unclassified": [{"key": t.key, "title": t.title,
                          "hours": hours(sum(w.seconds for w in month_work(t))),
                          "url": t.url} for t in unclassified],
        "contract_started": contract.start.isoformat(),
    }
    if end <= contract_start:
        details["before_contract"] = True

    credit_notes: list[dict[str, Any]] = []
    hours_balance: float | None = None
    overage_seconds = 0
    hours_used_seconds = included_seconds
    if contract.model == "forfait":
        over_quota = [(t, sum(w.seconds for w in month_work(t)))
                      for t in (correctif[quota:] if quota is not None else [])]
        overage_seconds = sum(seconds for _t, seconds in over_quota) + run_over
        details["over_quota_tickets"] = [
            {"key": t.key, "title": t.title, "hours": hours(seconds)}
            for t, seconds in over_quota]
        details["run_overage_hours"] = hours(run_over)
    elif contract.model == "credit_temps":
        ledger = credit_ledger(contract, tickets, tz, until=end)
        used, out_of_plan = ledger.month_totals(start, end)
        hours_used_seconds = used
        overage_seconds = out_of_plan
        balance = ledger.balance_at(end)
        hours_balance = hours(balance)
        last = ledger.last_purchase(end)
        alert = last is not None and balance < contract.low_balance_ratio * last * HOUR
        details.update({
            "rounding_minutes": contract.rounding_minutes,
            "hours_logged": hours(included_seconds),
            "hours_purchased": hours(ledger.purchased_in(start, end)),
            "hours_expired": hours(ledger.expired_in(start, end)),
            "balance_start": hours(ledger.balance_at(start)),
            "low_balance": bool(alert),
            "projection": ledger.projection(month, tz),
        })
    elif contract.model == "sla":
        credit_notes = sla_credit_notes(contract, tickets, start, end, uptime)
    details["sla_compliance"] = compliance(tickets, start, end)
    return Consumption(
        model=contract.model, month=str(month), tickets_used=len(correctif),
        tickets_included=quota, run_hours_used=hours(run_used),
        run_hours_included=run_allowance, hours_used=hours(hours_used_seconds),
        hours_balance=hours_balance, overage_hours=hours(overage_seconds),
        overage_amount=money(Decimal(overage_seconds) / HOUR * rate),
        uptime_percent=uptime.percent if uptime else None, credit_notes=credit_notes,
        details=details)


# -- prepaid hours ------------------------------------------------------------------------


@dataclass
class _Lot:
    bought: datetime
    expires: datetime | None
    seconds: int
    left: int
    expired_seconds: int = 0
    history: list[tuple[datetime, int]] = field(default_factory=list)  # (when, drawn/lost)


@dataclass
class CreditLedger:
    """Every counted worklog since the contract start drawn from the purchases, in order."""

    lots: list[_Lot]
    draws: list[tuple[datetime, int, int]]  # (worklog start, from credit, out of plan)

    def month_totals(self, start: datetime, end: datetime) -> tuple[int, int]:
        used = sum(c for at, c, _o in self.draws if start <= at < end)
        over = sum(o for at, _c, o in self.draws if start <= at < end)
        return used, over

    def balance_at(self, when: datetime) -> int:
        """Seconds available at `when`: bought before, not expired by then, minus draws
        made before it."""
        total = 0
        for lot in self.lots:
            if lot.bought > when or (lot.expires is not None and lot.expires <= when):
                continue
            total += lot.seconds - self._drawn_before(lot, when)
        return total

    def _drawn_before(self, lot: _Lot, when: datetime) -> int:
        return sum(s for at, s in lot.history if at < when)

    def purchased_in(self, start: datetime, end: datetime) -> int:
        return sum(lot.seconds for lot in self.lots if start <= lot.bought < end)

    def expired_in(self, start: datetime, end: datetime) -> int:
        return sum(lot.expired_seconds for lot in self.lots
                   if lot.expires is not None and start <= lot.expires < end)

    def last_purchase(self, before: datetime) -> float | None:
        bought = [lot for lot in self.lots if lot.bought < before]
        return bought[-1].seconds / HOUR if bought else None

    def projection(self, month: Month, tz: ZoneInfo) -> dict[str, Any]:
        """When the balance runs out at the pace of the last 3 months (this one included)."""
        end = month.next().start(tz)
        first = month.previous().previous().start(tz)
        used = sum(c + o for at, c, o in self.draws if first <= at < end)
        pace = used / 3
        balance = self.balance_at(end)
        if pace <= 0:
            return {"monthly_pace_hours": 0.0, "months_left": None, "runs_out": None}
        months_left = balance / pace
        runs_out = add_months(month.next().first_day(), int(months_left))
        return {"monthly_pace_hours": hours(pace), "months_left": round(months_left, 1),
                "runs_out": str(Month.of(runs_out))}


def credit_ledger(contract: Any, tickets: Sequence[TicketUse], tz: ZoneInfo, *,
                  until: datetime) -> CreditLedger:
    start = datetime.combine(contract.start, datetime.min.time(), tz)
    lots: list[_Lot] = []
    for p in sorted(contract.credits, key=lambda c: c.date):
        bought = datetime.combine(p.date, datetime.min.time(), tz)
        expires = (datetime.combine(add_months(p.date, contract.expiry_months),
                                    datetime.min.time(), tz)
                   if contract.expiry_months else None)
        seconds = round(float(p.hours) * HOUR)
        lots.append(_Lot(bought, expires, seconds, seconds))
    work = sorted(((w.started_at, t.key, w.seconds) for t in tickets if t.scope == "included"
                   for w in t.work if start <= w.started_at < until),
                  key=lambda x: (x[0], x[1]))
    draws: list[tuple[datetime, int, int]] = []
    events = sorted([(lot.expires, lot) for lot in lots if lot.expires is not None],
                    key=lambda e: e[0])
    for at, _key, seconds in work:
        need = _rounded(seconds, contract.rounding_minutes)
        for expires, lot in events:  # lots that expired before this worklog
            if expires <= at and lot.left > 0:
                lot.expired_seconds += lot.left
                lot.history.append((expires, lot.left))
                lot.left = 0
        taken = 0
        for lot in lots:
            if need == 0:
                break
            if lot.bought > at or (lot.expires is not None and lot.expires <= at):
                continue
            take = min(lot.left, need)
            if take:
                lot.left -= take
                lot.history.append((at, take))
                need -= take
                taken += take
        draws.append((at, taken, need))
    for expires, lot in events:  # expiries after the last worklog, up to `until`
        if expires <= until and lot.left > 0:
            lot.expired_seconds += lot.left
            lot.history.append((expires, lot.left))
            lot.left = 0
    return CreditLedger(lots, draws)


# -- SLA contracts ------------------------------------------------------------------------


def compliance(tickets: Sequence[TicketUse], start: datetime, end: datetime
               ) -> dict[str, dict[str, Any]]:
    """Per indicator, over those with a target that stopped in the month."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("response", "resolution", "delivery"):
        met = breached = 0
        breaches = []
        for t in tickets:
            for ind in t.indicators:
                if ind.name != name or ind.target_seconds is None or ind.stopped_at is None:
                    continue
                if not (start <= ind.stopped_at < end):
                    continue
                if ind.state == "breached":
                    breached += 1
                    breaches.append({"key": t.key, "priority": t.priority,
                                     "elapsed_hours": hours(ind.elapsed_seconds),
                                     "target_hours": hours(ind.target_seconds)})
                elif ind.state == "met":
                    met += 1
        total = met + breached
        out[name] = {"met": met, "breached": breached,
                     "percent": round(100.0 * met / total, 1) if total else None,
                     "breaches": breaches}
    return out


def uptime_credit(contract: Any, percent: float | None) -> dict[str, Any] | None:
    """The row with the lowest `below` that the uptime is under; None when on target."""
    if percent is None:
        return None
    under = [row for row in contract.uptime_credits if percent < row.below]
    if not under:
        return None
    row = min(under, key=lambda r: r.below)
    amount = money(Decimal(contract.monthly_fee) * Decimal(str(row.percent)) / 100)
    return {"reason": f"Disponibilité {_fr(percent)} % < {_fr(row.below)} % : avoir de "
                      f"{_fr(row.percent)} % du forfait mensuel",
            "amount": amount, "kind": "uptime", "percent": row.percent,
            "uptime_percent": percent, "below": row.below}


def sla_credit_notes(contract: Any, tickets: Sequence[TicketUse], start: datetime,
                     end: datetime, uptime: UptimeFigure | None) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    up = uptime_credit(contract, uptime.percent if uptime else None)
    if up:
        notes.append(up)
    per_hour = Decimal(str(contract.resolution_credit.percent_per_hour))
    cap = Decimal(str(contract.resolution_credit.max_percent))
    fee = Decimal(contract.monthly_fee)
    for t in sorted(tickets, key=lambda t: t.key):
        if t.priority != "P0":
            continue
        for ind in t.indicators:
            if (ind.name != "resolution" or ind.state != "breached"
                    or ind.stopped_at is None or ind.target_seconds is None
                    or not (start <= ind.stopped_at < end)):
                continue
            late = ind.elapsed_seconds - ind.target_seconds
            started_hours = max(1, math.ceil(late / HOUR - 1e-9))
            percent = min(cap, per_hour * started_hours)
            amount = money(fee * percent / 100)
            notes.append({"reason": f"{t.key} : résolution P0 en retard de "
                                    f"{_fr(round(late / HOUR, 2))} h ({started_hours} h "
                                    f"entamée(s) × {_fr(float(per_hour))} %, plafond "
                                    f"{_fr(float(cap))} %)",
                          "amount": amount, "kind": "resolution", "ticket": t.key,
                          "percent": float(percent), "late_hours": round(late / HOUR, 2),
                          "started_hours": started_hours,
                          "percent_per_hour": float(per_hour), "max_percent": float(cap)})
    return notes


def _fr(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")

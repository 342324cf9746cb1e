"""Plan consumption, each case computed by hand (Paris time; 95 €/h forfait, 90 €/h prepaid,
2,400 € SLA fee)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tmabot.config import ContractSettings, CreditPurchase, ResolutionCredit, UptimeCredit
from tmabot.consumption import (
    Indicator,
    TicketUse,
    UptimeFigure,
    Work,
    consumption,
    credit_ledger,
)
from tmabot.months import Month

PARIS = ZoneInfo("Europe/Paris")
OCT = Month(2026, 10)


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=PARIS)


def ticket(key: str, created: str, *work: tuple[str, float], category: str = "correctif",
           scope: str = "included", priority: str = "P2",
           indicators: tuple[Indicator, ...] = ()) -> TicketUse:
    return TicketUse(key=key, title=f"Ticket {key}", category=category, scope=scope,
                     priority=priority, created_at=at(created),
                     work=tuple(Work(at(s), round(h * 3600)) for s, h in work),
                     indicators=indicators)


def forfait(**kw: Any) -> ContractSettings:
    return ContractSettings(model="forfait", tier=kw.pop("tier", "business"),
                            start=kw.pop("start", date(2026, 1, 1)),
                            monthly_fee="900.00", hourly_rate="95.00", **kw)


def prepaid(*credits: tuple[date, float], **kw: Any) -> ContractSettings:
    return ContractSettings(model="credit_temps", start=kw.pop("start", date(2026, 1, 1)),
                            hourly_rate="90.00",
                            credits=tuple(CreditPurchase(date=d, hours=h) for d, h in credits),
                            **kw)


def sla_contract() -> ContractSettings:
    return ContractSettings(
        model="sla", tier="critique", start=date(2026, 1, 1), monthly_fee="2400.00",
        hourly_rate="110.00",
        uptime_credits=(UptimeCredit(below=99.5, percent=5), UptimeCredit(below=99.0,
                                                                         percent=10)),
        resolution_credit=ResolutionCredit(percent_per_hour=2, max_percent=20))


# -- forfait -------------------------------------------------------------------------------


def test_quota_exceeded_on_the_sixth_ticket() -> None:
    tickets = [ticket(f"T-{i}", f"2026-10-0{i} 10:00", (f"2026-10-0{i} 14:00", 1.0))
               for i in range(1, 7)]
    tickets.append(ticket("P-1", "2026-10-02 10:00", ("2026-10-02 11:00", 2.0),
                          category="preventif"))  # included, does not use the quota
    c = consumption(forfait(), tickets, OCT, PARIS)
    assert (c.tickets_used, c.tickets_included) == (6, 5)
    assert [t["key"] for t in c.details["over_quota_tickets"]] == ["T-6"]
    assert (c.overage_hours, c.overage_amount) == (1.0, Decimal("95.00"))
    assert c.hours_used == 8.0


def test_run_hours_exceeded_mid_ticket() -> None:
    tickets = [
        ticket("R-1", "2026-10-01 09:00", ("2026-10-01 10:00", 1.5), category="evolutif_run"),
        ticket("R-2", "2026-10-02 09:00", ("2026-10-02 10:00", 1.0), category="evolutif_run"),
    ]
    c = consumption(forfait(), tickets, OCT, PARIS)
    assert (c.run_hours_used, c.run_hours_included) == (2.5, 2.0)
    assert c.overage_hours == 0.5  # R-2 crosses the 2 h allowance half way
    assert c.overage_amount == Decimal("47.50")


def test_month_boundary_is_paris_not_utc() -> None:
    tickets = [
        # 23:30 in Paris on 31 Oct is 22:30 UTC: October's. 00:30 on 1 Nov is 23:30 UTC on
        # 31 Oct: November's. A ticket created at 00:15 on 1 Nov is November's.
        ticket("A-1", "2026-10-20 10:00", ("2026-10-31 23:30", 0.5),
               ("2026-11-01 00:30", 0.25)),
        ticket("A-2", "2026-11-01 00:15", ("2026-11-01 00:20", 0.1)),
    ]
    october = consumption(forfait(), tickets, OCT, PARIS)
    november = consumption(forfait(), tickets, Month(2026, 11), PARIS)
    assert (october.tickets_used, october.hours_used) == (1, 0.5)
    assert (november.tickets_used, november.hours_used) == (1, 0.35)


def test_out_of_scope_is_listed_to_quote_and_never_consumed() -> None:
    tickets = [
        ticket("H-1", "2026-10-05 09:00", ("2026-10-05 10:00", 6.0), category="hors_perimetre",
               scope="quote_required"),
        ticket("R-9", "2026-10-06 09:00", ("2026-10-06 10:00", 3.0), category="evolutif_run",
               scope="quote_required"),
        ticket("U-1", "2026-10-07 09:00", ("2026-10-07 10:00", 0.75), category="non_classe",
               scope="unclassified"),
    ]
    c = consumption(forfait(), tickets, OCT, PARIS)
    assert c.hours_used == 0.0 and c.overage_hours == 0.0 and c.run_hours_used == 0.0
    assert [(t["key"], t["hours"]) for t in c.details["tickets_to_quote"]] == [
        ("H-1", 6.0), ("R-9", 3.0)]
    assert [(t["key"], t["hours"]) for t in c.details["unclassified"]] == [("U-1", 0.75)]


def test_an_empty_month() -> None:
    c = consumption(forfait(tier="essentiel"), [], OCT, PARIS)
    assert c.as_json() | {} == {
        **c.as_json(), "tickets_used": 0, "tickets_included": 2, "run_hours_used": 0.0,
        "run_hours_included": 0.0, "hours_used": 0.0, "hours_balance": None,
        "overage_hours": 0.0, "overage_amount": "0.00", "credit_notes": []}


def test_a_contract_starting_mid_month_gets_the_full_quota_from_its_start() -> None:
    tickets = [ticket(f"T-{i}", f"2026-10-{10 + i} 10:00", (f"2026-10-{10 + i} 11:00", 1.0))
               for i in range(1, 8)]  # 11..17 Oct; the contract starts on the 15th
    c = consumption(forfait(start=date(2026, 10, 15)), tickets, OCT, PARIS)
    assert c.tickets_used == 3  # 15, 16, 17 Oct: within the full quota of 5
    assert c.hours_used == 3.0 and c.overage_hours == 0.0
    before = consumption(forfait(start=date(2026, 10, 15)), tickets, Month(2026, 9), PARIS)
    assert before.tickets_used == 0 and before.hours_used == 0.0


def test_unlimited_quota_and_overrides() -> None:
    tickets = [ticket(f"T-{i}", f"2026-10-0{i} 10:00", (f"2026-10-0{i} 11:00", 1.0))
               for i in range(1, 10)]
    assert consumption(forfait(tier="critique"), tickets, OCT, PARIS).overage_hours == 0.0
    c = consumption(forfait(tickets_per_month=8), tickets, OCT, PARIS)
    assert (c.tickets_included, c.overage_hours) == (8, 1.0)


# -- prepaid hours ----------------------------------------------------------------------------


def test_worklogs_are_rounded_up_seven_minutes_to_fifteen() -> None:
    tickets = [ticket("C-1", "2026-10-01 09:00", ("2026-10-01 10:00", 7 / 60),
                      ("2026-10-02 10:00", 16 / 60))]
    c = consumption(prepaid((date(2026, 10, 1), 10)), tickets, OCT, PARIS)
    assert c.hours_used == 0.75  # 15 min + 30 min
    assert c.hours_balance == 9.25


def test_a_purchase_expiring_mid_month() -> None:
    tickets = [ticket("C-1", "2025-11-01 09:00", ("2025-11-03 10:00", 8.0),
                      ("2026-10-12 10:00", 1.0))]
    contract = prepaid((date(2025, 10, 10), 10), (date(2026, 9, 1), 5),
                       start=date(2025, 10, 1))
    c = consumption(contract, tickets, OCT, PARIS)
    # The first purchase (2 h left) expires on 10 Oct 2026: the 12 Oct hour comes from the
    # second one, the 2 h are lost.
    assert c.details["hours_expired"] == 2.0
    assert c.hours_used == 1.0 and c.hours_balance == 4.0 and c.overage_hours == 0.0
    assert c.details["balance_start"] == 7.0


def test_rollover_over_three_months() -> None:
    tickets = [ticket("C-1", "2026-08-01 09:00", ("2026-08-10 10:00", 5.0),
                      ("2026-09-10 10:00", 5.0), ("2026-10-10 10:00", 5.0))]
    contract = prepaid((date(2026, 8, 1), 20))
    balances = [consumption(contract, tickets, Month(2026, m), PARIS).hours_balance
                for m in (8, 9, 10)]
    assert balances == [15.0, 10.0, 5.0]
    c = consumption(contract, tickets, OCT, PARIS)
    assert c.details["projection"] == {"monthly_pace_hours": 5.0, "months_left": 1.0,
                                       "runs_out": "2026-12"}


def test_a_top_up_mid_month_and_a_balance_running_out_inside_a_worklog() -> None:
    tickets = [ticket("C-1", "2026-09-01 09:00", ("2026-09-02 10:00", 9.0),
                      ("2026-10-05 10:00", 2.0), ("2026-10-12 10:00", 3.0))]
    contract = prepaid((date(2026, 9, 1), 10), (date(2026, 10, 10), 10))
    c = consumption(contract, tickets, OCT, PARIS)
    # 5 Oct: 1 h left → 1 h from credit, 1 h out of plan (split). 10 Oct: +10 h.
    # 12 Oct: 3 h from the top-up → 7 h left.
    assert c.hours_used == 4.0 and c.overage_hours == 1.0
    assert c.overage_amount == Decimal("90.00")
    assert c.hours_balance == 7.0 and c.details["hours_purchased"] == 10.0
    assert c.details["low_balance"] is False


def test_low_balance_alert_under_a_fifth_of_the_last_purchase() -> None:
    tickets = [ticket("C-1", "2026-10-01 09:00", ("2026-10-02 10:00", 8.5))]
    c = consumption(prepaid((date(2026, 10, 1), 10)), tickets, OCT, PARIS)
    assert c.hours_balance == 1.5 and c.details["low_balance"] is True


def test_prepaid_hours_reconcile_to_the_second() -> None:
    tickets = [ticket("C-1", "2026-08-01 09:00", *[(f"2026-{m:02d}-{d:02d} 10:00", h)
                                                    for m in (8, 9, 10) for d, h in
                                                    ((3, 0.12), (11, 1.9), (20, 4.33))])]
    contract = prepaid((date(2026, 8, 1), 6), (date(2026, 9, 15), 3))
    ledger = credit_ledger(contract, tickets, PARIS, until=Month(2026, 11).start(PARIS))
    for m in (8, 9, 10):
        start, end = Month(2026, m).bounds(PARIS)
        used, over = ledger.month_totals(start, end)
        rounded = sum(-(-w.seconds // 900) * 900 for w in tickets[0].work
                      if start <= w.started_at < end)
        assert used + over == rounded


# -- SLA contracts ----------------------------------------------------------------------------


def _p0(key: str, late_hours: float, stopped: str) -> TicketUse:
    return ticket(key, "2026-10-01 09:00", priority="P0", indicators=(
        Indicator("resolution", "breached", at(stopped), (8 + late_hours) * 3600, 8 * 3600),
        Indicator("response", "met", at("2026-10-01 09:30"), 1800, 7200)))


@pytest.mark.parametrize("percent,credit", [(99.42, "120.00"), (98.9, "240.00"),
                                            (99.5, None), (99.99, None)])
def test_uptime_credit_notes(percent: float, credit: str | None) -> None:
    c = consumption(sla_contract(), [], OCT, PARIS, uptime=UptimeFigure(percent))
    amounts = [n["amount"] for n in c.credit_notes]
    assert amounts == ([Decimal(credit)] if credit else [])
    assert c.uptime_percent == percent


def test_two_p0_resolution_breaches() -> None:
    tickets = [_p0("P0-1", 1.5, "2026-10-02 12:00"), _p0("P0-2", 12.0, "2026-10-05 12:00"),
               _p0("P0-3", 3.0, "2026-09-20 12:00")]  # resolved in September: not now
    c = consumption(sla_contract(), tickets, OCT, PARIS, uptime=UptimeFigure(99.8))
    notes = [(n["ticket"], n["percent"], n["amount"]) for n in c.credit_notes]
    # 1.5 h late = 2 started hours × 2 % = 4 % of 2,400 € = 96 €; 12 h → 24 %, capped at 20 %.
    assert notes == [("P0-1", 4.0, Decimal("96.00")), ("P0-2", 20.0, Decimal("480.00"))]
    assert all(n["reason"] for n in c.credit_notes)
    comp = c.details["sla_compliance"]
    assert comp["resolution"]["breached"] == 2 and comp["resolution"]["percent"] == 0.0
    assert comp["response"] == {**comp["response"], "met": 3, "percent": 100.0}


def test_credit_note_reasons_follow_the_report_language() -> None:
    from tmabot.report.i18n import text_for

    c = consumption(sla_contract(), [_p0("P0-1", 1.5, "2026-10-02 12:00")], OCT, PARIS,
                    uptime=UptimeFigure(99.42))
    up, late = c.credit_notes
    fr, en = text_for("fr"), text_for("en")
    assert fr.credit_reason(up) == up["reason"] and "Disponibilité" in up["reason"]
    assert en.credit_reason(up) == ("Availability 99.42 % < 99.50 %: credit of 5.0 % of the "
                                    "monthly fee")
    assert en.credit_reason(late) == ("P0-1: P0 resolved 1.50 h late (2 started hour(s) × "
                                      "2.0 %, capped at 20.0 %)")
    assert "résolution" not in en.credit_note(late) and "€" in en.credit_note(late)


def test_credit_notes_are_rounded_half_up_to_the_cent() -> None:
    contract = ContractSettings(model="sla", start=date(2026, 1, 1), monthly_fee="1234.25",
                                uptime_credits=(UptimeCredit(below=99.5, percent=3),))
    c = consumption(contract, [], OCT, PARIS, uptime=UptimeFigure(99.0))
    assert c.credit_notes[0]["amount"] == Decimal("37.03")  # 37.0275 → 37.03


def test_json_shape_has_money_as_strings() -> None:
    c = consumption(sla_contract(), [_p0("P0-1", 1.5, "2026-10-02 12:00")], OCT, PARIS,
                    uptime=UptimeFigure(99.42))
    data = c.as_json()
    for key in ("model", "tickets_used", "tickets_included", "run_hours_used",
                "run_hours_included", "hours_used", "hours_balance", "overage_hours",
                "overage_amount", "uptime_percent", "credit_notes"):
        assert key in data
    assert data["overage_amount"] == "0.00"
    assert [n["amount"] for n in data["credit_notes"]] == ["120.00", "96.00"]


def test_month_helpers() -> None:
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2026, 1).previous() == Month(2025, 12)
    start, end = Month(2026, 10).bounds(PARIS)
    # The DST change on 25 Oct adds an hour to October.
    assert end.timestamp() - start.timestamp() == timedelta(days=31, hours=1).total_seconds()


def test_every_month_of_the_sample_agency_reconciles(tmp_path: Any) -> None:
    """Synced from the emulator: for each client-month, prepaid hours drawn + out of plan
    = the month's counted worklogs rounded up, to the second; forfait hours = the month's
    in-scope worklogs; every amount is a whole number of cents."""
    import os

    from tmabot.config import load_config
    from tmabot.demo import TOKEN_ENV, demo_config
    from tmabot.emulators.jira import JiraEmulator
    from tmabot.emulators.sample import build_sample_agency
    from tmabot.store import Store
    from tmabot.sync import sync
    from tmabot.tickets import evaluate, ticket_uses

    now = datetime(2026, 11, 25, 10, tzinfo=PARIS)
    agency = build_sample_agency(now)
    os.environ[TOKEN_ENV] = "sample-token"
    with JiraEmulator(agency.dataset, token="sample-token") as jira:
        cfg = tmp_path / "tmabot.toml"
        cfg.write_text(demo_config(agency, jira.url), encoding="utf-8")
        settings = load_config(cfg)
        store = Store(settings.agency.database_url)
        sync(settings, store)
    checked = 0
    for client in settings.clients:
        uses = ticket_uses(evaluate(store, settings, client, at=now))
        month = Month.of(client.contract.start)
        while month <= Month(2026, 11):
            c = consumption(client.contract, uses, month, PARIS)
            start, end = month.bounds(PARIS)
            counted = [w.seconds for t in uses if t.scope == "included" for w in t.work
                       if max(start, datetime.combine(client.contract.start,
                                                      datetime.min.time(), PARIS))
                       <= w.started_at < end]
            if client.contract.model == "credit_temps":
                unit = client.contract.rounding_minutes * 60
                rounded = sum(-(-s // unit) * unit for s in counted)
                assert round((c.hours_used + c.overage_hours) * 3600) == rounded, month
            else:
                assert round(c.hours_used * 3600) == sum(counted), month
                assert c.overage_hours <= c.hours_used
            assert c.overage_amount == c.overage_amount.quantize(Decimal("0.01"))
            for note in c.credit_notes:
                assert note["amount"] == note["amount"].quantize(Decimal("0.01"))
            checked += 1
            month = month.next()
    store.close()
    assert checked >= 15

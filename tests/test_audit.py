"""The maintenance audit: every checklist point and every signal, ok and not ok, with the
evidence; the rule of three criticals escalated once; the 1-5-15 debt view."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tmabot.audit import CHECKLIST, AuditInput, AuditTicket, audit

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)
DECLARABLE = ["A3", "A4", "A5", "B2", "B3", "B4", "B5", "C1", "C2", "C4", "D1", "D2", "D3",
              "D4", "E5", "E6", "E7", "E8"]


def t(key: str, category: str, *, created_days: float, resolved_days: float | None = None,
      title: str = "Ticket", labels: tuple[str, ...] = (), reporter: str | None = None,
      hours: float = 0.0) -> AuditTicket:
    created = NOW - timedelta(days=created_days)
    resolved = NOW - timedelta(days=resolved_days) if resolved_days is not None else None
    return AuditTicket(key, title, category, created, resolved, labels, reporter, hours,
                       "done" if resolved else "todo")


def healthy() -> AuditInput:
    tickets = [
        t("T-1", "correctif", created_days=5, resolved_days=4, reporter="client@acme.fr"),
        t("T-2", "preventif", created_days=40, resolved_days=38, title="Mise à jour WP"),
        t("T-3", "securite", created_days=20, resolved_days=19.5, title="npm audit mensuel"),
        t("T-4", "preventif", created_days=30, resolved_days=29, title="Test de restauration"),
        t("T-5", "securite", created_days=15, resolved_days=14.5, title="Correctif faille XSS"),
    ]
    return AuditInput(
        client_id="acme", now=NOW, tickets=tickets,
        facts={p: date(2026, 9, 1) for p in DECLARABLE}, tier="business", has_sla_terms=True,
        priorities_defined=True, uptime_source="uptimerobot", reports_sent=["2026-10"],
        has_recipients=True, staging_used=True, agency_domains=("agence.fr",),
        quote_tickets=1)


def point(result: dict[str, Any], pid: str) -> dict[str, Any]:
    return next(p for p in result["checklist"] if p["id"] == pid)


def signal(result: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in result["signals"] if s["id"] == sid)


def test_a_healthy_client_is_sufficient_and_quiet() -> None:
    result = audit(healthy())
    assert [p["id"] for p in result["checklist"]] == [c[0] for c in CHECKLIST]
    assert len(result["checklist"]) == 28 and len(result["signals"]) == 10
    assert all(p["status"] == "ok" for p in result["checklist"]), [
        (p["id"], p["status"], p["evidence"]) for p in result["checklist"]
        if p["status"] != "ok"]
    assert not any(s["active"] for s in result["signals"])
    assert result["verdict"] == "sufficient" and result["three_criticals"] is False
    assert all(p["evidence"] for p in result["checklist"])


@pytest.mark.parametrize("pid", DECLARABLE)
def test_declared_facts(pid: str) -> None:
    base = healthy()
    ok = point(audit(base), pid)
    assert ok["status"] == "ok" and "vérifié le 01/09/2026" in ok["evidence"]
    stale = point(audit(replace(base, facts={**base.facts, pid: date(2025, 10, 1)})), pid)
    assert stale["status"] == "due" and "à revérifier" in stale["evidence"]
    missing = point(audit(replace(base, facts={**base.facts, pid: False})), pid)
    assert missing["status"] == "ko" and "false" in missing["evidence"]
    facts = dict(base.facts)
    del facts[pid]
    unknown = point(audit(replace(base, facts=facts)), pid)
    assert unknown["status"] == "unknown"


def test_restore_tests_go_stale_after_three_months() -> None:
    base = healthy()
    old = [x for x in base.tickets if x.key != "T-4"] + [
        t("T-9", "preventif", created_days=150, resolved_days=140, title="Test de restauration")]
    got = point(audit(replace(base, tickets=old)), "C3")
    assert got["status"] == "due" and "T-9" in got["evidence"]
    by_label = [x for x in base.tickets if x.key != "T-4"] + [
        t("T-8", "preventif", created_days=150, resolved_days=140, title="Contrôle trimestriel",
          labels=("restauration",))]  # marked by its label only: the same rule when old
    got = point(audit(replace(base, tickets=by_label)), "C3")
    assert got["status"] == "due" and "T-8" in got["evidence"]
    none = [x for x in base.tickets if x.key != "T-4"]
    assert point(audit(replace(base, tickets=none)), "C3")["status"] == "unknown"
    declared = replace(base, tickets=none, facts={**base.facts, "C3": date(2026, 7, 1)})
    assert point(audit(declared), "C3")["status"] == "due"  # 3-month period, not 12
    assert point(audit(replace(base, tickets=none, facts={**base.facts, "C3": date(2026, 10,
                                                                                     1)})),
                 "C3")["status"] == "ok"


@pytest.mark.parametrize("pid,change,status,words", [
    ("E1", {"tickets": [t("T-2", "preventif", created_days=40, resolved_days=38)]}, "ko",
     "aucun ticket"),
    ("E2", {"priorities_defined": False}, "ko", "matrice"),
    ("E3", {"has_sla_terms": False}, "ko", "ni tier"),
    ("E4", {"reports_sent": []}, "due", "non envoyé"),
    ("E4", {"has_recipients": False}, "ko", "destinataire"),
    ("E9", {"out_of_scope_rules": False}, "ko", "hors périmètre"),
    ("D5", {"tickets": [t("T-1", "correctif", created_days=5)]}, "ko", "aucun ticket préventif"),
    ("A1", {"tickets": [t("T-1", "correctif", created_days=5)]}, "ko", "aucun audit"),
    ("A2", {"tickets": [t("T-3", "securite", created_days=20, resolved_days=10,
                          title="Faille XSS")]}, "ko", "au-delà de 72 h"),
    ("A2", {"tickets": []}, "unknown", "aucun ticket de sécurité"),
    ("B1", {"uptime_source": None}, "ko", "aucune source"),
])
def test_points_evidenced_by_data(pid: str, change: dict[str, Any], status: str,
                                  words: str) -> None:
    assert point(audit(healthy()), pid)["status"] == "ok"
    got = point(audit(replace(healthy(), **change)), pid)
    assert got["status"] == status and words in got["evidence"], got


def test_high_points_not_covered_get_a_30_day_due_date() -> None:
    base = healthy()
    facts = dict(base.facts)
    del facts["A3"]
    got = point(audit(replace(base, facts=facts)), "A3")
    assert got["due"] == "2026-12-25"
    assert point(audit(base), "A3")["due"] is None


@pytest.mark.parametrize("sid,change,words", [
    ("S1", {"tickets": [t(f"T-{i}", "correctif", created_days=3, reporter="pm@agence.fr")
                        for i in range(3)]}, "créées par l'agence"),
    ("S2", {"tickets": [t("T-2", "preventif", created_days=90, resolved_days=89)]},
     "0 ticket(s)"),
    ("S3", {"facts": {**healthy().facts, "D1": False}}, "staging déclaré absent"),
    ("S4", {"tickets": [t("T-1", "correctif", created_days=5)]}, "0 mise(s) à jour"),
    ("S5", {"tickets": [t("T-1", "correctif", created_days=5)]}, "C3 inconnu"),
    ("S6", {"uptime_source": None}, "aucune source"),
    ("S7", {"reports_sent": []}, "non envoyé"),
    ("S8", {"has_sla_terms": False}, "ni tier"),
    ("S9", {"facts": {**healthy().facts, "E5": False}}, "E5 ko"),
    ("S10", {"facts": {**healthy().facts, "B5": False}}, "B5 ko"),
])
def test_each_signal(sid: str, change: dict[str, Any], words: str) -> None:
    assert signal(audit(healthy()), sid)["active"] is False
    got = signal(audit(replace(healthy(), **change)), sid)
    assert got["active"] is True and words in got["reason"], got
    assert got["level"] in ("critical", "high", "medium")


def test_s1_counts_client_requests_not_the_agencys_own_maintenance() -> None:
    own = [t(f"M-{i}", "preventif", created_days=3, reporter="pm@agence.fr") for i in range(5)]
    asked = [t("B-1", "correctif", created_days=4, reporter="dsi@client.example")]
    asked += [t(f"B-{i}", "correctif", created_days=4, reporter="dsi@client.example")
              for i in range(2, 4)]
    got = signal(audit(replace(healthy(), tickets=own + asked)), "S1")
    assert got["active"] is False and got["reason"].startswith("0% des demandes du client"), got
    got = signal(audit(replace(healthy(), tickets=own + asked[:1])), "S1")
    assert got["active"] is False and "trop peu pour juger" in got["reason"], got
    typed = [t(f"B-{i}", "correctif", created_days=4, reporter="pm@agence.fr")
             for i in range(4, 10)]
    got = signal(audit(replace(healthy(), tickets=own + asked + typed)), "S1")
    assert got["active"] is True and "67%" in got["reason"] and "(9)" in got["reason"], got


def test_rule_of_three_criticals_and_verdict() -> None:
    base = healthy()
    bad = replace(base, tickets=[t("T-1", "correctif", created_days=5)],
                  facts={**base.facts, "D1": False})
    result = audit(bad)
    assert {s["id"] for s in result["signals"] if s["active"]} >= {"S3", "S4", "S5"}
    assert result["three_criticals"] is True and result["verdict"] == "insufficient"
    two = audit(replace(bad, facts=base.facts, staging_used=True))
    assert two["three_criticals"] is False


def test_debt_1_5_15() -> None:
    tickets = [t("N-1", "correctif", created_days=30, hours=2.0),          # < 6 months: 1 × 2
               t("N-2", "correctif", created_days=300),                     # 6–24 months: 5 × 1
               t("N-3", "evolutif_run", created_days=900, hours=3.0),       # > 2 years: 15 × 3
               t("N-4", "correctif", created_days=900, resolved_days=10)]   # resolved: none
    d = audit(replace(healthy(), tickets=tickets))["debt"]
    assert d["bands"]["lt_6m"] == {"tickets": 1, "weight": 2.0}
    assert d["bands"]["6m_2y"] == {"tickets": 1, "weight": 5.0}
    assert d["bands"]["gt_2y"] == {"tickets": 1, "weight": 45.0}
    assert d["weighted_total"] == 52.0
    assert len(d["trend"]) == 6 and d["trend"][-1]["weighted"] == 52.0
    # 1 June 2026: N-2 was 4.8 months old (×1), N-3 and N-4 just under 2 years (×5 × 3 h and
    # ×5 × 1 h; N-4 was still open then), N-1 did not exist: 1 + 15 + 5.
    assert d["trend"][0] == {"at": "2026-06-01", "weighted": 21.0}


def test_three_criticals_escalate_once_over_several_runs(tmp_path: Any,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    import json

    from tests.jira_data import TOKEN, build, write_config
    from tmabot.cli import main
    from tmabot.emulators.jira import JiraEmulator
    from tmabot.emulators.slack import SlackEmulator

    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_SLACK_TOKEN", "xoxb-audit")
    with JiraEmulator(build(10), token=TOKEN) as jira, \
            SlackEmulator(token="xoxb-audit", channels={"C0PM"}) as slack:
        cfg = write_config(tmp_path, jira.url)
        cfg.write_text(cfg.read_text() + f'''
[clients.facts]
D1 = false

[slack]
bot_token_env = "TEST_SLACK_TOKEN"
api_url = "{slack.api_url}"
pm_channel = "C0PM"
''')
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        capsys.readouterr()
        for _ in range(3):
            assert main(["audit", "--client", "acme", "--format", "json", "--config",
                         str(cfg), "--at", "2026-10-01T10:00:00+02:00"]) == 0
        result = json.loads(capsys.readouterr().out.split("\n}\n")[0] + "\n}")
        assert result["three_criticals"] is True and result["verdict"] == "insufficient"
        assert {"client", "signals", "three_criticals", "checklist", "verdict"} <= set(result)
        pm = slack.in_channel("C0PM")
        assert len(pm) == 1 and "Audit immédiat" in pm[0].text
        assert main(["audit", "--client", "acme", "--config", str(cfg), "--at",
                     "2026-10-01T10:00:00+02:00"]) == 0
        assert "AUDIT IMMÉDIAT" in capsys.readouterr().out
        assert len(slack.in_channel("C0PM")) == 1

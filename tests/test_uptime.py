"""Uptime from UptimeRobot (through the emulator, real HTTP) and from an incidents CSV, and
`tmabot consumption` end to end."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.errors import TrackerConfigError
from connectors.retry import RetryPolicy
from connectors.uptime import Outage, UptimeRobot, month_uptime, read_csv
from tests.jira_data import TOKEN, build, write_config
from tmabot.cli import main
from tmabot.emulators.jira import JiraEmulator
from tmabot.emulators.uptimerobot import Monitor, UptimeRobotEmulator
from tmabot.months import Month

PARIS = ZoneInfo("Europe/Paris")
NOV = Month(2026, 11)
START, END = NOV.bounds(PARIS)  # 30 days = 2,592,000 s


def test_uptime_from_down_periods_with_a_maintenance_window() -> None:
    downs = [Outage(START + timedelta(days=3), START + timedelta(days=3, seconds=15_034), "502"),
             Outage(START + timedelta(days=5, hours=2), START + timedelta(days=5, hours=3),
                    "maintenance"),
             Outage(START - timedelta(hours=2), START + timedelta(hours=1), "from October")]
    window = (START + timedelta(days=5, hours=1), START + timedelta(days=5, hours=4))
    got = month_uptime(downs, START, END, [window], PARIS)
    # Down 15,034 s + 3,600 s from the incident that began in October; the maintenance
    # hour is excluded from both the down time and the watched time (3 h window).
    watched = 2_592_000 - 3 * 3600
    assert got.percent == round(100 * (1 - (15_034 + 3600) / watched), 3)
    assert [i["reason"] for i in got.incidents] == ["from October", "502"]
    assert got.incidents[1]["minutes"] == 250.6


def test_incidents_csv(tmp_path: Path) -> None:
    path = tmp_path / "incidents.csv"
    path.write_text("start,end,reason\n2026-11-20T14:00:00,2026-11-20T14:18:00,Redémarrage\n"
                    "2026-11-25T10:00:00+00:00,2026-11-25T10:30:00+00:00,Panne DNS\n",
                    encoding="utf-8")
    outages = read_csv(path, PARIS)
    assert outages[0].start == datetime(2026, 11, 20, 14, tzinfo=PARIS)
    got = month_uptime(outages, START, END, [], PARIS)
    assert got.percent == round(100 * (1 - 48 * 60 / 2_592_000), 3)
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n", encoding="utf-8")
    with pytest.raises(TrackerConfigError, match="expected the columns start, end, reason"):
        read_csv(bad, PARIS)
    bad.write_text("start,end\n2026-11-20T14:00:00,2026-11-20T13:00:00\n", encoding="utf-8")
    with pytest.raises(TrackerConfigError, match="line 2: end is before start"):
        read_csv(bad, PARIS)


def test_uptimerobot_through_the_emulator() -> None:
    monitor = Monitor("777", "Site", "https://x.example", [
        (START + timedelta(days=2), START + timedelta(days=2, minutes=40), "HTTP 502"),
        (START - timedelta(days=40), START - timedelta(days=40, minutes=-5), "old")])
    with UptimeRobotEmulator([monitor], api_key="k-1") as emu:
        emu.inject(r"/v2/getMonitors", status=429, headers={"Retry-After": "0"}, times=1)
        robot = UptimeRobot(emu.base_url, "k-1", "777",
                            retry=RetryPolicy(max_attempts=3, base_delay=0.01))
        outages, provider = robot.outages(START, END)
        robot.close()
        assert [o.reason for o in outages] == ["HTTP 502"]
        assert provider == round(100 * (1 - 2400 / 2_592_000), 3)
        assert month_uptime(outages, START, END, [], PARIS).percent == provider
        form = emu.requests[-1].body.decode()
        assert "api_key=k-1" in form and "logs=1" in form and "custom_uptime_ranges" in form
        wrong = UptimeRobot(emu.base_url, "nope", "777")
        with pytest.raises(TrackerConfigError, match="api_key is invalid"):
            wrong.outages(START, END)
        wrong.close()
        missing = UptimeRobot(emu.base_url, "k-1", "999")
        with pytest.raises(TrackerConfigError, match="monitor 999 not found"):
            missing.outages(START, END)
        missing.close()


def _config_with(tmp_path: Path, url: str, extra: str) -> Path:
    cfg = write_config(tmp_path, url)
    text = cfg.read_text().replace('model = "forfait"', 'model = "sla"').replace(
        'tier = "business"', 'tier = "critique"')
    cfg.write_text(text + extra)
    return cfg


def test_consumption_command_json_table_and_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_UR_KEY", "k-2")
    monitor = Monitor("555", "Site", "https://x.example", [
        (datetime(2026, 9, 10, 12, tzinfo=PARIS),
         datetime(2026, 9, 10, 12, tzinfo=PARIS) + timedelta(seconds=15_034), "Erreur 502")])
    with JiraEmulator(build(12), token=TOKEN) as jira, \
            UptimeRobotEmulator([monitor], api_key="k-2") as robot:
        cfg = _config_with(tmp_path, jira.url, f'''
uptime_credits = [ {{ below = 99.5, percent = 5 }}, {{ below = 99.0, percent = 10 }} ]
monthly_fee = "2400.00"

[clients.uptime]
kind = "uptimerobot"
api_key_env = "TEST_UR_KEY"
monitor_id = "555"
url = "{robot.base_url}"
'''.replace('monthly_fee = "2400.00"\n', ""))
        cfg.write_text(cfg.read_text().replace('monthly_fee = "900.00"',
                                               'monthly_fee = "2400.00"'))
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        capsys.readouterr()
        assert main(["consumption", "--client", "acme", "--month", "2026-09", "--format",
                     "json", "--config", str(cfg)]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["model"] == "sla" and data["month"] == "2026-09"
        assert data["uptime_percent"] == 99.42
        assert data["credit_notes"][0]["amount"] == "120.00"
        assert data["tickets_used"] == 12 and data["tickets_included"] is None
        assert data["hours_used"] > 0 and data["overage_amount"] == "0.00"
        assert main(["consumption", "--client", "acme", "--month", "2026-09", "--config",
                     str(cfg)]) == 0
        table = capsys.readouterr().out
        assert "99,42 %" in table and "120,00" in table and "Avoir" in table
        assert main(["consumption", "--client", "acme", "--month", "2026-09", "--history",
                     "--format", "json", "--config", str(cfg)]) == 0
        history = json.loads(capsys.readouterr().out)
        assert [h["month"] for h in history][0] == "2025-10" and len(history) == 12
        assert history[-1]["uptime_percent"] == 99.42
        assert main(["consumption", "--client", "acme", "--month", "2026-13", "--config",
                     str(cfg)]) == 2


def test_consumption_without_uptime_source_and_a_bad_csv(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    with JiraEmulator(build(4), token=TOKEN) as jira:
        cfg = write_config(tmp_path, jira.url)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["consumption", "--client", "acme", "--month", "2026-09", "--format", "json",
                 "--config", str(cfg)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["uptime_percent"] is None and data["model"] == "forfait"
    assert (data["tickets_used"], data["tickets_included"]) == (4, 5)
    cfg.write_text(cfg.read_text() + '\n[clients.uptime]\nkind = "csv"\npath = "none.csv"\n')
    assert main(["consumption", "--client", "acme", "--month", "2026-09", "--config",
                 str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "none.csv" in err

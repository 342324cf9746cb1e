"""The command line: help texts, docs, exit codes, formats, logs without secrets, the demo."""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import re
from pathlib import Path

import pytest

from tests.jira_data import TOKEN, build, write_config
from tmabot.cli import build_parser, main
from tmabot.emulators.jira import JiraEmulator
from tmabot.tickets import Month, csv_safe, priority_level, resolution_at

REPO = Path(__file__).resolve().parents[1]


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    parser = build_parser()
    out: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((name, sub))
    return out


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    names = [name for name, _ in _commands()]
    assert {"check-config", "sync", "tickets", "db", "demo"} <= set(names)
    for name, sub in _commands():
        assert sub.description, f"{name} has no help text"
        assert f"tmabot {name}" in readme, f"`tmabot {name}` is not documented in README.md"


def test_readme_gives_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    demo_cmd, test_cmd = blocks[0].strip(), blocks[1].strip()
    assert "tmabot demo" in demo_cmd and "python3 -m venv" in demo_cmd
    assert "pytest" in test_cmd
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd in ci


@pytest.mark.parametrize("argv", [
    ["tickets", "--client", "acme", "--month", "2026-13"],
    ["tickets", "--client", "acme", "--at", "yesterday"],
    ["tickets", "--client", "acme", "--at", "2026-10-01T10:00:00"],  # no offset
    ["tickets", "--client", "nobody"],
])
def test_bad_usage_exits_2_with_one_line(argv: list[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    cfg = write_config(tmp_path, "http://127.0.0.1:9")
    assert main([*argv, "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_config_error_is_one_line_per_problem(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tmabot.toml"
    cfg.write_text('[agency]\nname = "X"\ntimezone = "Mars/Olympus"\nsurprise = 1\n')
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "agency.timezone" in err and "agency.surprise" in err
    assert "Traceback" not in err


def test_db_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    cfg = write_config(tmp_path, "http://127.0.0.1:9")
    assert main(["db", "upgrade", "--config", str(cfg)]) == 0
    assert "revision 0006" in capsys.readouterr().out


def test_unreachable_tracker_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    cfg = write_config(tmp_path, "http://127.0.0.1:9")  # nothing listens on port 9
    text = cfg.read_text().replace("max_retries = 4", "max_retries = 0")
    cfg.write_text(text)
    assert main(["sync", "--config", str(cfg), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "agency-jira" in err


def test_tickets_month_csv_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    ds = build(12)  # created every 3 h from 2026-09-01 08:00 UTC
    ds.issues[0].summary = "=HYPERLINK(\"http://evil\")"
    with JiraEmulator(ds, token=TOKEN) as emu:
        cfg = write_config(tmp_path, emu.url)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["tickets", "--client", "acme", "--month", "2026-09", "--format", "csv",
                 "--config", str(cfg)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 12
    assert rows[0]["title"].startswith("'=")  # no formula injection
    assert main(["tickets", "--client", "acme", "--month", "2026-08", "--format", "json",
                 "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["tickets", "--client", "acme", "--config", str(cfg),
                 "--at", "2026-09-01T16:00:00+02:00", "--format", "json"]) == 0
    assert [t["key"] for t in json.loads(capsys.readouterr().out)] == ["ACME-1", "ACME-2"]
    assert main(["tickets", "--client", "acme", "--config", str(cfg)]) == 0
    assert "ACME-12" in capsys.readouterr().out


def test_debug_logs_never_show_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    with JiraEmulator(build(30, many_worklogs={3}), token=TOKEN) as emu:
        emu.inject(r"/search/jql$", status=429, headers={"Retry-After": "0"}, times=1)
        cfg = write_config(tmp_path, emu.url)
        for fmt in ("text", "json"):
            assert main(["sync", "--full", "--config", str(cfg), "--quiet",
                         "--log-level", "debug", "--log-format", fmt]) == 0
    err = capfd.readouterr().err
    assert "search" in err  # the logs did speak
    basic = base64.b64encode(f"bot@agency.example:{TOKEN}".encode()).decode()
    for secret in (TOKEN, basic, TOKEN[:12]):
        assert secret not in err
    json_lines = [ln for ln in err.splitlines() if ln.startswith("{")]
    assert json_lines and all(json.loads(ln)["level"] for ln in json_lines)


def test_demo_runs_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Synchronisation complète" in text and "Boulangerie" in text
    for client in ("boulangerie-lemoine", "librairie-des-ecluses", "azur-evasion"):
        items = json.loads((out / f"tickets-{client}.json").read_text(encoding="utf-8"))
        assert len(items) > 50
        if client == "azur-evasion":  # the sample client the demo runs on Linear
            assert {i["source"] for i in items} == {"linear"}
            assert all(i["url"].startswith("https://linear.app/") for i in items)
            timed = [i for i in items if i["time_source"] == "timesheet"]
            assert len(timed) > 100 and sum(i["time_spent_hours"] for i in timed) > 100
        else:
            assert all(i["url"].startswith("http://127.0.0.1:") for i in items)
            assert {i["source"] for i in items} == {"jira"}
    assert "Linear n'a pas de worklogs" in text and "réimport : 0 nouvelle entrée" in text
    sla = json.loads(next(out.glob("consumption-azur-evasion-*.json")).read_text())
    assert (sla["model"], sla["uptime_percent"]) == ("sla", 99.42)
    assert [n["amount"] for n in sla["credit_notes"] if n["kind"] == "uptime"] == ["120.00"]
    prepaid = json.loads(next(out.glob("consumption-librairie-des-ecluses-*.json")).read_text())
    assert prepaid["model"] == "credit_temps" and prepaid["hours_balance"] is not None
    for client in ("boulangerie-lemoine", "librairie-des-ecluses", "azur-evasion"):
        for ext in ("html", "pdf", "md", "json", "eml"):
            assert len(list((out / "rapports").glob(f"{client}-*.{ext}"))) == 1, (client, ext)
    neglected = json.loads((out / "audit-domaine-des-vignes.json").read_text())
    assert neglected["three_criticals"] is True and neglected["verdict"] == "insufficient"
    kept = json.loads((out / "audit-cabinet-martin.json").read_text())
    assert kept["three_criticals"] is False and kept["verdict"] == "sufficient", [
        (p["id"], p["status"], p["evidence"]) for p in kept["checklist"]
        if p["status"] != "ok"]
    assert "Audit immédiat" in (out / "slack" / "C0PMAGENCE.txt").read_text(encoding="utf-8")
    transcripts = list((out / "slack").glob("*.txt"))
    assert len(transcripts) >= 4  # three client channels and the PM channel at least
    slack_text = "\n".join(p.read_text(encoding="utf-8") for p in transcripts)
    assert "Rapport de maintenance" in slack_text and "<!channel>" not in slack_text
    fixed = json.loads(next(out.glob("consumption-boulangerie-lemoine-*.json")).read_text())
    assert fixed["model"] == "forfait" and fixed["tickets_included"] == 2
    assert (out / "tmabot.toml").exists() and (out / "tmabot.db").exists()
    assert main(["demo", "--out", str(out), "--quiet"]) == 0  # rerunnable


# -- small pure helpers ----------------------------------------------------------------
@pytest.mark.parametrize("value,expected", [
    ("=1+1", "'=1+1"), ("+33 6", "'+33 6"), ("-x", "'-x"), ("@SUM", "'@SUM"),
    ("\tx", "'\tx"), ("ok", "ok"), (None, ""), (1.5, "1.5"),
])
def test_csv_safe(value: object, expected: str) -> None:
    assert csv_safe(value) == expected


@pytest.mark.parametrize("name,expected", [
    ("Highest", ("P0", True)), ("high", ("P1", True)), ("Major", ("P2", True)),
    ("Trivial", ("P3", True)), ("Whatever", ("P3", False)), (None, ("P3", False)),
])
def test_priority_level(name: str | None, expected: tuple[str, bool]) -> None:
    mapping = {"Highest": "P0", "High": "P1", "Major": "P2", "Trivial": "P3"}
    assert priority_level(name, mapping) == expected


def test_resolution_is_the_last_entry_into_done() -> None:
    from datetime import UTC, datetime

    def t(h: int, frm: str, to: str) -> dict[str, object]:
        return {"at": datetime(2026, 10, 1, h, tzinfo=UTC), "from_category": frm,
                "to_category": to}

    hist = [t(9, "todo", "in_progress"), t(10, "in_progress", "done"),
            t(11, "done", "in_progress"), t(12, "in_progress", "done"), t(13, "done", "done")]
    assert resolution_at(hist, "done") == datetime(2026, 10, 1, 12, tzinfo=UTC)
    assert resolution_at(hist[:3], "in_progress") is None


def test_month_parse_and_bounds() -> None:
    from zoneinfo import ZoneInfo

    m = Month.parse("2026-10")
    start, end = m.bounds(ZoneInfo("Europe/Paris"))
    assert start.isoformat() == "2026-10-01T00:00:00+02:00"
    assert end.isoformat() == "2026-11-01T00:00:00+01:00"
    with pytest.raises(ValueError):
        Month.parse("2026-1x")

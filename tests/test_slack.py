"""Slack through the emulator with the real WebClient and Bolt App: nudges once per level
(two runs, two processes on PostgreSQL), business-hours gating, escaping, splitting, 429s,
the digest, the `/tma` command with signatures and channel isolation, the buttons."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from slack_bolt.request import BoltRequest

from tests.jira_data import STATUSES, TOKEN
from tmabot.cli import main
from tmabot.config import load_config
from tmabot.emulators.dataset import JiraDataset, JiraIssue, JiraProject, JiraUser
from tmabot.emulators.jira import JiraEmulator
from tmabot.emulators.slack import SlackEmulator
from tmabot.notify.slack import Poster, escape, section, web_client
from tmabot.notify.slack_app import create_app
from tmabot.store import Store

PARIS = ZoneInfo("Europe/Paris")
BOT = "xoxb-test-bot-token"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
EVIL = "<!channel> urgent <!here> <@U123> <http://evil.example|click> & co"
CORPUS = ("<!channel>", "<!here>", "<@U123>", "<http://evil", "<!everyone>")


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=PARIS)


def _dataset() -> JiraDataset:
    ds = JiraDataset(statuses=list(STATUSES), user_time_zone="Europe/Paris")
    ds.projects = [JiraProject("10000", "ACME", "ACME")]
    ds.users = [JiraUser("acc-lea", "lea", "Léa Martin", "lea@agence.fr")]
    # P2 created Wednesday 13:30: 20.5 of its 24 business hours used by Friday 18:00.
    ds.issues.append(JiraIssue(id="30001", key="ACME-1", project_key="ACME", summary=EVIL,
                               issue_type="Bug", status_id="1", created=at("2026-11-18 13:30"),
                               updated=at("2026-11-18 13:30"), priority="Medium",
                               labels=["bug"], assignee_id="acc-lea"))
    # P1 created Friday 09:00: 8 business hours to respond, breached by Monday 09:00.
    ds.issues.append(JiraIssue(id="30002", key="ACME-2", project_key="ACME",
                               summary="Paiement refusé", issue_type="Bug", status_id="1",
                               created=at("2026-11-20 09:00"), updated=at("2026-11-20 09:00"),
                               priority="High", labels=["bug"]))
    return ds


def _config(tmp: Path, jira_url: str, slack_url: str, db: str | None = None) -> Path:
    cfg = tmp / "tmabot.toml"
    cfg.write_text(f"""
[agency]
name = "Agence Test"
timezone = "Europe/Paris"
database_url = "{db or 'sqlite:///' + str(tmp / 'tmabot.db')}"

[sla]
pause_statuses = ["En attente client"]

[trackers.agency-jira]
kind = "jira"
url = "{jira_url}"
deployment = "cloud"
email = "bot@agency.example"
token_env = "TEST_JIRA_TOKEN"

[[clients]]
id = "acme"
name = "ACME & Fils"
tracker = "agency-jira"
projects = ["ACME"]
slack_channel = "C0ACME"

[clients.contract]
model = "forfait"
tier = "business"
start = "2026-01-01"

[[clients]]
id = "globex"
name = "Globex"
tracker = "agency-jira"
projects = ["GLX"]
slack_channel = "C0GLOBEX"

[clients.contract]
model = "forfait"
tier = "business"
start = "2026-01-01"

[slack]
bot_token_env = "TEST_SLACK_TOKEN"
signing_secret_env = "TEST_SLACK_SECRET"
api_url = "{slack_url}"
pm_channel = "C0PM"
""", encoding="utf-8")
    return cfg


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_SLACK_TOKEN", BOT)
    monkeypatch.setenv("TEST_SLACK_SECRET", SECRET)
    ds = _dataset()
    ds.projects.append(JiraProject("10001", "GLX", "Globex"))
    with JiraEmulator(ds, token=TOKEN) as jira, \
            SlackEmulator(token=BOT, channels={"C0ACME", "C0GLOBEX", "C0PM"},
                          users={"lea@agence.fr": "U0LEA"}) as slack:
        cfg = _config(tmp_path, jira.url, slack.api_url)
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        yield cfg, slack


def _all_text(slack: SlackEmulator) -> str:
    return json.dumps([(m.text, m.blocks) for m in slack.messages], ensure_ascii=False)


def test_nudges_wait_for_business_hours_and_go_out_once(env: Any,
                                                        capsys: pytest.CaptureFixture) -> None:
    cfg, slack = env
    # Friday 18:30: the P2 is at risk (20.5 of 24 bh) but the agency is closed.
    assert main(["nudge", "--config", str(cfg), "--at", "2026-11-20T18:30:00+01:00"]) == 0
    assert slack.method_calls("chat.postMessage") == []
    assert "hors heures ouvrées" in capsys.readouterr().out
    # Monday 09:00: posted — the P2 at risk, the P1 breached (8 bh since Friday 09:00).
    assert main(["nudge", "--config", str(cfg), "--at", "2026-11-23T09:00:00+01:00"]) == 0
    channel = slack.in_channel("C0ACME")
    assert len(channel) == 2
    assert sorted(m.text.split(" ")[0] for m in channel) == ["En", "À"]
    # The P2's deadline in French: 24 bh from Wednesday 13:30 end Monday 12:30.
    assert "échéance lun. 23 nov. 12:30)" in _all_text(slack)
    dms = [m for m in slack.messages if m.channel.startswith("D")]
    assert len(dms) == 1 and dms[0].channel == "D0LEA"  # ACME-1's assignee
    assert "<@U0LEA>" in channel[0].blocks[0]["text"]["text"] + channel[1].blocks[0]["text"][
        "text"]
    # Again: nothing new (at most once per ticket, indicator and level).
    posted = len(slack.messages)
    assert main(["nudge", "--config", str(cfg), "--at", "2026-11-23T09:30:00+01:00"]) == 0
    assert len(slack.messages) == posted
    # Tuesday: ACME-1 crossed into "breached": a new level, a new nudge.
    assert main(["nudge", "--config", str(cfg), "--at", "2026-11-24T09:00:00+01:00"]) == 0
    assert len(slack.in_channel("C0ACME")) == 3
    assert slack.in_channel("C0GLOBEX") == []  # one client's tickets never reach another's


def test_ticket_text_never_pings_or_links(env: Any) -> None:
    cfg, slack = env
    assert main(["nudge", "--config", str(cfg), "--at", "2026-11-23T09:00:00+01:00"]) == 0
    assert main(["digest", "--config", str(cfg), "--at", "2026-11-23T09:05:00+01:00"]) == 0
    text = _all_text(slack)
    for bad in CORPUS:
        assert bad not in text, bad
    assert "&lt;!channel&gt; urgent &lt;!here&gt; &lt;@U123&gt;" in text
    assert "&amp; co" in text and "ACME &amp; Fils" in text
    assert escape("a & <b>") == "a &amp; &lt;b&gt;"


def test_fifty_one_items_are_split_into_valid_messages(env: Any) -> None:
    _cfg, slack = env
    poster = Poster(web_client(load_config(_cfg)))
    blocks = [section(f"ligne {i}") for i in range(51)]
    ts = poster.post("C0PM", "liste", blocks)
    assert len(ts) == 2
    sizes = [len(m.blocks) for m in slack.in_channel("C0PM")]
    assert sizes == [50, 1]
    assert [m.text for m in slack.in_channel("C0PM")] == ["liste (1/2)", "liste (2/2)"]


def test_429_is_retried(env: Any) -> None:
    cfg, slack = env
    slack.inject(r"/api/chat.postMessage", status=429, headers={"Retry-After": "0"},
                 body={"ok": False, "error": "ratelimited"}, times=2)
    assert main(["nudge", "--config", str(cfg), "--at", "2026-11-23T09:00:00+01:00"]) == 0
    assert len(slack.in_channel("C0ACME")) == 2
    assert sum(1 for r in slack.requests if r.status == 429) == 2


def test_digest_is_posted_once_a_day(env: Any, capsys: pytest.CaptureFixture) -> None:
    cfg, slack = env
    assert main(["digest", "--config", str(cfg), "--at", "2026-11-23T09:00:00+01:00"]) == 0
    assert main(["digest", "--config", str(cfg), "--at", "2026-11-23T12:00:00+01:00"]) == 0
    assert "already posted" in capsys.readouterr().out
    pm = slack.in_channel("C0PM")
    assert len(pm) == 1 and pm[0].blocks[0]["type"] == "header"
    body = _all_text(slack)
    assert "ACME &amp; Fils" in body and "Globex" in body and "ouvert(s)" in body
    assert "Forfait : 2/5 tickets, Run 0,00 h / 2,00 h" in body  # one unit, French commas
    assert main(["digest", "--weekly", "--config", str(cfg), "--at",
                 "2026-11-23T09:00:00+01:00"]) == 0
    assert "Cette semaine" in _all_text(slack)


# -- the Bolt app ------------------------------------------------------------------------------


def _signed(body: str, *, secret: str = SECRET, ts: int | None = None) -> dict[str, Any]:
    stamp = str(ts if ts is not None else int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(),
                           hashlib.sha256).hexdigest()
    return {"content-type": ["application/x-www-form-urlencoded"],
            "x-slack-request-timestamp": [stamp], "x-slack-signature": [sig]}


def _app(env: Any, now: datetime) -> tuple[Any, SlackEmulator]:
    cfg, slack = env
    settings = load_config(cfg)
    app = create_app(settings, lambda: Store(settings.agency.database_url),
                     client=web_client(settings), signing_secret=SECRET, now=lambda: now)
    return app, slack


def _command(app: Any, slack: SlackEmulator, text: str, channel: str, **kw: Any) -> Any:
    body = urlencode({"token": "x", "team_id": "T0AGENCE", "channel_id": channel,
                      "user_id": "U0LEA", "command": "/tma", "text": text,
                      "response_url": slack.response_url("r1"), "trigger_id": "1.2.3"})
    return app.dispatch(BoltRequest(body=body, headers=_signed(body, **kw)))


def test_forged_or_stale_signatures_get_401(env: Any) -> None:
    app, slack = _app(env, at("2026-11-23 10:00"))
    assert _command(app, slack, "help", "C0ACME", secret="wrong").status == 401
    assert _command(app, slack, "help", "C0ACME", ts=int(time.time()) - 600).status == 401
    helped = _command(app, slack, "help", "C0ACME")
    assert helped.status == 200
    text = json.loads(helped.body)["text"]  # a bare "<" is Slack markup: our own text too
    assert "/tma status &lt;client&gt;" in text and "<client>" not in text


def test_tma_status_shows_the_channels_client_and_refuses_others(env: Any) -> None:
    app, slack = _app(env, at("2026-11-23 10:00"))
    resp = _command(app, slack, "status acme", "C0ACME")
    assert resp.status == 200
    for _ in range(50):  # the figures come after the ack, through response_url
        replies = slack.method_calls("response_url:r1")
        if replies:
            break
        time.sleep(0.05)
    assert replies and replies[0]["response_type"] == "ephemeral"
    assert "ACME &amp; Fils" in replies[0]["text"] and "2 ticket(s) ouvert(s)" in replies[0][
        "text"]
    assert "en retard. Ce mois-ci" in replies[0]["text"]  # French hours: "0,00 h"
    assert "0,00 h" in replies[0]["text"]
    refused = _command(app, slack, "status globex", "C0ACME")
    assert refused.status == 200
    body = json.loads(refused.body)
    assert body["response_type"] == "ephemeral" and "Globex" not in refused.body
    assert "montre que ses tickets" in body["text"]
    unknown = _command(app, slack, "status nope", "C0RANDOM")
    assert "Client inconnu" in json.loads(unknown.body)["text"]
    assert "`acme`" in json.loads(unknown.body)["text"]  # outside client channels: the list
    tickets = _command(app, slack, "tickets acme at-risk", "C0ACME")
    assert tickets.status == 200
    for _ in range(50):
        replies = slack.method_calls("response_url:r1")
        if len(replies) >= 2:
            break
        time.sleep(0.05)
    listing = json.dumps(replies[-1]["blocks"], ensure_ascii=False)
    assert "ACME &amp; Fils* — 2 ticket(s) à risque" in replies[-1]["text"]
    assert "*ACME-1*" in listing and "*ACME-2*" in listing and "<!channel>" not in listing


def test_take_and_snooze_buttons(env: Any) -> None:
    cfg, slack = env
    assert main(["nudge", "--config", str(cfg), "--at", "2026-11-23T09:00:00+01:00"]) == 0
    message = slack.in_channel("C0ACME")[0]
    app, _ = _app(env, at("2026-11-23 09:10"))
    action = next(e for e in message.blocks[1]["elements"] if e["action_id"] == "tma_take")
    payload = {"type": "block_actions", "user": {"id": "U0LEA"},
               "channel": {"id": "C0ACME"}, "team": {"id": "T0AGENCE"},
               "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
               "response_url": slack.response_url("r2"), "trigger_id": "1.2.3",
               "actions": [{**action, "type": "button", "block_id": "b1",
                            "action_ts": "1.1"}]}
    body = urlencode({"payload": json.dumps(payload)})
    assert app.dispatch(BoltRequest(body=body, headers=_signed(body))).status == 200
    for _ in range(50):
        if message.updated:
            break
        time.sleep(0.05)
    assert message.updated == 1
    assert "Pris en charge par <@U0LEA>" in json.dumps(message.blocks, ensure_ascii=False)
    assert all(b["type"] != "actions" for b in message.blocks)
    settings = load_config(cfg)
    store = Store(settings.agency.database_url)
    taken = [r for r in store.nudges_sent("acme") if r["taken_by"]]
    store.close()
    assert len(taken) == 1 and taken[0]["taken_by"] == "U0LEA"
    snooze = next(e for e in slack.in_channel("C0ACME")[1].blocks[1]["elements"]
                  if e["action_id"] == "tma_snooze")
    payload["actions"] = [{**snooze, "type": "button", "block_id": "b1", "action_ts": "1.1"}]
    body = urlencode({"payload": json.dumps(payload)})
    assert app.dispatch(BoltRequest(body=body, headers=_signed(body))).status == 200
    for _ in range(50):
        if slack.method_calls("chat.scheduleMessage"):
            break
        time.sleep(0.05)
    scheduled = slack.method_calls("chat.scheduleMessage")
    assert scheduled and int(scheduled[0]["post_at"]) == int(
        (at("2026-11-23 09:10") + timedelta(hours=1)).timestamp())


# -- two processes at once on PostgreSQL ------------------------------------------------------


def test_two_concurrent_processes_post_each_nudge_once(tmp_path: Path, db_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the concurrency check runs on PostgreSQL")
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_SLACK_TOKEN", BOT)
    monkeypatch.setenv("TEST_SLACK_SECRET", SECRET)
    with JiraEmulator(_dataset(), token=TOKEN) as jira, \
            SlackEmulator(token=BOT, channels={"C0ACME", "C0GLOBEX", "C0PM"},
                          users={"lea@agence.fr": "U0LEA"}) as slack:
        cfg = _config(tmp_path, jira.url, slack.api_url, db=db_url)
        text = cfg.read_text().replace('projects = ["GLX"]', 'projects = ["ACME2"]')
        cfg.write_text(text)
        jira.dataset.projects.append(JiraProject("10002", "ACME2", "vide"))
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        cmd = [sys.executable, "-m", "tmabot", "nudge", "--config", str(cfg), "--at",
               "2026-11-23T09:00:00+01:00"]
        envs = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        procs = [subprocess.Popen(cmd, env=envs, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert len(slack.in_channel("C0ACME")) == 2  # not 4


def test_a_sent_report_is_posted_once_with_its_gauge(env: Any, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    from tests.mail import Inbox, email_toml, free_port

    cfg, slack = env
    inbox = Inbox()
    port = free_port()
    text = cfg.read_text().replace('slack_channel = "C0ACME"',
                                   'slack_channel = "C0ACME"\nreport_recipients = '
                                   '["dsi@acme.example"]')
    cfg.write_text(text + email_toml(port))
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        args = ["report", "--client", "acme", "--month", "2026-11", "--format", "json",
                "--out", str(tmp_path), "--send", "--config", str(cfg),
                "--at", "2026-11-30T20:00:00+01:00"]
        assert main(args) == 0
        assert main(args) == 0
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    files = [m for m in slack.in_channel("C0ACME") if m.kind == "file"]
    assert len(files) == 1 and files[0].files[0]["size"] > 1000
    assert "Rapport de maintenance — ACME &amp; Fils — novembre 2026" in files[0].text
    assert slack.uploads[files[0].files[0]["id"]].startswith(b"\x89PNG")


def test_slack_serve_answers_over_http(env: Any) -> None:
    import requests

    from tests.mail import free_port

    cfg, slack = env
    port = free_port()
    envs = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "tmabot", "slack", "serve", "--port",
                             str(port), "--config", str(cfg)], env=envs,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        body = urlencode({"command": "/tma", "text": "help", "channel_id": "C0ACME",
                          "user_id": "U0LEA", "team_id": "T0AGENCE",
                          "response_url": slack.response_url("r3"), "trigger_id": "1"})
        headers = {k: v[0] for k, v in _signed(body).items()}
        for _ in range(100):
            try:
                resp = requests.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                                     headers=headers, timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert resp.status_code == 200 and "/tma status" in resp.json()["text"]
        forged = requests.post(f"http://127.0.0.1:{port}/slack/events", data=body,
                               headers={**headers, "x-slack-signature": "v0=00"}, timeout=5)
        assert forged.status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipes


def test_a_p0_breach_escalates_to_the_pm_channel_at_any_hour(env: Any) -> None:
    from tmabot.notify.slack import Nudge, _post_nudge

    cfg, slack = env
    settings = load_config(cfg)
    poster = Poster(web_client(settings))
    n = Nudge("acme", "ACME & Fils", "C0ACME", "ACME-9", "Site en panne <!here>",
              "http://x.example/browse/ACME-9", "P0", "response", "breached", None, 2.0, 3.5,
              "lea@agence.fr", True)
    _post_nudge(settings, poster, n)
    pm = slack.in_channel("C0PM")
    assert len(pm) == 1 and "Escalade P0" in pm[0].text and "<!here>" not in pm[0].text
    assert len(slack.in_channel("C0ACME")) == 1
    assert slack.in_channel("C0ACME")[0].blocks[1]["elements"][2]["url"].endswith("ACME-9")


def test_a_p0_on_a_24_7_clock_is_nudged_at_night_and_nothing_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Saturday 03:30: the Critique client's P0 (24/7, 2 h to respond) is breached and goes
    out at once, escalated; a breached P1 on business hours waits for Monday."""
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_SLACK_TOKEN", BOT)
    monkeypatch.setenv("TEST_SLACK_SECRET", SECRET)
    ds = _dataset()
    ds.projects.append(JiraProject("10001", "GLX", "Globex"))
    ds.issues.append(JiraIssue(id="40001", key="GLX-1", project_key="GLX",
                               summary="Site hors ligne", issue_type="Incident", status_id="1",
                               created=at("2026-11-21 01:00"), updated=at("2026-11-21 01:00"),
                               priority="Highest", assignee_id="acc-lea"))
    with JiraEmulator(ds, token=TOKEN) as jira, \
            SlackEmulator(token=BOT, channels={"C0ACME", "C0GLOBEX", "C0PM"},
                          users={"lea@agence.fr": "U0LEA"}) as slack:
        cfg = _config(tmp_path, jira.url, slack.api_url)
        text = cfg.read_text(encoding="utf-8")
        globex = text.index('id = "globex"')
        cfg.write_text(text[:globex] + text[globex:].replace('tier = "business"',
                                                             'tier = "critique"', 1),
                       encoding="utf-8")
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
        # 02:30: 1.5 of 2 h used — at risk, and posted at night (24/7).
        assert main(["nudge", "--config", str(cfg), "--at", "2026-11-21T02:30:00+01:00"]) == 0
        assert [m.text.split(" ")[0] for m in slack.in_channel("C0GLOBEX")] == ["À"]
        assert slack.in_channel("C0PM") == []  # at risk: no escalation yet
        # 03:30: breached — a new level, escalated to the PM channel.
        assert main(["nudge", "--config", str(cfg), "--at", "2026-11-21T03:30:00+01:00"]) == 0
        assert len(slack.in_channel("C0GLOBEX")) == 2
        pm = slack.in_channel("C0PM")
        assert len(pm) == 1 and "GLX-1" in pm[0].text and "Escalade P0" in pm[0].text
        # ACME's P1 (breached Friday 18:00) and P2 wait for business hours.
        assert slack.in_channel("C0ACME") == []
        assert main(["nudge", "--config", str(cfg), "--at", "2026-11-23T09:00:00+01:00"]) == 0
        assert len(slack.in_channel("C0ACME")) == 2
        assert len(slack.in_channel("C0GLOBEX")) == 2  # nothing new for the P0


def test_a_nudge_is_recorded_only_if_someone_got_it_and_then_never_reposted(
        env: Any) -> None:
    from tmabot.notify.slack import Nudge, SlackError, _post_nudge

    cfg, slack = env
    settings = load_config(cfg)
    poster = Poster(web_client(settings))
    # No channel and the DM fails: nobody has it, so it is an error (the claim is released).
    slack.inject(r"/api/conversations\.open", status=200,
                 body={"ok": False, "error": "cannot_dm_bot"})
    lonely = Nudge("acme", "ACME & Fils", None, "ACME-7", "Lien mort",
                   "http://x.example/browse/ACME-7", "P2", "delivery", "at_risk", None, 40.0,
                   31.0, "lea@agence.fr", False)
    with pytest.raises(SlackError, match="cannot_dm_bot"):
        _post_nudge(settings, poster, lonely)
    assert slack.messages == []
    # The client channel has it and the P0 escalation fails (the PM channel is gone): no
    # error, so the ledger records it and the next run does not post to the client again.
    gone = settings.model_copy(update={"slack": settings.slack.model_copy(
        update={"pm_channel": "C0GONE"})})
    p0 = Nudge("acme", "ACME & Fils", "C0ACME", "ACME-9", "Site en panne",
               "http://x.example/browse/ACME-9", "P0", "response", "breached", None, 2.0, 3.5,
               None, False)
    assert _post_nudge(gone, poster, p0) is not None
    assert len(slack.in_channel("C0ACME")) == 1 and slack.in_channel("C0PM") == []

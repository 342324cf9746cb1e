"""`tmabot run`: catch-up, one leader, health and metrics over HTTP, webhooks, SIGTERM,
and a secret canary through everything."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.jira_data import TOKEN, build, write_config
from tests.mail import Inbox, email_toml, free_port
from tmabot.cli import main
from tmabot.emulators.jira import JiraEmulator
from tmabot.scheduler import Leadership

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _with_email(cfg: Path, port: int, start: str = "2026-10-01") -> Path:
    text = cfg.read_text().replace('start = "2026-01-01"', f'start = "{start}"').replace(
        'projects = ["ACME"]', 'projects = ["ACME"]\nreport_recipients = ["dsi@acme.example"]')
    cfg.write_text(text + email_toml(port))
    return cfg


def test_catch_up_sends_exactly_the_missed_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from aiosmtpd.controller import Controller

    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with JiraEmulator(build(6), token=TOKEN) as jira:
            cfg = _with_email(write_config(tmp_path, jira.url), port)
            # October's report was due on the 2nd business day of November (Tue 3 Nov,
            # 10:00); the scheduler was down until Thursday.
            at = "2026-11-05T10:00:00+01:00"
            assert main(["run", "--once", "--at", at, "--config", str(cfg)]) == 0
            out = capsys.readouterr().out
            assert "reports: 1 report(s) sent (acme 2026-10)" in out
            assert "sync:" in out
            assert main(["run", "--once", "--at", at, "--config", str(cfg)]) == 0
            assert "reports" not in capsys.readouterr().out  # nothing due any more
            # Before the due instant, nothing goes out.
            before = tmp_path / "b"
            before.mkdir()
            cfg2 = _with_email(write_config(before, jira.url), port)
            assert main(["run", "--once", "--at", "2026-11-03T09:59:00+01:00",
                         "--config", str(cfg2)]) == 0
            assert "reports" not in capsys.readouterr().out
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


def test_only_the_leader_runs(tmp_path: Path, db_url: str,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    with JiraEmulator(build(3), token=TOKEN) as jira:
        cfg = write_config(tmp_path, jira.url, db=db_url)
        assert main(["db", "upgrade", "--config", str(cfg)]) == 0
        holder = Leadership(db_url)
        assert holder.acquire()
        try:
            result = subprocess.run([sys.executable, "-m", "tmabot", "run", "--once",
                                     "--config", str(cfg)], env=_env(), capture_output=True,
                                    text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip().splitlines() == [
                "tmabot: another tmabot run is the leader: nothing to do here"]
            assert jira.count() == 0
        finally:
            holder.release()
        result = subprocess.run([sys.executable, "-m", "tmabot", "run", "--once", "--config",
                                 str(cfg)], env=_env(), capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0 and "sync:" in result.stdout
        assert jira.count() > 0


def _start_run(cfg: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tmabot", "run", "--http-port", "0",
                             "--tick-seconds", "0.5", "--config", str(cfg), *extra],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("http://127.0.0.1:"), line
    return proc, line.rsplit("/", 1)[0]


def test_healthz_metrics_webhooks_and_sigterm(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_LINEAR_HOOK", "linear-hook-secret")
    monkeypatch.setenv("TEST_JIRA_HOOK", "jira-hook-secret")
    with JiraEmulator(build(4), token=TOKEN) as jira:
        cfg = write_config(tmp_path, jira.url)
        cfg.write_text(cfg.read_text() + '\n[webhooks]\nlinear_secret_env = "TEST_LINEAR_HOOK"'
                       '\njira_secret_env = "TEST_JIRA_HOOK"\n')
        proc, base = _start_run(cfg)
        try:
            for _ in range(100):
                try:
                    health = requests.get(f"{base}/healthz", timeout=5)
                    if health.json()["jobs"].get("sync"):
                        break
                except requests.ConnectionError:
                    pass
                time.sleep(0.1)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert health.json()["jobs"]["sync"]
            metrics = requests.get(f"{base}/metrics", timeout=5).text
            assert "tmabot_job_runs_total" in metrics and 'job="sync"' in metrics
            assert all(line.startswith(("#", "tmabot_")) for line in metrics.splitlines()
                       if line)
            # Jira webhook: the shared secret.
            payload = json.dumps({"issue": {"key": "ACME-2", "fields": {"project": {
                "key": "ACME"}}}}).encode()
            bad = requests.post(f"{base}/webhooks/jira", data=payload, timeout=5,
                                headers={"X-Tmabot-Webhook-Secret": "nope"})
            assert bad.status_code == 401
            good = requests.post(f"{base}/webhooks/jira?secret=jira-hook-secret",
                                 data=payload, timeout=5)
            assert good.status_code == 202 and "acme" in good.text
            # Linear webhook: HMAC of the raw body, fresh timestamp.
            body = json.dumps({"action": "update", "type": "Issue", "data": {
                "identifier": "ACME-1", "team": {"key": "ACME"}},
                "webhookTimestamp": int(time.time() * 1000)}).encode()
            sig = hmac.new(b"linear-hook-secret", body, hashlib.sha256).hexdigest()
            assert requests.post(f"{base}/webhooks/linear", data=body, timeout=5,
                                 headers={"linear-signature": sig}).status_code == 202
            assert requests.post(f"{base}/webhooks/linear", data=body, timeout=5,
                                 headers={"linear-signature": "0" * 64}).status_code == 401
            stale = json.dumps({"data": {"team": {"key": "ACME"}},
                                "webhookTimestamp": int(time.time() * 1000) - 120_000}).encode()
            sig = hmac.new(b"linear-hook-secret", stale, hashlib.sha256).hexdigest()
            assert requests.post(f"{base}/webhooks/linear", data=stale, timeout=5,
                                 headers={"linear-signature": sig}).status_code == 401
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Traceback" not in err


def test_secret_canaries_appear_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capfd: pytest.CaptureFixture[str]) -> None:
    canary = "CANARY-7f3a9e51c2d4b8a6"
    monkeypatch.setenv("TEST_JIRA_TOKEN", canary)
    with JiraEmulator(build(8, many_worklogs={2}), token=canary) as jira:
        jira.inject(r"/search/jql$", status=429, headers={"Retry-After": "0"}, times=1)
        cfg = write_config(tmp_path, jira.url)
        out_dir = tmp_path / "out"
        for argv in (["sync", "--full"], ["tickets", "--client", "acme", "--format", "json"],
                     ["consumption", "--client", "acme", "--month", "2026-09"],
                     ["report", "--client", "acme", "--month", "2026-09", "--format",
                      "html,md,json", "--out", str(out_dir)],
                     ["run", "--once", "--at", "2026-10-05T10:00:00+02:00"]):
            assert main([*argv, "--config", str(cfg), "--log-level", "debug",
                         "--log-format", "json"]) == 0, argv
        monkeypatch.setenv("TEST_JIRA_TOKEN", "wrong-" + canary)
        assert main(["sync", "--full", "--config", str(cfg), "--log-level", "debug"]) == 2
    captured = capfd.readouterr()
    assert canary not in captured.out and canary not in captured.err
    written = sorted(p.suffix for p in out_dir.iterdir())
    assert written == [".html", ".json", ".md"]  # the check below read real files
    for path in out_dir.iterdir():
        assert canary not in path.read_text(encoding="utf-8"), path
    assert canary.encode() not in (tmp_path / "tmabot.db").read_bytes()
    import base64

    encoded = base64.b64encode(f"bot@agency.example:{canary}".encode()).decode()
    assert encoded not in captured.err and encoded not in captured.out


def test_once_exits_1_when_a_job_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`run --once` is what cron calls: a failed job must show in its exit status."""
    monkeypatch.setenv("TEST_JIRA_TOKEN", TOKEN)
    cfg = write_config(tmp_path, f"http://127.0.0.1:{free_port()}")  # nothing listens
    cfg.write_text(cfg.read_text().replace("max_retries = 4", "max_retries = 0"))
    assert main(["run", "--once", "--at", "2026-11-05T10:00:00+01:00",
                 "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "sync: failed" in err and TOKEN not in err

"""`tmabot run --http-port`: /healthz, /metrics (Prometheus) and the webhook fast path.

- `GET /healthz`: `{"status": "ok", "jobs": {name: last success}}` with 200, or 503 when
  the store is unreachable.
- `GET /metrics`: Prometheus text; every name starts with `tmabot_`.
- `POST /webhooks/linear`: `linear-signature` = hex HMAC-SHA256 of the raw body with the
  webhook secret, `webhookTimestamp` within 60 s; `POST /webhooks/jira`: the shared secret
  in `X-Tmabot-Webhook-Secret` (or `?secret=`). Either triggers an incremental sync of the
  client owning the issue's team / project, in the background. Polling stays the source of
  truth: a lost webhook only delays an update.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from datetime import UTC, datetime
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tmabot.logs import redact
from tmabot.scheduler import STUCK_AFTER

log = logging.getLogger("tmabot.http")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.job_seconds = Histogram("tmabot_job_duration_seconds", "Job duration",
                                     ["job"], registry=r)
        self.job_runs = Counter("tmabot_job_runs_total", "Job runs", ["job", "outcome"],
                                registry=r)
        self.sync_seconds = Histogram("tmabot_sync_duration_seconds", "Sync duration",
                                      registry=r)
        self.api_requests = Counter("tmabot_api_requests_total", "Tracker API requests",
                                    ["tracker"], registry=r)
        self.api_errors = Counter("tmabot_api_errors_total", "Tracker API errors",
                                  ["tracker"], registry=r)
        self.at_risk = Gauge("tmabot_tickets_at_risk", "Running indicators at risk",
                             registry=r)
        self.breached = Gauge("tmabot_tickets_breached", "Running indicators breached",
                              registry=r)
        self.messages_sent = Counter("tmabot_messages_sent_total", "Slack messages sent",
                                     registry=r)
        self.emails_sent = Counter("tmabot_emails_sent_total", "Report emails sent",
                                   registry=r)
        self.webhooks = Counter("tmabot_webhooks_total", "Webhooks received",
                                ["source", "outcome"], registry=r)

    def job(self, name: str, seconds: float, *, ok: bool) -> None:
        self.job_seconds.labels(name).observe(seconds)
        self.job_runs.labels(name, "ok" if ok else "error").inc()
        if name == "sync":
            self.sync_seconds.observe(seconds)

    def messages(self, n: int) -> None:
        self.messages_sent.inc(n)

    def emails(self, n: int) -> None:
        self.emails_sent.inc(n)


class HttpSide:
    """The HTTP endpoints of `tmabot run`, on a thread of their own."""

    def __init__(self, settings: Any, store_factory: Any, metrics: Metrics, *,
                 host: str, port: int) -> None:
        self.settings = settings
        self.store_factory = store_factory
        self.metrics = metrics
        side = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                if path == "/healthz":
                    status, payload = side.health()
                    self._send(status, json.dumps(payload).encode(), "application/json")
                elif path == "/metrics":
                    self._send(200, generate_latest(side.metrics.registry), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:  # noqa: N802
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                if split.path == "/webhooks/linear":
                    status, text = side.linear_webhook(body, headers)
                elif split.path == "/webhooks/jira":
                    status, text = side.jira_webhook(body, headers, query)
                else:
                    status, text = 404, "not found"
                self._send(status, text.encode(), "text/plain")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="tmabot-http")

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HttpSide:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- endpoints -----------------------------------------------------------------------
    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            store = self.store_factory()
            try:
                ok = store.ping()
                runs = store.job_runs()
                stuck = store.stuck_deliveries(datetime.now(UTC) - STUCK_AFTER)
            finally:
                store.close()
        except Exception as exc:  # noqa: BLE001 - any failure: the store is not reachable
            log.error("health check: %s", redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))
            ok, runs, stuck = False, {}, []
        jobs = {name: (r["last_success_at"].isoformat() if r.get("last_success_at") else None)
                for name, r in runs.items()}
        if not ok:
            return 503, {"status": "error", "jobs": jobs, "store": "unreachable"}
        payload: dict[str, Any] = {"status": "ok", "jobs": jobs}
        if stuck:  # sends interrupted between claim and record: a person must decide
            payload["unfinished_sends"] = [f"{r['client_id']} {r['period']} {r['channel']}"
                                           for r in stuck]
        return 200, payload

    def _secret(self, key: str) -> str | None:
        hooks = getattr(self.settings, "webhooks", None)
        env = getattr(hooks, key, None) if hooks is not None else None
        return self.settings.secret(env) if env else None

    def linear_webhook(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        secret = self._secret("linear_secret_env")
        if secret is None:
            return 404, "linear webhooks are not configured"
        given = headers.get("linear-signature", "")
        expected = hmac.new(secret.encode(), body, sha256).hexdigest()
        if not hmac.compare_digest(given, expected):
            self.metrics.webhooks.labels("linear", "refused").inc()
            return 401, "bad signature"
        try:
            payload = json.loads(body)
            stamp = int(payload.get("webhookTimestamp") or 0)
        except (ValueError, TypeError):
            return 400, "not JSON"
        if abs(time.time() * 1000 - stamp) > 60_000:
            self.metrics.webhooks.labels("linear", "stale").inc()
            return 401, "stale webhook"
        data = payload.get("data") or {}
        team = (data.get("team") or {}).get("key") or str(data.get("identifier", "")).split(
            "-")[0]
        return self._sync_for("linear", team)

    def jira_webhook(self, body: bytes, headers: dict[str, str],
                     query: dict[str, str]) -> tuple[int, str]:
        secret = self._secret("jira_secret_env")
        if secret is None:
            return 404, "jira webhooks are not configured"
        given = headers.get("x-tmabot-webhook-secret") or query.get("secret", "")
        if not hmac.compare_digest(given, secret):
            self.metrics.webhooks.labels("jira", "refused").inc()
            return 401, "bad secret"
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, "not JSON"
        issue = payload.get("issue") or {}
        project = ((issue.get("fields") or {}).get("project") or {}).get("key") or str(
            issue.get("key", "")).split("-")[0]
        return self._sync_for("jira", project)

    def _sync_for(self, source: str, project: str) -> tuple[int, str]:
        client = next((c for c in self.settings.clients
                       if project.upper() in {p.upper() for p in c.projects}), None)
        if client is None:
            self.metrics.webhooks.labels(source, "ignored").inc()
            return 202, "no client for this project"
        self.metrics.webhooks.labels(source, "sync").inc()

        def work() -> None:
            from tmabot.sync import sync

            store = self.store_factory()
            try:
                sync(self.settings, store, client_ids=[client.id])
            except Exception as exc:  # noqa: BLE001 - polling will catch up

                log.warning("webhook sync of %s failed: %s", client.id,
                            redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))
            finally:
                store.close()

        threading.Thread(target=work, daemon=True, name="tmabot-webhook").start()
        return 202, f"sync of {client.id} started at {datetime.now(UTC).isoformat()}"

"""`tmabot run`: every job when it is due, one leader among replicas, catch-up after downtime.

Each job decides from the store what is due — not from "did the timer fire" — so a
process that was down catches up: every monthly report due since the contract start (at
most 12 months back) that the ledger has not recorded goes out, once. Jobs:

- sync: every `sync_every_minutes` since the last successful one;
- nudge: every `nudge_every_minutes` (the nudge ledger makes reruns harmless);
- digest: at `digest_time` on business days, once a day (weekly on `digest_weekday`);
- reports: the report for month M on the `report_business_day`-th business day of M+1 at
  `report_time`, emailed (and posted) once per client-month;
- reconcile: an ids-only reconcile sync at `reconcile_time`, once a day.

Only the leader runs jobs: a PostgreSQL advisory lock held on a dedicated connection, or a
file lock beside an SQLite database. A job that fails is logged and retried next tick; the
loop goes on. SIGTERM lets the current job finish, then the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time as _time
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tmabot.calendar import BusinessCalendar
from tmabot.logs import redact
from tmabot.months import Month

log = logging.getLogger("tmabot.run")
JOBS = ("sync", "nudge", "digest", "reports", "reconcile")
# A send claimed longer ago than this and not recorded was interrupted (the scheduler's log
# and /healthz say so).
STUCK_AFTER = timedelta(minutes=10)


# -- leadership --------------------------------------------------------------------------


class Leadership:
    """Held while this process is the leader; released on close (or when it dies)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        # Advisory locks are database-wide: two deployments in two schemas of one database
        # must not block each other, so the key comes from the whole URL (schema included).
        import hashlib

        digest = hashlib.sha256(database_url.encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        self._conn: Any = None
        self._engine: Any = None
        self._lock: Any = None

    def acquire(self) -> bool:
        if self.url.startswith("postgresql"):
            return self._pg()
        return self._file()

    def _pg(self) -> bool:
        if self._conn is not None:
            return True
        from sqlalchemy import create_engine, text

        if self._engine is None:  # one small engine for the lock's own sessions
            self._engine = create_engine(self.url, pool_pre_ping=True, pool_size=1)
        conn = self._engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                {"k": self.key}).scalar())
        conn.commit()
        if got:
            self._conn = conn  # the lock lives as long as this session
        else:
            conn.close()
        return got

    def _file(self) -> bool:
        if self._lock is not None:
            return True
        from filelock import FileLock, Timeout

        path = self.url.split("sqlite:///", 1)[-1] or "tmabot.db"
        lock = FileLock(str(Path(path).with_suffix(".leader.lock")))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        self._lock = lock
        return True

    def still_held(self) -> bool:
        if self._conn is not None:
            try:
                from sqlalchemy import text

                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # noqa: BLE001 - a dead session means the lock is gone
                self._conn = None
                return False
        return self._lock is not None

    def release(self) -> None:
        if self._conn is not None:
            from sqlalchemy import text

            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
                self._conn.close()
            finally:
                self._conn = None
        if self._engine is not None:
            self._engine.dispose()  # really end the sessions: no pooled lock holder
            self._engine = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


# -- what is due -------------------------------------------------------------------------


def nth_business_day(month: Month, n: int, cal: BusinessCalendar) -> date:
    day = month.first_day()
    count = 0
    while True:
        if cal.hours_on(day):
            count += 1
            if count == n:
                return day
        day += timedelta(days=1)


def report_due_at(month: Month, settings: Any, cal: BusinessCalendar) -> datetime:
    """When the report of `month` is due: the Nth business day of the next month."""
    tz = ZoneInfo(settings.agency.timezone)
    day = nth_business_day(month.next(), settings.schedule.report_business_day, cal)
    return datetime.combine(day, settings.schedule.report_time, tz)


def reports_due(settings: Any, store: Any, now: datetime, cal: BusinessCalendar,
                ) -> list[tuple[Any, Month]]:
    """(client, month) pairs whose report is due and not recorded as emailed."""
    tz = ZoneInfo(settings.agency.timezone)
    current = Month.of(now.astimezone(tz))
    out = []
    for client in settings.clients:
        if not client.report_recipients:
            continue
        recorded = {row["period"] for row in store.deliveries_of(client.id, "email")}
        month = max(Month.of(client.contract.start), _months_back(current, 12))
        while month < current:
            if str(month) not in recorded and report_due_at(month, settings, cal) <= now:
                out.append((client, month))
            month = month.next()
    return out


def slack_posts_due(settings: Any, store: Any) -> list[tuple[Any, Month]]:
    """Reports emailed whose Slack post is still owed (it failed after the email)."""
    if settings.slack is None:
        return []
    out = []
    for client in settings.clients:
        if not client.slack_channel:
            continue
        posted = {row["period"] for row in store.deliveries_of(client.id, "slack")}
        for row in store.deliveries_of(client.id, "email"):
            if row["status"] == "sent" and row["period"] not in posted:
                out.append((client, Month.parse(row["period"])))
    return out


def _months_back(month: Month, n: int) -> Month:
    for _ in range(n):
        month = month.previous()
    return month


class Runner:
    """Runs the due jobs of one tick (as the leader)."""

    def __init__(self, settings: Any, store: Any, *, metrics: Any = None) -> None:
        self.settings = settings
        self.store = store
        self.cal = BusinessCalendar.from_settings(settings.calendar, settings.agency.timezone)
        self.tz = ZoneInfo(settings.agency.timezone)
        self.metrics = metrics
        self.stop_requested = False
        self._warned: set[tuple[str, str, str]] = set()  # unfinished sends already told

    # -- scheduling decisions, from the store --------------------------------------------
    def _every(self, job: str, minutes: int, now: datetime) -> bool:
        last = self.store.job_success(job)
        return last is None or now - last >= timedelta(minutes=minutes)

    def _daily_at(self, at: time, now: datetime, *, business_day: bool) -> bool:
        local = now.astimezone(self.tz)
        if business_day and not self.cal.hours_on(local.date()):
            return False
        return local.time() >= at

    def _weekly_day(self, local: datetime) -> bool:
        from tmabot.config import WEEKDAYS

        return WEEKDAYS[local.weekday()] == self.settings.schedule.digest_weekday

    def due(self, now: datetime) -> list[str]:
        s = self.settings.schedule
        jobs = []
        if self._every("sync", s.sync_every_minutes, now):
            jobs.append("sync")
        if self.settings.slack is not None and self._every("nudge", s.nudge_every_minutes,
                                                           now):
            jobs.append("nudge")
        local = now.astimezone(self.tz)
        if self.settings.slack is not None and self._daily_at(
                s.digest_time, now, business_day=True) and (
                self.store.delivery("*", f"{local:%Y-%m-%d}", "digest") is None
                or (self._weekly_day(local)
                    and self.store.delivery("*", f"{local:%G-W%V}", "digest-weekly") is None)):
            jobs.append("digest")
        if self.settings.email is not None and (
                reports_due(self.settings, self.store, now, self.cal)
                or slack_posts_due(self.settings, self.store)):
            jobs.append("reports")
        last = self.store.job_success("reconcile")
        if self._daily_at(s.reconcile_time, now, business_day=False) and (
                last is None or last.astimezone(self.tz).date() < local.date()):
            jobs.append("reconcile")  # once a day: only the leader runs jobs
        return jobs

    # -- running -------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> dict[str, str]:
        """Run what is due; a failing job is logged and left for the next tick."""
        when = now or datetime.now(UTC)
        outcome: dict[str, str] = {}
        for row in self.store.stuck_deliveries(when - STUCK_AFTER):
            # At most once: a send interrupted between its claim and its record is not
            # retried blindly (it may have gone out). Said once per run of the process.
            ident = (row["client_id"], row["period"], row["channel"])
            if ident in self._warned:
                continue
            self._warned.add(ident)
            resend = (f"; check, then `tmabot report --client {row['client_id']} --month "
                      f"{row['period']} --resend`" if row["channel"] in ("email", "slack")
                      else "")
            log.warning("%s %s %s: a send did not finish (crash?)%s", *ident, resend)
        for job in self.due(when):  # one job at a time: a job never overlaps itself
            if self.stop_requested:
                break
            began = _time.perf_counter()
            try:
                outcome[job] = getattr(self, f"_job_{job}")(when)
                self.store.record_job(job, success=when)
            except Exception as exc:  # noqa: BLE001 - logged, retried next tick
                message = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])
                log.error("job %s failed: %s", job, message)
                self.store.record_job(job, error=message, at=when)
                outcome[job] = "failed: " + message
            if self.metrics is not None:
                self.metrics.job(job, _time.perf_counter() - began,
                                 ok=not outcome[job].startswith("failed"))
        return outcome

    def _job_sync(self, now: datetime) -> str:
        from tmabot.sync import sync

        result = sync(self.settings, self.store)
        return f"{result.tickets_written} ticket(s) written"

    def _job_nudge(self, now: datetime) -> str:
        from tmabot.notify.slack import send_nudges

        run = send_nudges(self.settings, self.store, now=now)
        if self.metrics is not None:
            self.metrics.messages(len(run.posted))
        if run.failed:
            raise RuntimeError("; ".join(run.failed))
        return f"{len(run.posted)} nudge(s)"

    def _job_digest(self, now: datetime) -> str:
        from tmabot.notify.slack import post_digest

        text = post_digest(self.settings, self.store, now=now)
        if self._weekly_day(now.astimezone(self.tz)):
            text += "; " + post_digest(self.settings, self.store, now=now, weekly=True)
        return text

    def _job_reports(self, now: datetime) -> str:
        from tmabot import report

        sent = []
        for client, month in reports_due(self.settings, self.store, now, self.cal):
            data = report.build(self.store, self.settings, client, month, at=now)
            outcome = report.send(self.store, self.settings, client, data, now=now)
            if outcome.sent:
                sent.append(f"{client.id} {month}")
                if self.metrics is not None:
                    self.metrics.emails(1)
        from tmabot.notify.slack import post_report
        from tmabot.report.charts import plan_gauge
        from tmabot.report.i18n import text_for

        posted = 0
        for client, month in slack_posts_due(self.settings, self.store):
            data = report.build(self.store, self.settings, client, month, at=now)
            gauge = plan_gauge(data, text_for(data["locale"]))
            if post_report(self.settings, self.store, client, data, gauge):
                posted += 1
        return (f"{len(sent)} report(s) sent" + (f" ({', '.join(sent)})" if sent else "")
                + (f", {posted} Slack post(s) caught up" if posted else ""))

    def _job_reconcile(self, now: datetime) -> str:
        from tmabot.sync import sync

        result = sync(self.settings, self.store, reconcile=True)
        return f"{result.tickets_written} ticket(s) written, reconciled"


def run_loop(settings: Any, store_factory: Callable[[], Any], *, once: bool,
             at: datetime | None, tick_seconds: float = 30.0, metrics: Any = None,
             http: Any = None, simulate_minutes: float | None = None,
             max_ticks: int | None = None) -> int:
    """The `tmabot run` loop; returns the exit code."""
    import schedule

    store = store_factory()
    leader = Leadership(settings.agency.database_url)
    runner = Runner(settings, store, metrics=metrics)
    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        runner.stop_requested = True
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        if once:
            if not leader.acquire():
                print("tmabot: another tmabot run is the leader: nothing to do here")
                return 0
            failed = False
            for job, text in runner.tick(at).items():
                failed = failed or text.startswith("failed")
                print(f"{job}: {text}", file=sys.stderr if text.startswith("failed")
                      else sys.stdout)
            return 1 if failed else 0  # cron sees a failed job

        count = [0]

        def tick() -> None:
            # Accelerated time (tests, benchmarks): tick k acts at `at` + k × the step.
            k = count[0]
            count[0] += 1
            when = at
            if simulate_minutes is not None:
                when = (at or datetime.now(UTC)) + timedelta(minutes=simulate_minutes * k)
            if max_ticks is not None and k >= max_ticks:
                stop.set()
                return
            try:
                led = leader.acquire() and leader.still_held()
            except Exception as exc:  # noqa: BLE001 - the database is down: next tick
                log.error("leader election failed: %s",
                          redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))
                led = False
            if simulate_minutes is not None:
                print(f"tick {k} {'leader' if led else 'standby'}", flush=True)
            if not led:
                if simulate_minutes is not None:
                    count[0] -= 1  # a standby's clock does not run: it resumes where it is
                log.debug("not the leader: waiting")
                return
            try:
                runner.tick(when)
            except Exception as exc:  # noqa: BLE001 - the store may be down: next tick
                log.error("tick failed: %s",
                          redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))

        tick()
        schedule.every(tick_seconds).seconds.do(tick)
        while not stop.is_set():
            schedule.run_pending()
            stop.wait(min(1.0, tick_seconds))
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        schedule.clear()
        leader.release()
        store.close()

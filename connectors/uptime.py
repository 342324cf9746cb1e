"""Monthly uptime of a client's site: UptimeRobot (API v2) or a CSV of incidents.

Both give a list of down periods; the month's uptime is computed the same way from them:
`100 × (1 − down time / watched time)`, where maintenance windows declared in the config
are taken out of both (planned downtime announced to the client is not an outage).

UptimeRobot: `POST {url}getMonitors` (form: `api_key`, `monitors`, `logs=1`,
`logs_start_date`, `logs_end_date`, `custom_uptime_ranges`); logs of type 1 are "down"
events with a `datetime` (epoch s) and a `duration` (s). The API's own
`custom_uptime_ranges` figure is kept for comparison. `stat: "fail"` answers are turned
into one clear error; 429/5xx and timeouts are retried with the shared policy.

CSV: columns `start,end,reason` (ISO 8601; without an offset, the agency's time zone).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from connectors.errors import TrackerConfigError, TrackerError
from connectors.retry import RetryPolicy


@dataclass(frozen=True)
class Outage:
    start: datetime
    end: datetime
    reason: str


@dataclass
class UptimeMonth:
    percent: float | None
    incidents: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    provider_percent: float | None = None  # what the provider itself says, to compare


def _aware(value: datetime, tz: ZoneInfo) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


def month_uptime(outages: list[Outage], start: datetime, end: datetime,
                 maintenance: list[tuple[datetime, datetime]], tz: ZoneInfo) -> UptimeMonth:
    """Uptime % of [start, end) from down periods, maintenance windows excluded."""
    windows = sorted(maintenance)
    watched = (end - start).total_seconds() - sum(_overlap(a, b, start, end)
                                                  for a, b in windows)
    down = 0.0
    incidents: list[dict[str, Any]] = []
    for o in sorted(outages, key=lambda o: o.start):
        seconds = _overlap(o.start, o.end, start, end)
        if seconds <= 0:
            continue
        seconds -= sum(_overlap(max(o.start, start), min(o.end, end), a, b) for a, b in windows)
        if seconds <= 0:
            continue
        down += seconds
        incidents.append({"start": o.start.astimezone(tz).isoformat(),
                          "end": o.end.astimezone(tz).isoformat(),
                          "minutes": round(seconds / 60, 1), "reason": o.reason})
    if watched <= 0:
        return UptimeMonth(None, incidents)
    return UptimeMonth(round(100.0 * (1 - down / watched), 3), incidents)


def read_csv(path: Path, tz: ZoneInfo) -> list[Outage]:
    """Incidents from a CSV with columns start, end, reason (header required)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TrackerConfigError(f"{path}: cannot read the incidents file ({exc.strerror})",
                                 tracker="uptime") from None
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower() for f in reader.fieldnames or []}
    if not {"start", "end"} <= fields:
        raise TrackerConfigError(f"{path}: expected the columns start, end, reason",
                                 tracker="uptime")
    out: list[Outage] = []
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        try:
            start = _aware(datetime.fromisoformat(row["start"]), tz)
            end = _aware(datetime.fromisoformat(row["end"]), tz)
        except ValueError:
            raise TrackerConfigError(f"{path}: line {line}: start/end are not ISO 8601 dates",
                                     tracker="uptime") from None
        if end < start:
            raise TrackerConfigError(f"{path}: line {line}: end is before start",
                                     tracker="uptime")
        out.append(Outage(start, end, row.get("reason") or "incident"))
    return out


class UptimeRobot:
    """The part of UptimeRobot's API v2 that gives a monitor's down events."""

    def __init__(self, url: str, api_key: str, monitor_id: str, *, timeout: float = 30.0,
                 retry: RetryPolicy | None = None) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self._key = api_key
        self.monitor_id = monitor_id
        self.timeout = timeout
        self.retry = retry or RetryPolicy(max_attempts=4)
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def _post(self, method: str, form: dict[str, Any]) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            response = self.session.post(self.url + method, data={**form, "api_key": self._key,
                                                                  "format": "json"},
                                         timeout=self.timeout)
            response.raise_for_status()
            return dict(response.json())

        data = self.retry.call(call, tracker="uptimerobot", what=method)
        if data.get("stat") != "ok":
            error = data.get("error") or {}
            message = str(error.get("message") or error.get("type") or "request failed")
            kind = str(error.get("type") or "")
            if "api_key" in message.lower() or kind in ("not_authorized", "invalid_parameter"):
                raise TrackerConfigError(f"{method}: {message}", tracker="uptimerobot")
            raise TrackerError(f"{method}: {message}", tracker="uptimerobot")
        return data

    def outages(self, start: datetime, end: datetime) -> tuple[list[Outage], float | None]:
        """Down events overlapping [start, end), and UptimeRobot's own uptime for it."""
        s, e = int(start.timestamp()), int(end.timestamp())
        data = self._post("getMonitors", {
            "monitors": self.monitor_id, "logs": 1, "logs_limit": 1000,
            "logs_start_date": s - 86400, "logs_end_date": e,
            "custom_uptime_ranges": f"{s}_{e}"})
        monitors = data.get("monitors") or []
        if not monitors:
            raise TrackerConfigError(f"monitor {self.monitor_id} not found for this API key",
                                     tracker="uptimerobot")
        monitor = monitors[0]
        out: list[Outage] = []
        for log in monitor.get("logs") or []:
            if int(log.get("type", 0)) != 1:  # 1 = down (2 = up, 98 = started, 99 = paused)
                continue
            began = datetime.fromtimestamp(int(log["datetime"]), UTC)
            ended = datetime.fromtimestamp(int(log["datetime"]) + int(log.get("duration") or 0),
                                           UTC)
            reason = log.get("reason") or {}
            text = reason.get("detail") or reason.get("code") or "down"
            out.append(Outage(began, ended, str(text)))
        ranges = str(monitor.get("custom_uptime_ranges") or "")
        try:
            provider = float(ranges.split("-")[0]) if ranges else None
        except ValueError:
            provider = None
        return out, provider


def uptime_for(settings: Any, client: Any, start: datetime, end: datetime) -> UptimeMonth:
    """The client's uptime for [start, end), or percent None without a source."""
    source = getattr(client, "uptime", None)
    tz = ZoneInfo(settings.agency.timezone)
    if source is None:
        return UptimeMonth(None, [], "")
    windows = [(_aware(w.start, tz), _aware(w.end, tz)) for w in source.maintenance_windows]
    if source.kind == "csv":
        result = month_uptime(read_csv(Path(source.path), tz), start, end, windows, tz)
        result.source = "csv"
        return result
    robot = UptimeRobot(str(source.url), settings.secret(source.api_key_env),
                        str(source.monitor_id), timeout=source.timeout_seconds)
    try:
        outages, provider = robot.outages(start, end)
    finally:
        robot.close()
    result = month_uptime(outages, start, end, windows, tz)
    result.source, result.provider_percent = "uptimerobot", provider
    return result

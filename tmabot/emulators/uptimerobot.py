"""An UptimeRobot API v2 emulator: `POST /v2/getMonitors` over a list of down periods.

Answers as UptimeRobot does: form-encoded requests, `stat: "ok"` / `stat: "fail"` with an
`error` object (also for a wrong API key, with HTTP 200), logs of type 1 (down, with
`datetime` and `duration` in seconds) and 2 (up), `custom_uptime_ranges` as a
dash-separated string with three decimals. Faults and the request log come from
EmulatorServer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qs

from tmabot.emulators.http import EmulatorServer, Request, Response


@dataclass
class Monitor:
    id: str
    name: str
    url: str
    downs: list[tuple[datetime, datetime, str]] = field(default_factory=list)  # aware


class UptimeRobotEmulator(EmulatorServer):
    pause_gc_in_handlers = False

    def __init__(self, monitors: list[Monitor], *, api_key: str = "ur-test-key",
                 host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.monitors = {m.id: m for m in monitors}
        self._key = api_key
        self.add_route("POST", r"/v2/getMonitors", self._get_monitors)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2/"

    def error_response(self, status: int, message: str) -> Response:
        return Response.json({"stat": "fail", "error": {"type": "internal_error",
                                                         "message": message}}, status)

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        parsed = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}

    def _get_monitors(self, request: Request) -> Response:
        form = self._form(request)
        if form.get("api_key") != self._key:
            return Response.json({"stat": "fail", "error": {
                "type": "invalid_parameter", "parameter_name": "api_key",
                "passed_value": "***", "message": "api_key is invalid."}})
        wanted = [m for m in form.get("monitors", "").split("-") if m]
        chosen = [self.monitors[m] for m in wanted if m in self.monitors] if wanted \
            else list(self.monitors.values())
        out = []
        for m in chosen:
            item: dict[str, object] = {"id": int(m.id) if m.id.isdigit() else m.id,
                                       "friendly_name": m.name, "url": m.url, "type": 1,
                                       "status": 2}
            if form.get("logs") == "1":
                lo = int(form.get("logs_start_date") or 0)
                hi = int(form.get("logs_end_date") or 2**40)
                logs = []
                for start, end, reason in sorted(m.downs, reverse=True):
                    s, e = int(start.timestamp()), int(end.timestamp())
                    if e < lo or s > hi:
                        continue
                    logs.append({"id": s, "type": 1, "datetime": s, "duration": e - s,
                                 "reason": {"code": "500", "detail": reason}})
                    logs.append({"id": e, "type": 2, "datetime": e, "duration": 0,
                                 "reason": {"code": "200", "detail": "OK"}})
                item["logs"] = sorted(logs, key=lambda x: x["datetime"], reverse=True)
            ranges = form.get("custom_uptime_ranges")
            if ranges:
                figures = []
                for part in ranges.split("-"):
                    a, _, b = part.partition("_")
                    lo_, hi_ = int(a), int(b)
                    down = sum(max(0, min(int(e.timestamp()), hi_) - max(int(s.timestamp()), lo_))
                               for s, e, _r in m.downs)
                    total = max(1, hi_ - lo_)
                    figures.append(f"{100 * (1 - down / total):.3f}")
                item["custom_uptime_ranges"] = "-".join(figures)
            out.append(item)
        return Response.json({"stat": "ok", "pagination": {"offset": 0, "limit": 50,
                                                           "total": len(out)},
                              "monitors": out})

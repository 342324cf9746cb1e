"""Tracker errors and the one classifier that sorts every HTTP/transport failure."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

import requests


class ErrorKind(enum.Enum):
    RETRIABLE = "retriable"  # 429, 5xx, timeouts, dropped connections, garbled bodies
    CONFIG = "config"  # credentials, permissions, unknown project: the user must act
    FATAL = "fatal"  # anything else: report it, never turn it into "0 tickets"


class TrackerError(Exception):
    """A tracker call failed; `str()` is one line meant for the user."""

    exit_code = 1

    def __init__(self, message: str, *, tracker: str = "", status: int | None = None) -> None:
        self.tracker = tracker
        self.status = status
        prefix = f"{tracker}: " if tracker else ""
        super().__init__(prefix + message)


class TrackerConfigError(TrackerError):
    """Bad credentials, missing permission, unknown project: fix the config (exit 2)."""

    exit_code = 2


class TrackerUnavailable(TrackerError):
    """Still failing after every retry (exit 1)."""


class TrackerProtocolError(TrackerError):
    """The tracker answered something that breaks its own contract (repeating page token...)."""


@dataclass(frozen=True)
class Classified:
    kind: ErrorKind
    status: int | None
    message: str
    retry_after: float | None = None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def tracker_message(body: str) -> str:
    """The error text a tracker put in its JSON body (Jira's errorMessages/errors)."""
    try:
        data = json.loads(body)
    except ValueError:
        text = " ".join(body.split())
        return text[:300]
    parts: list[str] = []
    if isinstance(data, dict):
        msgs = data.get("errorMessages") or []
        if isinstance(msgs, str):
            msgs = [msgs]
        parts.extend(str(m) for m in msgs)
        errs = data.get("errors")
        if isinstance(errs, dict):
            parts.extend(f"{k}: {v}" for k, v in errs.items())
        elif isinstance(errs, list):  # GraphQL
            parts.extend(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errs)
        for key in ("message", "errorMessage", "error"):
            if not parts and isinstance(data.get(key), str):
                parts.append(data[key])
    return "; ".join(parts)[:500]


def classify_response(status: int, body: str, headers: dict[str, str] | None = None) -> Classified:
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    msg = tracker_message(body)
    if status == 429 or status in (502, 503, 504) or status >= 500:
        return Classified(ErrorKind.RETRIABLE, status, msg or f"HTTP {status}",
                          _parse_retry_after(headers.get("retry-after")))
    if status in (401, 403):
        return Classified(ErrorKind.CONFIG, status, msg or f"HTTP {status}")
    if status == 404:
        return Classified(ErrorKind.CONFIG, status, msg or "not found")
    return Classified(ErrorKind.FATAL, status, msg or f"HTTP {status}")


def classify_exception(exc: BaseException) -> Classified:
    """Sort any failure of a tracker call into retriable / config / fatal."""
    response = getattr(exc, "response", None)
    if isinstance(response, requests.Response):
        return classify_response(response.status_code, response.text, dict(response.headers))
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return Classified(ErrorKind.RETRIABLE, None, type(exc).__name__)
    if isinstance(exc, ValueError | requests.exceptions.ChunkedEncodingError):
        # A 200 whose body is not JSON: a proxy page or a cut connection.
        return Classified(ErrorKind.RETRIABLE, None, "malformed response body")
    if isinstance(exc, TrackerError):
        return Classified(ErrorKind.FATAL, exc.status, str(exc))
    return Classified(ErrorKind.FATAL, None, f"{type(exc).__name__}: {exc}")

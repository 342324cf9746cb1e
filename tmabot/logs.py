"""Logging: one line per event (text or JSON) on stderr, with every known secret redacted."""

from __future__ import annotations

import base64
import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote

REDACTED = "[redacted]"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def _variants(secret: str) -> set[str]:
    """The forms a secret takes on the wire: as is, URL-quoted, and inside Basic auth."""
    out = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}
    return {v for v in out if len(v) >= 4}


class RedactFilter(logging.Filter):
    """Replaces secret values in the final message, whatever the logger or its arguments."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        found = set(self.secrets)
        for s in secrets:
            if s:
                found |= _variants(s)
        self.secrets = sorted(found, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += " | " + f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            record.exc_info = None
            record.exc_text = None
        record.msg = self.redact(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(),
        }, ensure_ascii=False)


_filter = RedactFilter()


def setup_logging(level: str = "warning", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_filter)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.WARNING))
    # The HTTP client libraries log request details at debug: keep them one notch quieter.
    for noisy in ("urllib3", "jira", "requests_oauthlib"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))


def register_secrets(secrets: Iterable[str]) -> None:
    _filter.add(secrets)


def redact(text: str) -> str:
    return _filter.redact(text)

"""One retry policy for tracker calls: Retry-After, exponential backoff, jitter, bounded."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from connectors.errors import (
    ErrorKind,
    TrackerConfigError,
    TrackerError,
    TrackerUnavailable,
    classify_exception,
)

T = TypeVar("T")
log = logging.getLogger("tmabot.retry")


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0  # also caps a server's Retry-After
    jitter: float = 0.25  # +/- share of the delay, so replicas do not retry in lockstep
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The server said when: do not come back earlier, but add a little spread.
            return min(self.max_delay, retry_after) + self.rng.uniform(0, self.jitter)
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return max(0.0, backoff * (1 + self.rng.uniform(-self.jitter, self.jitter)))

    def call(self, fn: Callable[[], T], *, tracker: str, what: str) -> T:
        """Run `fn`, retrying retriable failures; raise a one-line TrackerError otherwise."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except TrackerError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure goes through the classifier
                c = classify_exception(exc)
                if c.kind is ErrorKind.RETRIABLE and attempt < self.max_attempts:
                    wait = self.delay(attempt, c.retry_after)
                    log.warning("%s: %s failed (%s), retry %d/%d in %.1fs", tracker, what,
                                c.message, attempt, self.max_attempts - 1, wait)
                    self.sleep(wait)
                    continue
                status = f"HTTP {c.status}: " if c.status else ""
                if c.kind is ErrorKind.CONFIG:
                    hint = {401: "authentication failed: check the email and the token env var",
                            403: "permission denied: the API user cannot see this"}.get(
                                c.status or 0, "")
                    detail = f"{hint} ({c.message})" if hint else c.message
                    raise TrackerConfigError(f"{what}: {status}{detail}", tracker=tracker,
                                             status=c.status) from None
                if c.kind is ErrorKind.RETRIABLE:
                    raise TrackerUnavailable(
                        f"{what}: still failing after {attempt} attempts ({status}{c.message})",
                        tracker=tracker, status=c.status) from None
                raise TrackerError(f"{what}: {status}{c.message}", tracker=tracker,
                                   status=c.status) from None

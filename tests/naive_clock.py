"""A deliberately naive business clock: step minute by minute and ask each minute.

Written separately from tmabot.calendar (no shared code): it is the reference the vectorized
clock is checked against. Slow on purpose; only for minute-aligned instants.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from zoneinfo import ZoneInfo


class NaiveClock:
    def __init__(self, tz: str, workdays: Collection[int], hours: Collection[tuple[int, int]],
                 closed: Collection[date]) -> None:
        self.tz = ZoneInfo(tz)
        self.workdays = set(workdays)
        self.hours = list(hours)
        self.closed = set(closed)

    def working(self, minute_start: int) -> bool:
        """Is the minute starting at this epoch second working time?"""
        local = datetime.fromtimestamp(minute_start, self.tz)
        if local.weekday() not in self.workdays or local.date() in self.closed:
            return False
        m = local.hour * 60 + local.minute
        return any(a <= m < b for a, b in self.hours)

    def between(self, start: int, end: int) -> int:
        """Working seconds in [start, end) — both minute-aligned epoch seconds."""
        total = 0
        t = start
        while t < end:
            if self.working(t):
                total += 60
            t += 60
        return total

    def add(self, start: int, seconds: int, limit_days: int = 400) -> int:
        """The end of the minute in which `seconds` (> 0, whole minutes) are used up."""
        assert seconds > 0 and seconds % 60 == 0
        need = seconds // 60
        t = start
        stop = start + limit_days * 86400
        while t < stop:
            if self.working(t):
                need -= 1
                if need == 0:
                    return t + 60
            t += 60
        raise AssertionError("no working time within the limit")

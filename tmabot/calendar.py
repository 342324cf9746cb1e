"""Business-hours and 24/7 clocks, vectorized.

A clock maps an instant (float epoch seconds, UTC) to a *position*: the number of clock
seconds since an origin. On the 24/7 clock the position is the instant itself; on a business
clock it only advances inside working intervals. Everything an SLA needs follows:

- time on the clock between two instants = position(end) - position(start);
- start + N clock seconds = instant(position(start) + N), where `instant` returns the
  *earliest* instant at that position — a target used up at 18:00 is due at 18:00, not at
  the next opening.

The business clock precomputes its working intervals (in UTC, from the agency's local hours,
so DST changes are exact both ways) and the cumulative business time at each interval's
start; both operations are then two `searchsorted` calls over whole arrays. The index
covers the years the data needs and grows when asked about instants outside it.

NaN in, NaN out: a missing instant stays missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DEFAULT_HOURS: tuple[tuple[int, int], ...] = ((9 * 60, 12 * 60 + 30), (13 * 60 + 30, 18 * 60))
DEFAULT_WORKDAYS: frozenset[int] = frozenset(range(5))  # Monday..Friday
_FIRST_YEAR, _LAST_YEAR = 1971, 2200  # beyond these, instants are tracker garbage


class Clock(Protocol):
    kind: str  # "business" | "24/7"

    def position(self, instants: npt.ArrayLike) -> FloatArray: ...

    def instant(self, positions: npt.ArrayLike) -> FloatArray: ...

    @property
    def day_seconds(self) -> float: ...


def _as_float(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


class AbsoluteClock:
    """The 24/7 clock: every second counts."""

    kind = "24/7"

    def position(self, instants: npt.ArrayLike) -> FloatArray:
        return _as_float(instants)

    def instant(self, positions: npt.ArrayLike) -> FloatArray:
        return _as_float(positions)

    @property
    def day_seconds(self) -> float:
        return 86400.0

    def between(self, start: npt.ArrayLike, end: npt.ArrayLike) -> FloatArray:
        return np.maximum(_as_float(end) - _as_float(start), 0.0)

    def add(self, start: npt.ArrayLike, seconds: npt.ArrayLike) -> FloatArray:
        return _as_float(start) + _as_float(seconds)


@dataclass
class BusinessCalendar:
    """Working hours per weekday in an IANA zone, minus public holidays and closed days.

    `hours` are (start, end) minutes after local midnight (end may be 1440), the same for
    every working day unless `weekday_hours` gives a weekday its own.
    """

    timezone: str = "Europe/Paris"
    workdays: frozenset[int] = DEFAULT_WORKDAYS
    hours: tuple[tuple[int, int], ...] = DEFAULT_HOURS
    country: str | None = "FR"
    subdivision: str | None = None
    closed_days: frozenset[date] = frozenset()
    weekday_hours: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    kind: str = field(default="business", init=False)

    def __post_init__(self) -> None:
        self.tz = ZoneInfo(self.timezone)
        self._years: tuple[int, int] | None = None
        self._starts: FloatArray = np.empty(0)
        self._ends: FloatArray = np.empty(0)
        self._cum: FloatArray = np.empty(0)  # business seconds before each interval
        self._cum_end: FloatArray = np.empty(0)
        self._holiday_names: dict[date, str] = {}

    @classmethod
    def from_settings(cls, calendar: object, timezone: str) -> BusinessCalendar:
        """From the config's `[calendar]` section and the agency's zone."""
        return cls(
            timezone=timezone,
            workdays=frozenset(calendar.weekdays),  # type: ignore[attr-defined]
            hours=tuple(calendar.minute_ranges),  # type: ignore[attr-defined]
            country=calendar.country or None,  # type: ignore[attr-defined]
            subdivision=calendar.subdivision or None,  # type: ignore[attr-defined]
            closed_days=frozenset(calendar.closed_days),  # type: ignore[attr-defined]
        )

    # -- what a day is --------------------------------------------------------------------

    def hours_on(self, day: date) -> tuple[tuple[int, int], ...]:
        """Working ranges of a local day: none on weekends, holidays and closed days."""
        if day.weekday() not in self.workdays or day in self.closed_days:
            return ()
        self._ensure_years(day.year, day.year)
        if day in self._holiday_names:
            return ()
        return tuple(self.weekday_hours.get(day.weekday(), self.hours))

    def is_open(self, when: datetime) -> bool:
        """Whether `when` falls inside the working hours of its local day."""
        local = when.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.hours_on(local.date()))

    def holiday(self, day: date) -> str | None:
        self._ensure_years(day.year, day.year)
        return self._holiday_names.get(day)

    @property
    def day_seconds(self) -> float:
        """Length of a usual working day: what "one business day" means in targets."""
        return float(sum(end - start for start, end in self.hours) * 60)

    # -- the index ------------------------------------------------------------------------

    def _holidays_for(self, years: Iterable[int]) -> dict[date, str]:
        if not self.country:
            return {}
        import holidays

        table = holidays.country_holidays(self.country, subdiv=self.subdivision or None,
                                          years=list(years))
        return dict(table.items())

    def _ensure_years(self, first: int, last: int) -> None:
        first = max(first, _FIRST_YEAR)
        last = min(last, _LAST_YEAR)
        if self._years is not None and self._years[0] <= first and last <= self._years[1]:
            return
        if self._years is not None:
            first, last = min(first, self._years[0]), max(last, self._years[1])
        self._holiday_names = self._holidays_for(range(first, last + 1))
        starts: list[float] = []
        ends: list[float] = []
        tz = self.tz
        day = date(first, 1, 1)
        stop = date(last, 12, 31)
        one = timedelta(days=1)
        while day <= stop:
            if day.weekday() in self.workdays and day not in self.closed_days \
                    and day not in self._holiday_names:
                for a, b in self.weekday_hours.get(day.weekday(), self.hours):
                    s = _local(day, a, tz)
                    e = _local(day, b, tz)
                    if e > s:  # a range swallowed by a DST gap is empty
                        starts.append(s)
                        ends.append(e)
            day += one
        self._starts = np.asarray(starts, dtype=np.float64)
        self._ends = np.asarray(ends, dtype=np.float64)
        lengths = self._ends - self._starts
        self._cum_end = np.cumsum(lengths)
        self._cum = self._cum_end - lengths
        self._years = (first, last)

    def _cover(self, instants: FloatArray) -> None:
        finite = instants[np.isfinite(instants)]
        if finite.size == 0:
            if self._years is None:
                self._ensure_years(2000, 2000)
            return
        lo = datetime.fromtimestamp(float(finite.min()), self.tz).year
        hi = datetime.fromtimestamp(float(finite.max()), self.tz).year
        self._ensure_years(lo, hi)

    # -- the two operations ---------------------------------------------------------------

    def position(self, instants: npt.ArrayLike) -> FloatArray:
        """Business seconds from the index origin up to each instant."""
        t = _as_float(instants)
        self._cover(t)
        if self._starts.size == 0:
            return np.where(np.isfinite(t), 0.0, np.nan)
        i = np.searchsorted(self._starts, t, side="right") - 1
        inside = i >= 0
        j = np.where(inside, i, 0)
        pos = self._cum[j] + np.clip(t - self._starts[j], 0.0, self._ends[j] - self._starts[j])
        pos = np.where(inside, pos, 0.0)
        return np.where(np.isnan(t), np.nan, pos)

    def instant(self, positions: npt.ArrayLike) -> FloatArray:
        """The earliest instant at each business position (grows the index as needed)."""
        v = _as_float(positions)
        if self._years is None:
            self._ensure_years(2000, 2000)
        finite = v[np.isfinite(v)]
        while finite.size and self._cum_end.size and finite.max() > self._cum_end[-1]:
            if self._years is None or self._years[1] >= _LAST_YEAR:
                break
            years = self._years
            self._ensure_years(years[0], min(_LAST_YEAR, years[1] + max(1, years[1] - years[0])))
        if self._starts.size == 0:
            return np.full_like(v, np.nan)
        i = np.searchsorted(self._cum_end, v, side="left")
        beyond = i >= self._starts.size
        j = np.where(beyond, self._starts.size - 1, i)
        t = self._starts[j] + (v - self._cum[j])
        return np.where(np.isnan(v) | beyond, np.nan, t)

    def between(self, start: npt.ArrayLike, end: npt.ArrayLike) -> FloatArray:
        """Business seconds in [start, end) for each pair (0 when end is before start)."""
        s, e = _as_float(start), _as_float(end)
        return np.maximum(self.position(e) - self.position(s), 0.0)

    def add(self, start: npt.ArrayLike, seconds: npt.ArrayLike) -> FloatArray:
        """The instant at which `seconds` business seconds after `start` are used up."""
        return self.instant(self.position(start) + _as_float(seconds))


def _local(day: date, minutes: int, tz: ZoneInfo) -> float:
    if minutes >= 1440:
        nxt = day + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()
    return datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                    tzinfo=tz).timestamp()


def to_epoch(values: Iterable[datetime | None]) -> FloatArray:
    """Aware datetimes → float epoch seconds (NaN for None)."""
    return np.fromiter((v.timestamp() if v is not None else np.nan for v in values),
                       dtype=np.float64)


def from_epoch(value: float, tz: tzinfo) -> datetime | None:
    """Float epoch seconds → aware datetime in `tz`, to the millisecond (None for NaN)."""
    if value != value:  # NaN
        return None
    return datetime.fromtimestamp(round(value * 1000) / 1000, tz)

"""The vectorized business clock against a naive minute-stepping reference, and edges."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tests.naive_clock import NaiveClock
from tmabot.calendar import AbsoluteClock, BusinessCalendar, from_epoch, to_epoch

ZONES = ["Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
         "Europe/London", "America/Sao_Paulo", "UTC"]
COUNTRIES = [("FR", None), ("FR", "57"), ("US", None), ("DE", None), ("AU", None), (None, None)]


def _random_hours(rng: random.Random) -> tuple[tuple[int, int], ...]:
    if rng.random() < 0.1:
        return ((0, 1440),)  # around the clock on working days
    # Boundaries after 04:00 so that none falls inside a DST gap or fold.
    cuts = sorted(rng.sample(range(16, 97), 2 * rng.randint(1, 3)))
    ranges = tuple((cuts[i] * 15, cuts[i + 1] * 15) for i in range(0, len(cuts), 2))
    return tuple((a, min(b, 1440)) for a, b in ranges if b > a)


def _calendar_pair(rng: random.Random) -> tuple[BusinessCalendar, NaiveClock]:
    tz = rng.choice(ZONES)
    country, subdivision = rng.choice(COUNTRIES)
    workdays = frozenset(rng.sample(range(7), rng.randint(1, 7)))
    hours = _random_hours(rng)
    closed = frozenset(date(2026, 1, 1) + timedelta(days=rng.randint(0, 700))
                       for _ in range(rng.randint(0, 4)))
    cal = BusinessCalendar(timezone=tz, workdays=workdays, hours=hours, country=country,
                           subdivision=subdivision, closed_days=closed)
    holidays_closed = set()
    for year in range(2025, 2029):
        for day in _days(year):
            if cal.holiday(day):
                holidays_closed.add(day)
    return cal, NaiveClock(tz, workdays, hours, set(closed) | holidays_closed)


def _days(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]


def _random_interval(rng: random.Random) -> tuple[int, int]:
    base = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp())
    start = base + rng.randint(0, 3 * 365 * 24 * 60) * 60
    # Mostly short, some over a few days (weekends, holidays, DST nights).
    minutes = int(rng.choice([rng.randint(0, 600), rng.randint(0, 600),
                              rng.randint(0, 4 * 1440)]))
    return start, start + minutes * 60


def test_between_matches_the_naive_minute_clock_on_10000_random_intervals() -> None:
    rng = random.Random(20261125)
    checked = 0
    for _ in range(50):  # 50 random calendars × 200 intervals
        cal, naive = _calendar_pair(rng)
        pairs = [_random_interval(rng) for _ in range(200)]
        starts = np.array([p[0] for p in pairs], dtype=np.float64)
        ends = np.array([p[1] for p in pairs], dtype=np.float64)
        got = cal.between(starts, ends)
        for (s, e), g in zip(pairs, got, strict=True):
            assert g == naive.between(s, e), (cal, s, e)
            checked += 1
    assert checked == 10_000


def test_add_matches_the_naive_minute_clock() -> None:
    rng = random.Random(7)
    for _ in range(40):
        cal, naive = _calendar_pair(rng)
        starts, amounts = [], []
        for _ in range(25):
            s, _e = _random_interval(rng)
            starts.append(s)
            amounts.append(rng.randint(1, 10 * 60) * 60)
        got = cal.add(np.array(starts, dtype=np.float64), np.array(amounts, dtype=np.float64))
        for s, a, g in zip(starts, amounts, got, strict=True):
            assert g == naive.add(s, a), (cal, s, a)


def test_add_returns_the_end_of_a_working_range_not_the_next_opening() -> None:
    paris = ZoneInfo("Europe/Paris")
    cal = BusinessCalendar()
    start = datetime(2026, 11, 16, 17, 0, tzinfo=paris).timestamp()
    due = cal.add([start], [3600.0])[0]
    assert from_epoch(due, paris) == datetime(2026, 11, 16, 18, 0, tzinfo=paris)


def test_nan_in_nan_out_and_reversed_pairs_count_zero() -> None:
    cal = BusinessCalendar()
    t0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC).timestamp()
    got = cal.between([np.nan, t0 + 3600, t0], [t0, t0, np.nan])
    assert np.isnan(got[0]) and got[1] == 0.0 and np.isnan(got[2])
    assert np.isnan(cal.add([np.nan], [60.0])[0])


def test_index_grows_for_instants_far_from_the_first_use() -> None:
    cal = BusinessCalendar()
    paris = ZoneInfo("Europe/Paris")
    cal.between([datetime(2026, 1, 5, 9, tzinfo=paris).timestamp()],
                [datetime(2026, 1, 5, 10, tzinfo=paris).timestamp()])
    # 2019 and 2031 were not in the index; asking grows it, and the figure is right.
    a = datetime(2019, 3, 4, 9, tzinfo=paris).timestamp()
    b = datetime(2031, 3, 4, 9, tzinfo=paris).timestamp()
    assert cal.between([a], [a + 3600])[0] == 3600.0
    assert cal.between([b], [b + 3600])[0] == 3600.0
    # Far ahead: 2,000 business days (about 8 years) from March 2019 land in 2027.
    due = from_epoch(cal.add([a], [2000 * 8 * 3600.0])[0], paris)
    assert due is not None and due.year == 2027


def test_a_calendar_without_working_time_has_no_due_instant() -> None:
    cal = BusinessCalendar(workdays=frozenset(), country=None)
    assert cal.between([0.0 + 1.7e9], [1.7e9 + 86400])[0] == 0.0
    assert np.isnan(cal.add([1.7e9], [3600.0])[0])


def test_absolute_clock_counts_every_second() -> None:
    clock = AbsoluteClock()
    assert clock.between([0.0], [7200.0])[0] == 7200.0
    assert clock.add([10.0], [5.0])[0] == 15.0


def test_epoch_conversions_round_trip_to_the_millisecond() -> None:
    paris = ZoneInfo("Europe/Paris")
    when = datetime(2026, 10, 25, 2, 30, 0, 123000, tzinfo=paris)
    assert from_epoch(to_epoch([when])[0], paris) == when
    assert from_epoch(float("nan"), paris) is None


@pytest.mark.parametrize("subdivision,closed", [(None, False), ("57", True)])
def test_alsace_moselle_26_december(subdivision: str | None, closed: bool) -> None:
    cal = BusinessCalendar(subdivision=subdivision)
    assert (cal.hours_on(date(2025, 12, 26)) == ()) is closed
    assert cal.hours_on(date(2025, 12, 25)) == ()


def test_identical_to_businesstimedelta_on_2000_paris_intervals() -> None:
    bt = pytest.importorskip("businesstimedelta", reason="businesstimedelta (dev extra) absent")
    from datetime import time as dtime

    import holidays
    import pytz

    tz = pytz.timezone("Europe/Paris")
    days = [0, 1, 2, 3, 4]
    rules = bt.Rules([
        bt.WorkDayRule(start_time=dtime(9), end_time=dtime(18), working_days=days, tz=tz),
        bt.LunchTimeRule(start_time=dtime(12, 30), end_time=dtime(13, 30), working_days=days,
                         tz=tz),
        bt.HolidayRule(holidays.country_holidays("FR", years=range(2025, 2029)), tz=tz)])
    rng = np.random.default_rng(3)
    start = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
    a = np.floor(start + rng.random(2000) * 2 * 365 * 86400)
    b = a + np.floor(rng.exponential(3 * 86400.0, 2000))
    ours = BusinessCalendar().between(a, b)
    for s, e, got in zip(a.tolist(), b.tolist(), ours.tolist(), strict=True):
        d = rules.difference(datetime.fromtimestamp(s, UTC).astimezone(tz),
                             datetime.fromtimestamp(e, UTC).astimezone(tz))
        assert got == d.hours * 3600 + d.seconds

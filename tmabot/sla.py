"""The three SLA indicators of DOMAIN.md §2, computed from status histories over whole arrays.

Every figure is recomputed from the history each time (a calendar or policy change applies
retroactively). Instants are float epoch seconds (UTC); tickets and their transitions come
as columns (`SlaInput`), so a million tickets cost a handful of numpy passes, not a loop.

Events, per ticket, as of `now`:
- first response: the ticket's creation when it was created outside the *new* category,
  else the first transition out of *new* (Backlog → To Do is not a response);
- resolution: the last entry into *done* (a transition from outside *done* into it), only
  while the ticket is in *done* — a reopened ticket is unresolved, and the time it sat in
  *done* before reopening counts;
- delivery: the first entry into a staging status (creation if created in one), else the
  resolution.

Indicators: `response` runs creation → first response, `resolution` first response →
resolution, `delivery` creation → delivery. Time spent in a pause status never counts, and
pauses before the deadline push `due_at` back by their length on the indicator's clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tmabot.calendar import BusinessCalendar, FloatArray

INDICATORS = ("response", "resolution", "delivery")
PRIORITIES = ("P0", "P1", "P2", "P3")
STATES = ("met", "breached", "at_risk", "running", "not_started", "none")
MET, BREACHED, AT_RISK, RUNNING, NOT_STARTED, NONE = range(6)
NEW, IN_PROGRESS, DONE = 0, 1, 2
CATEGORY_CODES = {"todo": NEW, "in_progress": IN_PROGRESS, "done": DONE}
BUSINESS, ABSOLUTE = "business", "24/7"

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


# -- policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriorityTargets:
    """Targets of one priority, in hours on its clock (None: no target)."""

    response: float | None = None
    resolution: float | None = None
    delivery: float | None = None
    clock: str = BUSINESS

    def hours(self, indicator: str) -> float | None:
        value: float | None = getattr(self, indicator)
        return value


# DOMAIN.md §2, default policy. P0's response depends on the tier.
P0_RESPONSE_BY_TIER: dict[str | None, tuple[float, str]] = {
    "essentiel": (8.0, BUSINESS),
    "business": (4.0, BUSINESS),
    "critique": (2.0, ABSOLUTE),
    None: (2.0, BUSINESS),
}


def default_targets(tier: str | None) -> dict[str, PriorityTargets]:
    response, clock = P0_RESPONSE_BY_TIER.get(tier, P0_RESPONSE_BY_TIER[None])
    return {
        "P0": PriorityTargets(response=response, resolution=8.0, clock=clock),
        "P1": PriorityTargets(response=8.0),
        "P2": PriorityTargets(response=24.0, delivery=40.0),
        "P3": PriorityTargets(delivery=40.0),
    }


@dataclass(frozen=True)
class SlaPolicy:
    """A client's targets per priority, and when a running indicator is at risk."""

    targets: Mapping[str, PriorityTargets] = field(default_factory=lambda: default_targets(None))
    at_risk_ratio: float = 0.75

    @classmethod
    def for_client(cls, client: Any, sla_settings: Any = None, *,
                   day_hours: float = 8.0) -> SlaPolicy:
        """Defaults for the client's tier, with the client's `[clients.sla]` overrides.

        A target given in days ("3d") is that many working days (`day_hours` each) on a
        business clock, 24 h days on a 24/7 clock.
        """
        from tmabot.config import target_hours

        contract = getattr(client, "contract", None)
        tier = getattr(contract, "tier", None)
        targets = dict(default_targets(tier))
        overrides = getattr(client, "sla", None)
        ratio = getattr(sla_settings, "at_risk_ratio", 0.75)
        if overrides is not None:
            for level, given in overrides.priorities().items():
                base = targets[level]
                clock = given.get("clock") or base.clock
                per_day = 24.0 if clock == ABSOLUTE else day_hours
                merged: dict[str, float | None] = {}
                for ind in INDICATORS:
                    if ind not in given or given[ind] is None:
                        merged[ind] = base.hours(ind)
                    elif given[ind] is False:
                        merged[ind] = None
                    else:
                        merged[ind] = target_hours(given[ind], per_day)
                targets[level] = PriorityTargets(**merged, clock=clock)
            if overrides.at_risk_ratio is not None:
                ratio = overrides.at_risk_ratio
        return cls(targets=targets, at_risk_ratio=ratio)

    def arrays(self, priority_codes: npt.NDArray[np.int8], calendar: BusinessCalendar,
               ) -> tuple[dict[str, FloatArray], BoolArray]:
        """Per-ticket target seconds for each indicator (NaN: none) and the 24/7 flags."""
        table = np.full((len(INDICATORS), len(PRIORITIES)), np.nan)
        absolute = np.zeros(len(PRIORITIES), dtype=bool)
        for p, level in enumerate(PRIORITIES):
            t = self.targets[level]
            absolute[p] = t.clock == ABSOLUTE
            for i, ind in enumerate(INDICATORS):
                hours = t.hours(ind)
                if hours is not None:
                    table[i, p] = hours * 3600.0
        codes = np.asarray(priority_codes, dtype=np.int64)
        return ({ind: table[i][codes] for i, ind in enumerate(INDICATORS)}, absolute[codes])


# -- input and output columns -------------------------------------------------------------


@dataclass
class SlaInput:
    """Tickets (n) and their status transitions (m), as columns.

    Transitions must be sorted by (ticket, time) and include only those up to `now`.
    `initial_*` describe the status the ticket was created in (the first transition's
    "from", or the current status when it never moved).
    """

    created: FloatArray
    initial_category: npt.NDArray[np.int8]
    initial_pause: BoolArray
    initial_staging: BoolArray
    t_ticket: IntArray
    t_at: FloatArray
    t_from_category: npt.NDArray[np.int8]
    t_to_category: npt.NDArray[np.int8]
    t_to_pause: BoolArray
    t_to_staging: BoolArray
    t_from_staging: BoolArray
    # `[sla] response_on_comment`: the first agency comment per ticket (epoch s, NaN: none);
    # it answers the ticket when it comes before the first move out of *new*.
    first_agency_comment: FloatArray | None = None

    @property
    def n(self) -> int:
        return int(self.created.shape[0])


@dataclass
class Indicator:
    start: FloatArray
    stop: FloatArray
    elapsed: FloatArray  # seconds on the clock, pauses excluded
    due: FloatArray
    state: npt.NDArray[np.int8]
    target: FloatArray


@dataclass
class SlaResult:
    response_at: FloatArray
    resolved_at: FloatArray
    delivered_at: FloatArray
    paused: BoolArray  # in a pause status at `now`
    absolute: BoolArray  # 24/7 clock
    indicators: dict[str, Indicator]


# -- the engine -----------------------------------------------------------------------------


def _first_per_ticket(ticket: IntArray, mask: BoolArray, values: FloatArray, n: int,
                      *, last: bool = False) -> FloatArray:
    """values of the first (or last) row per ticket where mask holds; NaN elsewhere."""
    out = np.full(n, np.nan)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    tix = ticket[idx]
    if last:
        keep = np.empty(idx.size, dtype=bool)
        keep[-1] = True
        keep[:-1] = tix[1:] != tix[:-1]
    else:
        keep = np.empty(idx.size, dtype=bool)
        keep[0] = True
        keep[1:] = tix[1:] != tix[:-1]
    out[tix[keep]] = values[idx[keep]]
    return out


def _last_category(data: SlaInput) -> npt.NDArray[np.int8]:
    cat = data.initial_category.copy()
    m = data.t_ticket.size
    if m:
        last = np.empty(m, dtype=bool)
        last[-1] = True
        last[:-1] = data.t_ticket[1:] != data.t_ticket[:-1]
        cat[data.t_ticket[last]] = data.t_to_category[last]
    return cat


class _Clocks:
    """Positions on each ticket's own clock (business or 24/7)."""

    def __init__(self, calendar: BusinessCalendar, absolute: BoolArray) -> None:
        self.calendar = calendar
        self.absolute = absolute
        self.any_absolute = bool(absolute.any())
        self.all_absolute = bool(absolute.all()) if absolute.size else False

    def position(self, instants: FloatArray, tickets: IntArray | None = None) -> FloatArray:
        flags = self.absolute if tickets is None else self.absolute[tickets]
        if self.all_absolute:
            return instants.astype(np.float64, copy=True)
        pos = self.calendar.position(instants)
        if self.any_absolute:
            pos = np.where(flags, instants, pos)
        return pos

    def instant(self, positions: FloatArray) -> FloatArray:
        if self.all_absolute:
            return positions
        out = self.calendar.instant(np.where(self.absolute, 0.0, positions))
        if self.any_absolute:
            out = np.where(self.absolute, positions, out)
        return out


def compute(data: SlaInput, *, now: float, calendar: BusinessCalendar,
            targets: Mapping[str, FloatArray], absolute: BoolArray,
            at_risk_ratio: float | FloatArray = 0.75) -> SlaResult:
    """Events, elapsed time, due instants and states of the three indicators."""
    n = data.n
    tk, at = data.t_ticket, data.t_at
    created = data.created
    clocks = _Clocks(calendar, np.asarray(absolute, dtype=bool))

    # Events.
    left_new = (data.t_from_category == NEW) & (data.t_to_category != NEW)
    first_out = _first_per_ticket(tk, left_new, at, n)
    response_at = np.where(data.initial_category != NEW, created, first_out)
    if data.first_agency_comment is not None:  # whichever comes first (fmin skips NaN)
        response_at = np.fmin(response_at, np.maximum(data.first_agency_comment, created))
    category_now = _last_category(data)
    into_done = (data.t_to_category == DONE) & (data.t_from_category != DONE)
    last_done = _first_per_ticket(tk, into_done, at, n, last=True)
    resolved_at = np.where(category_now == DONE,
                           np.where(np.isnan(last_done), created, last_done), np.nan)
    into_staging = data.t_to_staging & ~data.t_from_staging
    first_staging = _first_per_ticket(tk, into_staging, at, n)
    delivered_at = np.where(data.initial_staging, created,
                            np.where(np.isnan(first_staging), resolved_at, first_staging))
    # A resolution cannot precede the response it follows (clock skew between hosts).
    resolved_at = np.where(resolved_at < response_at, response_at, resolved_at)

    # Pause segments: the initial status, then one segment per transition.
    m = tk.size
    nxt = np.full(m, now)
    if m:
        same = tk[1:] == tk[:-1]
        nxt[:-1] = np.where(same, at[1:], now)
    first_at = np.full(n, now)
    if m:
        is_first = np.empty(m, dtype=bool)
        is_first[0] = True
        is_first[1:] = tk[1:] != tk[:-1]
        first_at[tk[is_first]] = at[is_first]
    init_idx = np.flatnonzero(data.initial_pause)
    trans_idx = np.flatnonzero(data.t_to_pause)
    seg_ticket = np.concatenate([init_idx, tk[trans_idx]])
    seg_start = np.concatenate([created[init_idx], at[trans_idx]])
    seg_end = np.concatenate([np.minimum(first_at[init_idx], now), nxt[trans_idx]])
    order = np.lexsort((seg_start, seg_ticket))
    seg_ticket, seg_start, seg_end = seg_ticket[order], seg_start[order], seg_end[order]
    paused = np.zeros(n, dtype=bool)
    ongoing = seg_end >= now
    paused[seg_ticket[ongoing & (seg_start <= now)]] = True
    if seg_ticket.size:
        seg_first = np.empty(seg_ticket.size, dtype=bool)
        seg_first[0] = True
        seg_first[1:] = seg_ticket[1:] != seg_ticket[:-1]
    else:
        seg_first = np.zeros(0, dtype=bool)

    ratio = np.broadcast_to(np.asarray(at_risk_ratio, dtype=np.float64), (n,))
    # Each event's position on its ticket's clock, computed once and shared.
    p_created = clocks.position(created)
    p_response = clocks.position(response_at)
    p_resolved = clocks.position(resolved_at)
    p_delivered = clocks.position(delivered_at)
    business_now = float(calendar.position(np.asarray([now]))[0])
    p_now = np.where(clocks.absolute, now, business_now)
    spans = {"response": (created, response_at, p_created, p_response),
             "resolution": (response_at, resolved_at, p_response, p_resolved),
             "delivery": (created, delivered_at, p_created, p_delivered)}
    indicators: dict[str, Indicator] = {}
    for name in INDICATORS:
        start, stop, pos_start, pos_stop = spans[name]
        target = np.asarray(targets[name], dtype=np.float64)
        indicators[name] = _indicator(
            start, stop, target, now=now, clocks=clocks, ratio=ratio, paused_now=paused,
            seg=(seg_ticket, seg_start, seg_end, seg_first),
            positions=(pos_start, np.where(np.isnan(stop), p_now, pos_stop)))
    return SlaResult(response_at=response_at, resolved_at=resolved_at,
                     delivered_at=delivered_at, paused=paused,
                     absolute=clocks.absolute, indicators=indicators)


def _indicator(start: FloatArray, stop: FloatArray, target: FloatArray, *, now: float,
               clocks: _Clocks, ratio: FloatArray, paused_now: BoolArray,
               seg: tuple[IntArray, FloatArray, FloatArray, BoolArray],
               positions: tuple[FloatArray, FloatArray]) -> Indicator:
    n = start.size
    started = ~np.isnan(start)
    running = started & np.isnan(stop)
    end = np.where(running, now, stop)
    pos_start, pos_end = positions
    gross = np.where(started, np.maximum(pos_end - pos_start, 0.0), 0.0)

    seg_ticket, seg_start, seg_end, seg_first = seg
    paused_total = np.zeros(n)
    shift = np.zeros(n)
    if seg_ticket.size:
        s0, e0 = start[seg_ticket], end[seg_ticket]
        lo = np.maximum(seg_start, s0)
        hi = np.minimum(seg_end, e0)
        valid = (hi > lo) & ~np.isnan(s0)
        lo = np.where(valid, lo, np.nan)
        hi = np.where(valid, hi, np.nan)
        p_lo = clocks.position(lo, seg_ticket)
        p_hi = clocks.position(hi, seg_ticket)
        length = np.where(valid, np.maximum(np.nan_to_num(p_hi - p_lo), 0.0), 0.0)
        paused_total = np.bincount(seg_ticket, weights=length, minlength=n)
        # Work done before each pause = its position - the start - earlier pauses' lengths.
        csum = np.cumsum(length)
        before = csum - length
        group_base = np.maximum.accumulate(np.where(seg_first, np.arange(seg_ticket.size), 0))
        before = before - before[group_base]
        worked = p_lo - pos_start[seg_ticket] - before
        t_seg = target[seg_ticket]
        counts = valid & (worked < t_seg)
        shift = np.bincount(seg_ticket, weights=np.where(counts, length, 0.0), minlength=n)

    elapsed = np.maximum(gross - paused_total, 0.0)
    has_target = ~np.isnan(target)
    due = clocks.instant(pos_start + target + shift)
    due = np.where(has_target & started & ~(running & paused_now), due, np.nan)

    state = np.full(n, NONE, dtype=np.int8)
    over = elapsed >= target
    state[has_target & started & ~running & ~over] = MET
    state[has_target & started & over] = BREACHED
    risky = has_target & running & ~over & (elapsed >= ratio * target)
    state[risky] = AT_RISK
    state[has_target & running & ~over & ~risky] = RUNNING
    state[has_target & ~started] = NOT_STARTED
    elapsed = np.where(started, elapsed, 0.0)
    return Indicator(start=start, stop=np.where(running, np.nan, stop), elapsed=elapsed,
                     due=due, state=state, target=target)


# -- helpers for callers --------------------------------------------------------------------


def status_matcher(names: Sequence[str], statuses: Mapping[str, tuple[str, str]] | None = None):
    """A predicate (status id, name at the time) → bool, matching the configured names
    against the name at the time or the status's current name, case-insensitively."""
    wanted = {n.strip().casefold() for n in names}
    current = {sid: name.casefold() for sid, (name, _cat) in (statuses or {}).items()}

    def match(status_id: str | None, name: str | None) -> bool:
        if name is not None and name.strip().casefold() in wanted:
            return True
        return status_id is not None and current.get(status_id) in wanted

    return match


@dataclass(frozen=True)
class Move:
    """One status change, for `build_input`."""

    at: float
    from_status: str | None
    to_status: str | None
    from_category: str
    to_category: str
    from_status_id: str | None = None
    to_status_id: str | None = None


def build_input(created: Sequence[float], current: Sequence[tuple[str | None, str | None, str]],
                moves: Sequence[Sequence[Move]], *, now: float, pause: Any, staging: Any,
                first_agency_comment: Sequence[float] | None = None) -> SlaInput:
    """Columns from per-ticket lists (for store-sized data; the benchmark builds arrays).

    `current[i]` is (status id, status name, category) of ticket i today; `moves[i]` its
    transitions in time order (those after `now` are ignored); `pause`/`staging` are
    `status_matcher` predicates; `first_agency_comment[i]` (optional) the instant of ticket
    i's first agency comment up to `now`, NaN without one.
    """
    n = len(created)
    init_cat = np.empty(n, dtype=np.int8)
    init_pause = np.zeros(n, dtype=bool)
    init_staging = np.zeros(n, dtype=bool)
    cols: dict[str, list[Any]] = {k: [] for k in
                                  ("tk", "at", "fc", "tc", "tp", "ts", "fs")}
    for i in range(n):
        history = moves[i]
        if history:
            first = history[0]
            sid, name, cat = first.from_status_id, first.from_status, first.from_category
        else:
            sid, name, cat = current[i]
        init_cat[i] = CATEGORY_CODES.get(cat, NEW)
        init_pause[i] = pause(sid, name)
        init_staging[i] = staging(sid, name)
        for mv in history:
            if mv.at > now:
                break
            cols["tk"].append(i)
            cols["at"].append(mv.at)
            cols["fc"].append(CATEGORY_CODES.get(mv.from_category, NEW))
            cols["tc"].append(CATEGORY_CODES.get(mv.to_category, NEW))
            cols["tp"].append(pause(mv.to_status_id, mv.to_status))
            cols["ts"].append(staging(mv.to_status_id, mv.to_status))
            cols["fs"].append(staging(mv.from_status_id, mv.from_status))
    return SlaInput(
        created=np.asarray(created, dtype=np.float64), initial_category=init_cat,
        initial_pause=init_pause, initial_staging=init_staging,
        t_ticket=np.asarray(cols["tk"], dtype=np.int64),
        t_at=np.asarray(cols["at"], dtype=np.float64),
        t_from_category=np.asarray(cols["fc"], dtype=np.int8),
        t_to_category=np.asarray(cols["tc"], dtype=np.int8),
        t_to_pause=np.asarray(cols["tp"], dtype=bool),
        t_to_staging=np.asarray(cols["ts"], dtype=bool),
        t_from_staging=np.asarray(cols["fs"], dtype=bool),
        first_agency_comment=None if first_agency_comment is None else np.asarray(
            first_agency_comment, dtype=np.float64))

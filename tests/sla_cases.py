"""A small language for hand-computed SLA cases: statuses by name, times in Paris local time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from tmabot.calendar import BusinessCalendar, from_epoch
from tmabot.sla import (
    INDICATORS,
    PRIORITIES,
    STATES,
    Move,
    SlaPolicy,
    build_input,
    compute,
    default_targets,
    status_matcher,
)

PARIS = ZoneInfo("Europe/Paris")
CATEGORY = {
    "Backlog": "todo", "À faire": "todo", "En cours": "in_progress",
    "En attente client": "in_progress", "Recette": "in_progress", "QA": "in_progress",
    "Terminé": "done", "Annulé": "done",
}
PAUSE = ("En attente client",)
STAGING = ("Recette",)


def t(text: str) -> datetime:
    """'2026-11-20 17:30' in Paris, or a full ISO string with its own offset."""
    if "+" in text[10:] or text.endswith("Z"):
        return datetime.fromisoformat(text)
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=PARIS)


@dataclass
class Case:
    name: str
    created: str
    moves: Sequence[tuple[str, str, str]]  # (at, from, to)
    now: str
    priority: str = "P1"
    tier: str | None = "business"
    initial: str = "À faire"  # the status it was created in, when it never moved
    expect: dict[str, tuple[float, str, str | None]] = field(default_factory=dict)
    calendar: dict[str, Any] = field(default_factory=dict)
    status_ids: dict[str, str] = field(default_factory=dict)  # name at the time -> id
    current_names: dict[str, str] = field(default_factory=dict)  # id -> name today
    targets: dict[str, Any] | None = None


def run(case: Case) -> dict[str, tuple[float, str, datetime | None]]:
    cal = BusinessCalendar(**case.calendar)
    statuses = {sid: (name, "in_progress") for sid, name in case.current_names.items()}
    pause = status_matcher(PAUSE, statuses)
    staging = status_matcher(STAGING, statuses)
    moves = [Move(t(a).timestamp(), f, to, CATEGORY[f], CATEGORY[to],
                  case.status_ids.get(f), case.status_ids.get(to)) for a, f, to in case.moves]
    now = t(case.now).timestamp()
    last = case.moves[-1][2] if case.moves else case.initial
    data = build_input([t(case.created).timestamp()],
                       [(case.status_ids.get(last), last, CATEGORY[last])], [moves],
                       now=now, pause=pause, staging=staging)
    policy = SlaPolicy(targets=case.targets or default_targets(case.tier))
    targets, absolute = policy.arrays(np.array([PRIORITIES.index(case.priority)], np.int8), cal)
    result = compute(data, now=now, calendar=cal, targets=targets, absolute=absolute,
                     at_risk_ratio=policy.at_risk_ratio)
    out = {}
    for name in INDICATORS:
        ind = result.indicators[name]
        out[name] = (round(float(ind.elapsed[0]) / 3600, 6), STATES[int(ind.state[0])],
                     from_epoch(float(ind.due[0]), PARIS))
    return out

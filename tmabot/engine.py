"""Classification and SLA clocks over one batch of tickets, side by side.

The two computations are independent. Classification is mostly string work (it holds
the GIL); the SLA clocks are numpy passes over whole arrays (which release it). On a
large batch the SLA clocks therefore run on a second thread while the tickets are
classified, which uses both cores of a small machine; a small batch runs inline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from tmabot.calendar import BusinessCalendar, FloatArray
from tmabot.classify import Classification, Rule, TicketColumns, classify
from tmabot.sla import BoolArray, SlaInput, SlaResult, compute

PARALLEL_FROM = 50_000  # tickets: below this, a thread costs more than it saves


def run_batch(columns: TicketColumns, rules: Sequence[Rule], data: SlaInput, *, now: float,
              calendar: BusinessCalendar, targets: Mapping[str, FloatArray],
              absolute: BoolArray, at_risk_ratio: float | FloatArray = 0.75,
              run_hours_allowance: float | None = None, run_ticket_max_hours: float = 1.0,
              ) -> tuple[Classification, SlaResult]:
    """(classification, SLA figures) of the same n tickets."""
    def measure() -> SlaResult:
        return compute(data, now=now, calendar=calendar, targets=targets, absolute=absolute,
                       at_risk_ratio=at_risk_ratio)

    def sort() -> Classification:
        return classify(columns, rules, run_hours_allowance=run_hours_allowance,
                        run_ticket_max_hours=run_ticket_max_hours)

    if data.n < PARALLEL_FROM:
        return sort(), measure()
    # Build the calendar's index before the threads share it.
    calendar.position(data.created[:1])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tmabot-sla") as pool:
        sla = pool.submit(measure)
        classes = sort()
        return classes, sla.result()

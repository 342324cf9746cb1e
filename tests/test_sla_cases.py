"""Hand-computed SLA cases, each named after the bug it prevents.

Default calendar: France, Mon–Fri 09:00–12:30 and 13:30–18:00 (8 business hours a day),
Europe/Paris. Default policy (DOMAIN.md §2): P0 response by tier (Essentiel 8 bh, Business
4 bh, Critique 2 h on 24/7) and resolution 8 h on the same clock; P1 response 8 bh; P2
response 24 bh and delivery 40 bh; P3 delivery 40 bh.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.sla_cases import Case, run, t
from tmabot.sla import PriorityTargets

CASES = [
    Case("friday_1730_answered_monday_0930_is_one_business_hour",
         created="2026-11-20 17:30", moves=[("2026-11-23 09:30", "À faire", "En cours")],
         now="2026-11-23 12:00",
         expect={"response": (1.0, "met", "2026-11-23 17:30")}),
    Case("created_on_a_holiday_counts_from_the_next_opening",  # Wed 11 Nov 2026, Armistice
         created="2026-11-11 10:00", moves=[("2026-11-12 10:00", "À faire", "En cours")],
         now="2026-11-12 12:00", expect={"response": (1.0, "met", "2026-11-12 18:00")}),
    Case("created_during_lunch_starts_at_1330",
         created="2026-11-16 12:45", moves=[("2026-11-16 14:00", "À faire", "En cours")],
         now="2026-11-16 15:00", expect={"response": (0.5, "met", "2026-11-17 12:30")}),
    Case("created_on_saturday_starts_monday",
         created="2026-11-21 10:00", moves=[("2026-11-23 11:00", "À faire", "En cours")],
         now="2026-11-23 12:00", expect={"response": (2.0, "met", "2026-11-23 18:00")}),
    Case("critique_p0_across_the_autumn_dst_change_is_seven_hours",
         created="2026-10-24T23:00:00+02:00",
         moves=[("2026-10-25T05:00:00+01:00", "À faire", "En cours")],
         now="2026-10-25T06:00:00+01:00", priority="P0", tier="critique",
         expect={"response": (7.0, "breached", "2026-10-25T01:00:00+02:00"),
                 "resolution": (1.0, "running", "2026-10-25T13:00:00+01:00")}),
    Case("critique_p0_across_the_spring_dst_change_is_two_hours",
         created="2026-03-29T01:00:00+01:00",
         moves=[("2026-03-29T04:00:00+02:00", "À faire", "En cours")],
         now="2026-03-29T05:00:00+02:00", priority="P0", tier="critique",
         expect={"response": (2.0, "breached", "2026-03-29T04:00:00+02:00")}),
    Case("business_clock_ignores_the_spring_dst_night",
         created="2026-03-27 17:00", moves=[("2026-03-30 10:00", "À faire", "En cours")],
         now="2026-03-30 11:00", expect={"response": (2.0, "met", "2026-03-30 17:00")}),
    Case("pause_across_a_weekend_does_not_count",
         created="2026-11-20 10:00", priority="P2",
         moves=[("2026-11-20 11:00", "À faire", "En cours"),
                ("2026-11-20 14:00", "En cours", "En attente client"),
                ("2026-11-23 14:00", "En attente client", "En cours"),
                ("2026-11-23 16:00", "En cours", "Recette")],
         now="2026-11-24 09:00",
         # delivery: Fri 10:00–14:00 (3 bh) + Mon 14:00–16:00 (2 bh); the pause (Fri 14:00 →
         # Mon 14:00 = 8 bh) pushes the 40 bh deadline from Fri 27 10:00 to Mon 30 10:00.
         expect={"response": (1.0, "met", "2026-11-25 10:00"),
                 "delivery": (5.0, "met", "2026-11-30 10:00")}),
    Case("pause_then_priority_change_uses_the_current_priority_and_keeps_the_pause_out",
         created="2026-11-16 09:00", priority="P1",  # was P2, raised to P1 today
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-16 11:00", "En cours", "En attente client"),
                ("2026-11-17 11:00", "En attente client", "En cours")],
         now="2026-11-17 12:00",
         expect={"response": (1.0, "met", "2026-11-16 18:00"),
                 "delivery": (3.0, "none", None)}),
    Case("reopened_ticket_counts_the_time_it_sat_in_done",
         created="2026-11-16 09:00", priority="P0", tier="business",
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-16 12:00", "En cours", "Terminé"),
                ("2026-11-17 09:00", "Terminé", "En cours"),
                ("2026-11-17 11:00", "En cours", "Terminé")],
         now="2026-11-17 12:00",
         # resolution: Mon 10:00–18:00 (7 bh) + Tue 09:00–11:00 (2 bh) = 9 bh > 8 bh.
         expect={"response": (1.0, "met", "2026-11-16 14:00"),
                 "resolution": (9.0, "breached", "2026-11-17 10:00")}),
    Case("reopened_ticket_is_unresolved_until_done_again",
         created="2026-11-16 09:00", priority="P0", tier="business",
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-16 12:00", "En cours", "Terminé"),
                ("2026-11-17 09:00", "Terminé", "En cours")],
         now="2026-11-17 09:30",
         expect={"resolution": (7.5, "at_risk", "2026-11-17 10:00")}),
    Case("ticket_created_in_progress_is_answered_at_creation",
         created="2026-11-16 10:00", initial="En cours", moves=[],
         now="2026-11-16 11:00", expect={"response": (0.0, "met", "2026-11-17 10:00")}),
    Case("due_date_falling_on_a_holiday_moves_past_it",
         created="2026-11-10 14:00", moves=[], now="2026-11-10 15:00",
         # Tue 14:00–18:00 = 4 bh, Wed 11 Nov is closed, Thu 09:00–14:00 = the other 4 bh.
         expect={"response": (1.0, "running", "2026-11-12 14:00")}),
    Case("alsace_moselle_closes_on_26_december",
         created="2025-12-24 17:00", moves=[("2025-12-29 10:00", "À faire", "En cours")],
         now="2025-12-29 11:00", calendar={"subdivision": "57"},
         expect={"response": (2.0, "met", "2025-12-29 17:00")}),
    Case("rest_of_france_works_on_26_december",
         created="2025-12-24 17:00", moves=[("2025-12-29 10:00", "À faire", "En cours")],
         now="2025-12-29 11:00",
         expect={"response": (10.0, "breached", "2025-12-26 17:00")}),
    Case("alsace_moselle_closes_on_good_friday",
         created="2026-04-02 17:00", moves=[("2026-04-07 10:00", "À faire", "En cours")],
         now="2026-04-07 11:00", calendar={"subdivision": "57"},
         # Thu 17:00–18:00, Good Friday 3 Apr and Easter Monday 6 Apr closed, Tue 09:00–10:00.
         expect={"response": (2.0, "met", "2026-04-07 17:00")}),
    Case("target_in_business_days_is_not_calendar_days",  # GLPI bug #10594
         created="2026-11-16 10:00", priority="P3",
         moves=[("2026-11-16 11:00", "À faire", "En cours")], now="2026-11-16 12:00",
         # 40 bh = 5 business days: next Monday 10:00, not Saturday 10:00 (5 calendar days)
         # nor Wednesday 02:00 (40 hours).
         expect={"delivery": (2.0, "running", "2026-11-23 10:00")}),
    Case("target_in_hours_on_a_24_7_clock_is_absolute",
         created="2026-11-16 10:00", priority="P3",
         moves=[("2026-11-16 11:00", "À faire", "En cours")], now="2026-11-16 12:00",
         targets={"P0": PriorityTargets(), "P1": PriorityTargets(), "P2": PriorityTargets(),
                  "P3": PriorityTargets(delivery=40.0, clock="24/7")},
         expect={"delivery": (2.0, "running", "2026-11-18 02:00")}),
    Case("created_before_opening_counts_from_0900",
         created="2026-11-16 07:30", moves=[("2026-11-16 09:15", "À faire", "En cours")],
         now="2026-11-16 10:00", expect={"response": (0.25, "met", "2026-11-16 18:00")}),
    Case("created_after_closing_counts_from_the_next_morning",
         created="2026-11-16 19:00", moves=[("2026-11-17 09:30", "À faire", "En cours")],
         now="2026-11-17 10:00", expect={"response": (0.5, "met", "2026-11-17 18:00")}),
    Case("target_used_up_at_1800_is_due_at_1800_not_next_morning",
         created="2026-11-16 09:00", moves=[], now="2026-11-16 17:00",
         expect={"response": (7.0, "at_risk", "2026-11-16 18:00")}),
    Case("at_risk_starts_at_75_percent_of_the_target",
         created="2026-11-16 09:00", moves=[], now="2026-11-16 16:00",  # 6 bh of 8
         expect={"response": (6.0, "at_risk", "2026-11-16 18:00")}),
    Case("just_under_75_percent_is_still_running",
         created="2026-11-16 09:00", moves=[], now="2026-11-16 15:59",
         expect={"response": (5.983333, "running", "2026-11-16 18:00")}),
    Case("running_exactly_at_the_target_is_breached",
         created="2026-11-16 09:00", moves=[], now="2026-11-17 09:00",
         expect={"response": (8.0, "breached", "2026-11-16 18:00")}),
    Case("stopped_exactly_at_the_target_is_breached",
         created="2026-11-16 09:00", moves=[("2026-11-16 18:00", "À faire", "En cours")],
         now="2026-11-17 09:00", expect={"response": (8.0, "breached", "2026-11-16 18:00")}),
    Case("backlog_to_todo_is_not_a_response",
         created="2026-11-16 09:00", initial="Backlog",
         moves=[("2026-11-16 10:00", "Backlog", "À faire"),
                ("2026-11-16 11:00", "À faire", "En cours")],
         now="2026-11-16 12:00", expect={"response": (2.0, "met", "2026-11-16 18:00")}),
    Case("done_then_canceled_is_not_a_new_resolution",
         created="2026-11-16 09:00", priority="P0", tier="business",
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-16 12:00", "En cours", "Terminé"),
                ("2026-11-16 15:00", "Terminé", "Annulé")],
         now="2026-11-17 09:00",
         expect={"resolution": (2.0, "met", "2026-11-17 10:00")}),
    Case("paused_now_has_no_due_date_and_its_time_does_not_count",
         created="2026-11-16 09:00", priority="P0", tier="business",
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-16 11:00", "En cours", "En attente client")],
         now="2026-11-16 16:00",
         expect={"resolution": (1.0, "running", None)}),
    Case("pause_before_the_deadline_shifts_it",
         created="2026-11-16 09:00", priority="P0", tier="business",
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-16 11:00", "En cours", "En attente client"),
                ("2026-11-16 14:00", "En attente client", "En cours")],
         now="2026-11-16 15:00",
         # 8 h from 10:00 would be Tue 10:00; the 2 bh pause (11:00–12:30, 13:30–14:00)
         # moves it to Tue 12:00.
         expect={"resolution": (2.0, "running", "2026-11-17 12:00")}),
    Case("pause_after_the_deadline_does_not_shift_it",
         created="2026-11-16 09:00", priority="P1",
         moves=[("2026-11-17 10:00", "À faire", "En attente client"),
                ("2026-11-17 12:00", "En attente client", "En cours")],
         now="2026-11-17 13:00",
         # answered when it left "À faire" for the pause status: 9 bh, breached at Mon 18:00.
         expect={"response": (9.0, "breached", "2026-11-16 18:00")}),
    Case("p3_has_no_response_target_but_its_time_is_shown",
         created="2026-11-16 09:00", priority="P3",
         moves=[("2026-11-16 12:00", "À faire", "En cours")], now="2026-11-16 13:00",
         expect={"response": (3.0, "none", None),
                 "resolution": (0.5, "none", None)}),
    Case("resolution_before_any_response_is_not_started",
         created="2026-11-16 09:00", priority="P0", tier="business", moves=[],
         now="2026-11-16 10:00",
         expect={"response": (1.0, "running", "2026-11-16 14:00"),
                 "resolution": (0.0, "not_started", None)}),
    Case("critique_p0_on_a_saturday_runs_around_the_clock",
         created="2026-11-21 10:00", priority="P0", tier="critique",
         moves=[("2026-11-21 11:30", "À faire", "En cours")], now="2026-11-21 12:00",
         expect={"response": (1.5, "met", "2026-11-21 12:00"),
                 "resolution": (0.5, "running", "2026-11-21 19:30")}),
    Case("essentiel_p0_answers_within_eight_business_hours",
         created="2026-11-16 09:00", priority="P0", tier="essentiel",
         moves=[("2026-11-16 15:00", "À faire", "En cours")], now="2026-11-16 16:00",
         expect={"response": (5.0, "met", "2026-11-16 18:00")}),
    Case("business_p0_answers_within_four_business_hours",
         created="2026-11-16 09:00", priority="P0", tier="business",
         moves=[("2026-11-16 15:00", "À faire", "En cours")], now="2026-11-16 16:00",
         expect={"response": (5.0, "breached", "2026-11-16 14:00")}),
    Case("delivery_stops_at_the_first_entry_into_staging",
         created="2026-11-16 09:00", priority="P2",
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-17 10:00", "En cours", "Recette"),
                ("2026-11-17 11:00", "Recette", "En cours"),
                ("2026-11-18 11:00", "En cours", "Recette")],
         now="2026-11-18 12:00", expect={"delivery": (9.0, "met", "2026-11-20 18:00")}),
    Case("delivery_without_staging_is_the_resolution",
         created="2026-11-16 09:00", priority="P2",
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-16 16:00", "En cours", "Terminé")],
         now="2026-11-17 12:00", expect={"delivery": (6.0, "met", "2026-11-20 18:00")}),
    Case("staging_matched_by_the_name_it_had_at_the_time",
         created="2026-11-16 09:00", priority="P2",
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-16 12:00", "En cours", "Recette")],
         status_ids={"Recette": "10004"}, current_names={"10004": "QA"},
         now="2026-11-16 13:00", expect={"delivery": (3.0, "met", "2026-11-20 18:00")}),
    Case("staging_matched_by_its_current_name_after_a_rename",
         created="2026-11-16 09:00", priority="P2",
         moves=[("2026-11-16 10:00", "À faire", "En cours"),
                ("2026-11-16 12:00", "En cours", "QA")],
         status_ids={"QA": "10004"}, current_names={"10004": "Recette"},
         now="2026-11-16 13:00", expect={"delivery": (3.0, "met", "2026-11-20 18:00")}),
    Case("created_in_done_is_resolved_at_creation",
         created="2026-11-16 09:00", priority="P0", tier="business", initial="Terminé",
         moves=[], now="2026-11-16 10:00",
         expect={"response": (0.0, "met", "2026-11-16 14:00"),
                 "resolution": (0.0, "met", "2026-11-16 18:00")}),
    Case("transitions_after_the_evaluation_instant_are_ignored",
         created="2026-11-16 09:00", moves=[("2026-11-16 17:00", "À faire", "En cours")],
         now="2026-11-16 16:00", expect={"response": (6.0, "at_risk", "2026-11-16 18:00")}),
    Case("agency_closure_day_from_config_is_closed",
         created="2026-12-23 17:00", moves=[("2026-12-28 10:00", "À faire", "En cours")],
         now="2026-12-28 11:00", calendar={"closed_days": frozenset({date(2026, 12, 24)})},
         # Wed 23 17:00–18:00, Thu 24 closed, Fri 25 Christmas, Mon 28 09:00–10:00.
         expect={"response": (2.0, "met", "2026-12-28 17:00")}),
    Case("instants_on_the_lunch_boundaries_count_nothing_at_lunch",
         created="2026-11-16 12:30", moves=[("2026-11-16 13:30", "À faire", "En cours")],
         now="2026-11-16 14:00", expect={"response": (0.0, "met", "2026-11-17 12:30")}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hand_computed_case(case: Case) -> None:
    got = run(case)
    for indicator, (hours, state, due) in case.expect.items():
        g_hours, g_state, g_due = got[indicator]
        assert g_state == state, (indicator, got[indicator])
        assert g_hours == pytest.approx(hours, abs=1e-6), (indicator, got[indicator])
        if due is None:
            assert g_due is None, (indicator, got[indicator])
        else:
            assert g_due == t(due), (indicator, got[indicator])


def test_there_are_at_least_thirty_cases_with_distinct_names() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)

"""Timesheet CSV imports: Toggl Track, Clockify, Harvest and the generic format."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import pytest

from tmabot.timesheets import (
    FORMATS,
    ParseResult,
    TimeEntry,
    TimesheetError,
    detect_format,
    parse_text,
    parse_timesheet,
)

DATA = Path(__file__).parent / "data" / "timesheets"

TOGGL_HEADER = (
    "User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,"
    "End time,Duration,Tags,Amount ()"
)
CLOCKIFY_HEADER = (
    "Project,Client,Description,Task,User,Group,Email,Tags,Billable,Start Date,Start Time,"
    "End Date,End Time,Duration (h),Duration (decimal),Billable Rate (USD),Billable Amount (USD)"
)
HARVEST_HEADER = (
    "Date,Client,Project,Project Code,Task,Notes,Hours,Hours Rounded,Billable?,Invoiced?,"
    "Approved?,First Name,Last Name,Roles,Employee?,Billable Rate,Billable Amount,Cost Rate,"
    "Cost Amount,Currency,External Reference URL"
)

Row = tuple[int, str | None, str, int, str | None, str | None, str]


def summary(result: ParseResult) -> list[Row]:
    """(line, key, started_at with offset, seconds, email, name, comment) per entry."""
    return [
        (
            e.line,
            e.issue_key,
            e.started_at.isoformat(),
            e.seconds,
            e.person_email,
            e.person_name,
            e.comment,
        )
        for e in result.entries
    ]


def ids(result: ParseResult) -> list[str]:
    return [e.entry_id for e in result.entries]


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (TOGGL_HEADER, "toggl"),
        (CLOCKIFY_HEADER, "clockify"),
        (HARVEST_HEADER, "harvest"),
        ("date,issue,hours,person,comment", "generic"),
        ("hours,issue,date", "generic"),
        # BOM, case, surrounding spaces, order and extra columns do not matter
        ("\ufeffDESCRIPTION , start TIME,Duration,Start Date,Member,Extra", "toggl"),
        ("Start Date,Start Time,Description,Duration (decimal)", "clockify"),
        ("notes,HOURS,Task,date,Project", "harvest"),
    ],
)
def test_detect_format(header: str, expected: str) -> None:
    assert detect_format(header.split(",")) == expected
    assert expected in FORMATS


def test_unknown_header_is_one_clear_line() -> None:
    with pytest.raises(TimesheetError) as info:
        detect_format(["Nom", "Prénom", "Temps passé"])
    message = str(info.value)
    assert "\n" not in message
    assert "Nom, Prénom, Temps passé" in message
    for name in ("Toggl", "Clockify", "Harvest", "date,issue,hours"):
        assert name in message


def test_bad_file_raises() -> None:
    with pytest.raises(TimesheetError, match=r"^unrecognised timesheet header \(Nom, Prénom"):
        parse_timesheet(DATA / "bad.csv")


# --------------------------------------------------------------------------- sample exports


def test_toggl_export() -> None:
    result = parse_timesheet(DATA / "toggl.csv")
    assert result.format == "toggl"
    assert summary(result) == [
        (
            2,
            "INI-12",
            "2026-10-23T09:15:00+02:00",
            5430,
            "camille@agence-web.fr",
            "Camille Dupont",
            "INI-12 Correction du panier",
        ),
        # key only in Task; 01:30 on the DST day is still summer time...
        (
            4,
            "INI-7",
            "2026-10-25T01:30:00+02:00",
            2700,
            "hugo@agence-web.fr",
            "Hugo Bernard",
            "Mise à jour de sécurité",
        ),
        # ... 09:00 is winter time
        (
            5,
            "INI-12",
            "2026-10-25T09:00:00+01:00",
            1200,
            "hugo@agence-web.fr",
            "Hugo Bernard",
            "Déploiement INI-12, vérification en préprod",
        ),
        (
            6,
            "INI-12",
            "2026-10-25T09:00:00+01:00",
            1200,
            "hugo@agence-web.fr",
            "Hugo Bernard",
            "Déploiement INI-12, vérification en préprod",
        ),
    ]
    assert result.problems == [
        "line 3: no issue key in 'Réunion d'équipe'",
        "line 7: duration '00:00:00' is not positive",
    ]
    assert {e.source_format for e in result.entries} == {"toggl"}


def test_clockify_us_export() -> None:
    result = parse_timesheet(DATA / "clockify.csv")
    assert result.format == "clockify"
    lea = ("lea@agence-web.fr", "Léa Martin")
    assert summary(result) == [
        (
            2,
            "ACME-3",
            "2026-10-23T14:00:00+02:00",
            5400,
            *lea,
            "ACME-3 Formulaire de contact cassé",
        ),
        # key in Task; 10/25 is the DST day
        (3, "ACME-8", "2026-10-25T09:05:00+01:00", 2700, *lea, "Lenteurs de la page d'accueil"),
        # 12:10 PM is ten past noon; Duration (h) empty -> Duration (decimal)
        (
            5,
            "ACME-9",
            "2026-10-27T12:10:00+01:00",
            900,
            "hugo@agence-web.fr",
            "Hugo Bernard",
            "ACME-9 Relecture des contenus",
        ),
    ]
    assert result.problems == [
        "line 4: no issue key in 'Veille technique'",
        "line 6: duration '' is not a number",
    ]


def test_clockify_eu_export_is_day_first() -> None:
    result = parse_timesheet(DATA / "clockify-eu.csv")
    assert result.format == "clockify"
    lea = ("lea@agence-web.fr", "Léa Martin")
    assert summary(result) == [
        (2, "ACME-3", "2026-10-23T14:00:00+02:00", 5400, *lea, "ACME-3 Correctif du formulaire"),
        # 05/11 is 5 November (23/10 on line 2 settles the order), not 11 May
        (3, "ACME-4", "2026-11-05T08:00:00+01:00", 3600, *lea, "ACME-4 Mise en production"),
    ]
    assert result.problems == [
        "line 4: no issue key in 'Point téléphonique avec le client'",
        "line 5: date '31/02/2026' is not a valid date",
    ]


def test_harvest_export() -> None:
    result = parse_timesheet(DATA / "harvest.csv")
    assert result.format == "harvest"
    camille, lea = (None, "Camille Dupont"), (None, "Léa Martin")
    assert summary(result) == [
        # key only in the Linear URL; date-only rows are placed at noon
        (
            2,
            "INI-12",
            "2026-10-23T12:00:00+02:00",
            9000,
            *camille,
            "Correction de l'export comptable",
        ),
        (
            3,
            "INI-7",
            "2026-10-25T12:00:00+01:00",
            2700,
            None,
            "Hugo Bernard",
            "Appel avec le client, suite de INI-7",
        ),
        # multi-line notes: the row starts on line 4 and ends on line 5
        (
            4,
            "INI-20",
            "2026-10-26T12:00:00+01:00",
            3600,
            *camille,
            "Mise en production INI-20\nsuite à la recette",
        ),
        # Jira URL, twice the same row
        (7, "ACME-3", "2026-10-27T12:00:00+01:00", 1800, *lea, "Recette du correctif"),
        (8, "ACME-3", "2026-10-27T12:00:00+01:00", 1800, *lea, "Recette du correctif"),
    ]
    assert result.problems == [
        "line 6: no issue key in 'Point hebdomadaire'",
        "line 9: hours '' is not a number",
    ]


def test_generic_export() -> None:
    result = parse_timesheet(DATA / "generic.csv")
    assert result.format == "generic"
    assert summary(result) == [
        (2, "INI-12", "2026-10-23T12:00:00+02:00", 5400, "camille@agence-web.fr", None,
         "Correction du panier"),
        # key upper-cased, decimal comma, a person without '@' is a name
        (3, "INI-7", "2026-10-25T12:00:00+01:00", 1800, None, "Hugo Bernard",
         "Mise à jour de sécurité"),
        # naive ISO datetime = local time; aware one converted to the time zone
        (4, "INI-12", "2026-10-26T16:30:00+01:00", 7200, None, None, "Déploiement"),
        (5, "INI-13", "2026-10-26T09:00:00+01:00", 3600, None, None, ""),
        # empty issue column: the key is looked for in the comment
        (7, "INI-14", "2026-10-27T12:00:00+01:00", 900, None, None,
         "Relecture INI-14 avant envoi"),
    ]  # fmt: skip
    assert result.problems == [
        "line 6: no issue key in 'Réunion interne'",
        "line 8: issue 'foo' is not an issue key",
        "line 9: hours '-1' is not positive",
        "line 10: date '2026-13-01' is not an ISO date or datetime",
    ]


def test_cp1252_file_is_readable() -> None:
    raw = (DATA / "toggl-cp1252.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    result = parse_timesheet(DATA / "toggl-cp1252.csv")
    assert result.format == "toggl"
    assert summary(result) == [
        (
            2,
            "INI-7",
            "2026-10-27T10:00:00+01:00",
            4500,
            "hugo@agence-web.fr",
            "Hugo Bernard",
            "INI-7 Mise à jour de sécurité – étape 2",
        )
    ]
    assert result.problems == ["line 3: no issue key in 'Café & échanges'"]


# --------------------------------------------------------------------------- entry ids

SAMPLES = ["toggl.csv", "clockify.csv", "clockify-eu.csv", "harvest.csv", "generic.csv"]


@pytest.mark.parametrize("name", SAMPLES)
def test_ids_are_stable_and_unique(name: str) -> None:
    first, second = parse_timesheet(DATA / name), parse_timesheet(DATA / name)
    assert ids(first) == ids(second)
    assert len(set(ids(first))) == len(first.entries) > 0
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids(first))


@pytest.mark.parametrize(("name", "first", "second"), [("toggl.csv", 2, 3), ("harvest.csv", 3, 4)])
def test_identical_rows_are_two_entries_with_different_ids(
    name: str, first: int, second: int
) -> None:
    entries = parse_timesheet(DATA / name).entries
    a, b = entries[first], entries[second]
    assert b.line == a.line + 1
    assert replace(a, entry_id="", line=0) == replace(b, entry_id="", line=0)
    assert a.entry_id != b.entry_id


def _resave(text: str, *, delimiter: str, order: list[int], extra: bool = False) -> str:
    """The same export with another delimiter, column order and maybe an extra column."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    for i, row in enumerate(rows):
        cells = [row[j] for j in order]
        if extra:
            cells.append("Date of creation" if i == 0 else f"2026-11-0{i % 9 + 1}")
        writer.writerow(cells)
    return out.getvalue()


def test_ids_survive_resaving_with_other_delimiter_and_column_order() -> None:
    text = (DATA / "toggl.csv").read_text(encoding="utf-8-sig")
    columns = len(TOGGL_HEADER.split(","))
    shuffled = _resave(text, delimiter=";", order=list(reversed(range(columns))), extra=True)
    assert shuffled.startswith("Amount ();Tags;Duration;")
    original, resaved = parse_text(text), parse_text(shuffled)
    assert resaved.format == "toggl"
    assert ids(resaved) == ids(original)
    assert summary(resaved) == summary(original)


def test_ids_survive_a_harvest_re_export_after_invoicing() -> None:
    text = (DATA / "harvest.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    invoiced = rows[0].index("Invoiced?")
    for row in rows[1:]:
        row[invoiced] = "Yes"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    assert "Yes,Yes,No,Camille" in out.getvalue()
    assert ids(parse_text(out.getvalue())) == ids(parse_text(text))


def test_ids_differ_across_content() -> None:
    base = f"{TOGGL_HEADER}\nJo,jo@x.fr,C,P,,INI-1 a,No,2026-01-05,09:00:00,,,01:00:00,,\n"
    other = base.replace("01:00:00", "01:00:01")
    assert ids(parse_text(base)) != ids(parse_text(other))
    # the time zone changes the instant, hence the id
    assert ids(parse_text(base)) != ids(parse_text(base, tz="America/New_York"))


# --------------------------------------------------------------------------- unreadable files


def test_empty_and_blank_files_raise(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(TimesheetError, match="empty file"):
        parse_timesheet(empty)
    with pytest.raises(TimesheetError, match="empty file"):
        parse_text("\ufeff \r\n\n")


def test_undecodable_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    # 0x81 and 0x8D are undefined in Windows-1252 and invalid in UTF-8
    path.write_bytes(b"date,issue,hours\n2026-01-05,INI-1,1\x81\x8d\n")
    with pytest.raises(TimesheetError, match="neither UTF-8 nor Windows-1252"):
        parse_timesheet(path)


def test_binary_and_missing_files_raise(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    path.write_bytes(b"PK\x03\x04\x00\x00\x08\x00")
    with pytest.raises(TimesheetError, match="not a text file"):
        parse_timesheet(path)
    with pytest.raises(TimesheetError, match="cannot read"):
        parse_timesheet(tmp_path / "missing.csv")


def test_malformed_csv_raises_a_timesheet_error() -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    with pytest.raises(TimesheetError, match=r"^line 3: field larger than field limit"):
        parse_text(f"date,issue,hours,comment\n2026-01-05,INI-1,1,ok\n2026-01-05,INI-1,1,{huge}\n")


def test_unknown_time_zone_raises() -> None:
    with pytest.raises(TimesheetError, match="unknown time zone 'Mars/Olympus'"):
        parse_text("date,issue,hours\n", tz="Mars/Olympus")


def test_header_only_file_has_no_entries() -> None:
    result = parse_text(HARVEST_HEADER + "\r\n")
    assert (result.format, result.entries, result.problems) == ("harvest", [], [])


# --------------------------------------------------------------------------- details


def test_utf16_and_excel_sep_line(tmp_path: Path) -> None:
    text = "sep=;\r\ndate;issue;hours\r\n\r\n2026-03-29;INI-2;1,25\r\n"
    path = tmp_path / "excel.csv"
    path.write_bytes(text.encode("utf-16"))
    result = parse_timesheet(path)
    assert result.format == "generic"
    # the sep= line and the blank line count: the row is on line 4
    assert summary(result) == [(4, "INI-2", "2026-03-29T12:00:00+02:00", 4500, None, None, "")]


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("25:00:00", 90000), ("1:30", 5400), ("0:00:01", 1), ("1.5", 5400), ("0,1", 360)],
)
def test_toggl_duration_formats(duration: str, seconds: int) -> None:
    text = f'{TOGGL_HEADER}\nJo,,,,,INI-1,No,2026-01-05,09:00:00,,,"{duration}",,\n'
    assert [e.seconds for e in parse_text(text).entries] == [seconds]


@pytest.mark.parametrize(
    ("hours", "problem"),
    [("abc", "hours 'abc' is not a number"), ("0", "hours '0' is not positive"),
     ("0.0001", "hours '0.0001' is not positive"), ("1:30", "hours '1:30' is not a number")],
)  # fmt: skip
def test_bad_hours_are_problems(hours: str, problem: str) -> None:
    result = parse_text(f"date,issue,hours\n2026-01-05,INI-1,{hours}\n")
    assert (result.entries, result.problems) == ([], [f"line 2: {problem}"])


def _clockify(dates_and_times: list[tuple[str, str]], delimiter: str = ",") -> ParseResult:
    header = CLOCKIFY_HEADER.split(",")
    lines = [delimiter.join(header)]
    for day, at in dates_and_times:
        cells = dict.fromkeys(header, "")
        cells.update({"Description": "ACME-1", "Start Date": day, "Start Time": at})
        cells["Duration (h)"] = "00:10:00"
        lines.append(delimiter.join(cells[h] for h in header))
    return parse_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("rows", "delimiter", "expected"),
    [
        # unambiguous either way, whatever the hints say
        ([("03/04/2026", "09:00"), ("03/13/2026", "09:00")], ";", ["2026-03-04", "2026-03-13"]),
        ([("03/04/2026", "9:00 AM"), ("13/03/2026", "9:00 AM")], ",", ["2026-04-03", "2026-03-13"]),
        # ambiguous: AM/PM means month first, ';' and 24 h mean day first
        ([("03/04/2026", "09:00 AM")], ",", ["2026-03-04"]),
        ([("03/04/2026", "09:00")], ";", ["2026-04-03"]),
        ([("03.04.2026", "09:00")], ",", ["2026-04-03"]),
        ([("03/04/2026", "09:00")], ",", ["2026-03-04"]),
        # ISO dates are never reordered
        ([("2026-03-04", "21:00"), ("13/03/2026", "09:00")], ",", ["2026-03-04", "2026-03-13"]),
    ],
)  # fmt: skip
def test_clockify_date_order(
    rows: list[tuple[str, str]], delimiter: str, expected: list[str]
) -> None:
    result = _clockify(rows, delimiter)
    assert result.problems == []
    assert [e.started_at.date().isoformat() for e in result.entries] == expected


def test_clockify_mixed_dates_prefer_the_order_reading_most_rows() -> None:
    result = _clockify([("13/03/2026", "09:00"), ("14/03/2026", "09:00"), ("03/15/2026", "09:00")])
    assert [e.started_at.date().isoformat() for e in result.entries] == [
        "2026-03-13",
        "2026-03-14",
    ]
    assert result.problems == ["line 4: date '03/15/2026' is not a valid date"]


@pytest.mark.parametrize(
    ("at", "expected"),
    [("12:05:00 AM", "00:05:00"), ("12:05:00 PM", "12:05:00"), ("2:05 pm", "14:05:00"),
     ("11:59:59 p.m.", "23:59:59"), ("23:15", "23:15:00"), ("07:00:00", "07:00:00")],
)  # fmt: skip
def test_clockify_times(at: str, expected: str) -> None:
    result = _clockify([("01/15/2026", at)])
    assert [e.started_at.time().isoformat() for e in result.entries] == [expected]


@pytest.mark.parametrize("at", ["13:00 PM", "25:00", "9h00"])
def test_bad_start_time_is_a_problem(at: str) -> None:
    result = _clockify([("01/15/2026", at)])
    assert result.problems == [f"line 2: start time '{at}' is not a valid time"]


def test_no_start_time_means_noon() -> None:
    result = _clockify([("01/15/2026", "")])  # as for date-only formats
    assert result.problems == []
    assert [e.started_at.time().isoformat() for e in result.entries] == ["12:00:00"]


@pytest.mark.parametrize(
    ("url", "notes", "key"),
    [
        ("https://linear.app/acme/issue/ini-12/fix-utf-8-export", "", "INI-12"),
        ("https://x.atlassian.net/browse/ACME-3", "voir INI-9", "ACME-3"),
        ("https://x.atlassian.net/jira/software/projects/ACME/boards/1?selectedIssue=ACME-42",
         "", "ACME-42"),
        # not a tracker link: Notes, then Task
        ("https://trello.com/c/AbCd1234/12-refonte", "Refonte INI-9", "INI-9"),
        ("", "Refonte", "TASK-5"),
    ],
)  # fmt: skip
def test_harvest_key_sources(url: str, notes: str, key: str) -> None:
    text = (
        "Date,Task,Notes,Hours,External Reference URL\n"
        f'2026-01-05,TASK-5 Refonte,"{notes}",1,"{url}"\n'
    )
    assert [e.issue_key for e in parse_text(text).entries] == [key]


@pytest.mark.parametrize(
    ("description", "key"),
    [
        ("[INI-12] Panier", "INI-12"),
        ("Suite du ticket INI-12 et INI-13", "INI-12"),
        ("https://linear.app/acme/issue/INI-12/panier", "INI-12"),
        ("ini-12 en minuscules", None),  # free text: upper-case keys only
        ("Ticket A-1 en tête", None),  # a one-letter prefix is not a key
        ("Passage en UTF-8", "UTF-8"),  # the pattern cannot tell: a known false positive
    ],
)
def test_keys_in_free_text(description: str, key: str | None) -> None:
    text = f'{TOGGL_HEADER}\nJo,,,,,"{description}",No,2026-01-05,09:00:00,,,00:10:00,,\n'
    result = parse_text(text)
    assert [e.issue_key for e in result.entries] == ([key] if key else [])
    assert len(result.problems) == (0 if key else 1)


def test_generic_issue_column_accepts_urls() -> None:
    text = (
        "date,issue,hours\n"
        "2026-01-05,https://linear.app/acme/issue/INI-12/panier,1\n"
        "2026-01-05,INI-13 Panier,1\n"
    )
    assert [e.issue_key for e in parse_text(text).entries] == ["INI-12", "INI-13"]


def test_entries_are_frozen() -> None:
    entry = parse_timesheet(DATA / "generic.csv").entries[0]
    assert isinstance(entry, TimeEntry)
    with pytest.raises(AttributeError):
        entry.seconds = 1  # type: ignore[misc]

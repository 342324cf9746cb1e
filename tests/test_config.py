"""Tests of tmabot.config: loading, validation messages, secrets, resolved defaults."""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal
from pathlib import Path

import pydantic
import pytest

from tmabot.config import (
    DEFAULT_PRIORITIES,
    ConfigError,
    Settings,
    _KeyLines,
    load_config,
    load_config_text,
    resolve_config_path,
)

REPO = Path(__file__).resolve().parents[1]

SECRET = "jira-t0ken-Sup3rS3cret"
ENV = {"JIRA_API_TOKEN": SECRET}

BASE = """\
[agency]
name = "Agence"
timezone = "Europe/Paris"

[trackers.agency-jira]
kind = "jira"
url = "https://agency.atlassian.net"
deployment = "cloud"
email = "bot@agency.example"
token_env = "JIRA_API_TOKEN"

[[clients]]
id = "acme"
name = "ACME"
tracker = "agency-jira"
projects = ["ACME"]

[clients.contract]
model = "forfait"
tier = "business"
start = "2026-01-01"
monthly_fee = "900.00"
hourly_rate = "95.00"
"""

SECOND_CLIENT = """
[[clients]]
id = "globex"
name = "Globex"
tracker = "agency-jira"
projects = ["GLOBEX"]

[clients.contract]
model = "credit_temps"
tier = "essentiel"
start = "2026-01-01"
"""

LINEAR = """
[trackers.agency-linear]
kind = "linear"
token_env = "JIRA_API_TOKEN"
"""

# The INTERFACE.md example, verbatim.
INTERFACE_EXAMPLE = """\
[agency]
name = "Agence Exemple"
timezone = "Europe/Paris"          # IANA name
locale = "fr"                      # fr | en: language of reports and messages
database_url = "sqlite:///tmabot.db"   # or postgresql+psycopg://user@host/db

[calendar]                         # the business-hours clock
country = "FR"                     # public holidays of this country
subdivision = ""                   # optional, e.g. "57" (Moselle)
workdays = ["mon", "tue", "wed", "thu", "fri"]
hours = ["09:00-12:30", "13:30-18:00"]

[sla]
at_risk_ratio = 0.75
pause_statuses = ["Waiting for client", "En attente client"]
staging_statuses = ["In staging", "Recette"]

[trackers.agency-jira]             # any name; referenced by clients
kind = "jira"                      # jira | linear
url = "https://agency.atlassian.net"   # for linear: the GraphQL endpoint
deployment = "cloud"               # jira only: cloud | server
email = "bot@agency.example"       # jira cloud basic auth user
token_env = "JIRA_API_TOKEN"       # env var holding the token / API key

[[clients]]
id = "acme"                        # [a-z0-9-]+, stable
name = "ACME SAS"
tracker = "agency-jira"
projects = ["ACME"]                # Jira project keys or Linear team keys
slack_channel = "C0123456789"      # optional
report_recipients = ["dsi@acme.example"]   # optional

[clients.contract]
model = "forfait"                  # forfait | credit_temps | sla
tier = "business"                  # essentiel | business | critique (sets the defaults below)
start = "2026-01-01"
currency = "EUR"
monthly_fee = "900.00"             # money is decimal, written as a string
hourly_rate = "95.00"              # overage and out-of-plan work
tickets_per_month = 5              # overrides the tier; -1 = unlimited
run_hours_per_month = 2.0          # overrides the tier
# credit_temps only:
rounding_minutes = 15              # each worklog rounded up to this unit
expiry_months = 12                 # purchased hours expire after N months (0 = never)
low_balance_ratio = 0.2            # alert under 20 % of the last purchase
credits = [ { date = "2026-09-01", hours = 20 } ]
# sla only (uptime credit notes, % of monthly_fee, the lowest matching `below` wins):
uptime_target = 99.5
uptime_credits = [ { below = 99.5, percent = 5 }, { below = 99.0, percent = 10 } ]
# P0 resolution breach: % of monthly_fee per started hour late, capped per ticket
resolution_credit = { percent_per_hour = 2, max_percent = 20 }

[clients.uptime]                   # optional: where uptime comes from
kind = "uptimerobot"               # uptimerobot | csv
api_key_env = "UPTIMEROBOT_API_KEY"
monitor_id = "777"
url = "https://api.uptimerobot.com/v2/"   # override for tests
# kind = "csv": path = "incidents.csv" (columns: start, end, reason)

[clients.facts]                    # optional: what the agency declares, per checklist id
D1 = 2026-09-01                    # a date: last verified in place
C3 = false                         # false: known not in place; absent: unknown
A4 = 2026-02-15                    # (A3–A5, B2–B5, C1–C4, D1–D4, E5–E8 are declarable)

[[classification.rules]]           # agency rules, tried in order before the defaults
category = "evolutif_run"          # a category id of DOMAIN.md §1
labels = ["run"]                   # conditions (all given must hold): labels (any of),
# issue_types = ["Story"]          #   issue_types, components, projects (any of),
# title = "(?i)refonte"            #   title / description (regex, searched)

[slack]
bot_token_env = "SLACK_BOT_TOKEN"
signing_secret_env = "SLACK_SIGNING_SECRET"
api_url = "https://slack.com/api/"  # override for tests
pm_channel = "C0PM0000000"          # the agency's digest / escalation channel

[email]
host = "smtp.agency.example"
port = 587
security = "starttls"               # none | starttls | ssl
username_env = "SMTP_USER"          # optional
password_env = "SMTP_PASSWORD"      # optional
from = "TMA Agence Exemple <tma@agency.example>"
"""

EXAMPLE_ENV = {
    "JIRA_API_TOKEN": SECRET,
    "LINEAR_API_KEY": "lin_api_0123456789abcdef",
    "UPTIMEROBOT_API_KEY": "ur-key-0123456789",
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-abcdef",
    "SLACK_SIGNING_SECRET": "signing-0123456789abcdef",
    "SMTP_USER": "smtp-user-abc",
    "SMTP_PASSWORD": "smtp-p4ssw0rd-xyz",
}


def replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def errors_of(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env=ENV if env is None else env)
    return caught.value


def line_containing(text: str, needle: str) -> int:
    """The last line containing `needle` (the cases append what they break)."""
    return max(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# (id, config text, key path, message substring, text of the line the problem is on or None)
BAD_CONFIGS = [
    ("enum", replace(BASE, '"business"', '"buisness"'), "clients[0].contract.tier",
     "'buisness' is not one of essentiel, business, critique", "buisness"),
    ("typo", replace(BASE, "monthly_fee", "monthy_fee"), "clients[0].contract.monthy_fee",
     "unknown key (typo?); did you mean 'monthly_fee'?", "monthy_fee"),
    ("unknown section", BASE + "[slak]\npm_channel = 'C1'\n", "slak",
     "unknown key (typo?); did you mean 'slack'?", "[slak]"),
    ("money float", replace(BASE, '"900.00"', "900.0"), "clients[0].contract.monthly_fee",
     'write money as a string, e.g. "900.00"', "900.0"),
    ("money garbage", replace(BASE, '"95.00"', '"95,00"'), "clients[0].contract.hourly_rate",
     "expected an amount as a string", "95,00"),
    ("missing key", replace(BASE, 'name = "ACME"\n', ""), "clients[0].name",
     "required key is missing", "[[clients]]"),
    ("missing table", BASE.split("[clients.contract]")[0], "clients[0].contract",
     "required key is missing", "[[clients]]"),
    ("missing agency", BASE.replace('[agency]\nname = "Agence"\ntimezone = "Europe/Paris"\n', ""),
     "agency", "required key is missing", None),
    ("literal secret", replace(BASE, 'token_env = "JIRA_API_TOKEN"', 'token = "abc123"'),
     "trackers.agency-jira.token",
     'secrets are not written in the config: use token_env = "VAR" and export VAR', "token ="),
    ("literal slack secret",
     BASE + '[slack]\nbot_token = "xoxb-1"\npm_channel = "C1"\n', "slack.bot_token",
     "use bot_token_env", "bot_token"),
    ("env name is a secret", replace(BASE, '"JIRA_API_TOKEN"', '"xoxb-123-abc"'),
     "trackers.agency-jira.token_env", "expected the name of an environment variable",
     "token_env"),
    ("bad regex",
     BASE + '[[classification.rules]]\ncategory = "correctif"\ntitle = "(unclosed"\n',
     "classification.rules[0].title", "invalid regular expression", "(unclosed"),
    ("rule without condition", BASE + '[[classification.rules]]\ncategory = "correctif"\n',
     "classification.rules[0]", "a rule needs at least one condition", "[[classification.rules]]"),
    ("rule category",
     BASE + '[[classification.rules]]\ncategory = "bug"\nlabels = ["bug"]\n',
     "classification.rules[0].category", "'bug' is not one of correctif, preventif",
     'category = "bug"'),
    ("second rule",
     BASE + '[[classification.rules]]\ncategory = "correctif"\nlabels = ["bug"]\n'
     '[[classification.rules]]\ncategory = "correctif"\nlables = ["x"]\n',
     "classification.rules[1].lables", "did you mean 'labels'?", "lables"),
    ("jira without deployment", replace(BASE, 'deployment = "cloud"\n', ""),
     "trackers.agency-jira.deployment", 'required for kind = "jira"', "[trackers.agency-jira]"),
    ("jira cloud without email", replace(BASE, 'email = "bot@agency.example"\n', ""),
     "trackers.agency-jira.email", "required for Jira Cloud", "[trackers.agency-jira]"),
    ("linear with deployment", BASE + LINEAR + 'deployment = "cloud"\n',
     "trackers.agency-linear.deployment", 'only for kind = "jira"', 'deployment = "cloud"\n'[:-1]),
    ("tracker kind", replace(BASE, '"jira"', '"jirra"'), "trackers.agency-jira.kind",
     "'jirra' is not one of jira, linear", "jirra"),
    ("tracker url", replace(BASE, "https://agency.atlassian.net", "agency.atlassian.net"),
     "trackers.agency-jira.url", "is not an http(s) URL", "agency.atlassian.net"),
    ("timeout type", replace(BASE, 'token_env = "JIRA_API_TOKEN"',
                             'token_env = "JIRA_API_TOKEN"\ntimeout_seconds = "30s"'),
     "trackers.agency-jira.timeout_seconds", "expected a number", "30s"),
    ("unknown tracker", replace(BASE, 'tracker = "agency-jira"', 'tracker = "agency-jra"'),
     "clients[0].tracker", "'agency-jra' is not a defined tracker (defined: agency-jira); "
     "did you mean 'agency-jira'?", "agency-jra"),
    ("duplicate id", BASE + SECOND_CLIENT.replace('"globex"', '"acme"'), "clients[1].id",
     "duplicate client id 'acme' (also clients[0])", 'id = "acme"'),
    ("shared project", BASE + SECOND_CLIENT.replace('["GLOBEX"]', '["GLOBEX", "ACME"]'),
     "clients[1].projects[1]", "already used by client 'acme'", '["GLOBEX", "ACME"]'),
    ("shared project, same site",
     BASE + "[trackers.jira-bis]\nkind = 'jira'\nurl = 'https://AGENCY.atlassian.net/'\n"
     "deployment = 'server'\ntoken_env = 'JIRA_API_TOKEN'\n"
     + SECOND_CLIENT.replace('"agency-jira"', '"jira-bis"').replace('["GLOBEX"]', '["ACME"]'),
     "clients[1].projects[0]", "already used by client 'acme'", '["ACME"]'),
    ("jira key", replace(BASE, '["ACME"]', '["acme"]'), "clients[0].projects[0]",
     "'acme' is not a Jira project key", '["acme"]'),
    ("no projects", replace(BASE, '["ACME"]', "[]"), "clients[0].projects", "must not be empty",
     "projects = []"),
    ("client id", replace(BASE, 'id = "acme"', 'id = "ACME Corp"'), "clients[0].id",
     "'ACME Corp' is not a client id", "ACME Corp"),
    ("recipient", replace(BASE, 'projects = ["ACME"]',
                          'projects = ["ACME"]\nreport_recipients = ["dsi.acme.example"]'),
     "clients[0].report_recipients[0]", "'dsi.acme.example' is not an email address",
     "report_recipients"),
    ("sync_since", replace(BASE, 'projects = ["ACME"]',
                           'projects = ["ACME"]\nsync_since = "2026-13-01"'),
     "clients[0].sync_since", "'2026-13-01' is not a date (YYYY-MM-DD)", "sync_since"),
    ("clients not an array",
     BASE.replace("[[clients]]", "[clients]").split("[clients.contract]")[0],
     "clients", "expected an array of tables ([[clients]])", "[clients]"),
    ("fact true", BASE + "[clients.facts]\nD1 = true\n", "clients[0].facts.D1",
     "true is not accepted: give the date it was last verified", "D1 = true"),
    ("fact not declarable", BASE + "[clients.facts]\nA1 = 2026-01-01\n", "clients[0].facts.A1",
     "A1 is evidenced by tmabot, not declared", "A1 ="),
    ("fact unknown", BASE + "[clients.facts]\nZ9 = 2026-01-01\n", "clients[0].facts.Z9",
     "'Z9' is not a checklist id", "Z9 ="),
    ("tickets quota",
     replace(BASE, 'tier = "business"', 'tier = "business"\ntickets_per_month = -2'),
     "clients[0].contract.tickets_per_month", "must be at least -1", "tickets_per_month"),
    ("currency", replace(BASE, 'tier = "business"', 'tier = "business"\ncurrency = "euro"'),
     "clients[0].contract.currency", "is not an ISO 4217 currency code", "currency"),
    ("inline table key", replace(BASE, 'tier = "business"',
                                 'tier = "business"\n'
                                 'resolution_credit = { percent_per_hour = 2, max_pct = 20 }'),
     "clients[0].contract.resolution_credit.max_pct", "did you mean 'max_percent'?",
     "resolution_credit"),
    ("array of inline tables", replace(BASE, 'tier = "business"',
                                       'tier = "business"\ncredits = [\n'
                                       '  { date = "2026-01-01", hours = 10 },\n'
                                       '  { date = "2026-02-01", hours = -1 },\n]'),
     "clients[0].contract.credits[1].hours", "must be greater than 0", "hours = -1"),
    ("uptime missing monitor",
     BASE + '[clients.uptime]\nkind = "uptimerobot"\napi_key_env = "JIRA_API_TOKEN"\n',
     "clients[0].uptime.monitor_id", 'required for kind = "uptimerobot"', "[clients.uptime]"),
    ("uptime csv with key",
     BASE + '[clients.uptime]\nkind = "csv"\npath = "x.csv"\napi_key_env = "JIRA_API_TOKEN"\n',
     "clients[0].uptime.api_key_env", 'only for kind = "uptimerobot"', "api_key_env"),
    ("timezone", replace(BASE, "Europe/Paris", "Europe/Pariss"), "agency.timezone",
     "'Europe/Pariss' is not an IANA time zone", "Pariss"),
    ("locale",
     replace(BASE, 'timezone = "Europe/Paris"', 'timezone = "Europe/Paris"\nlocale = "de"'),
     "agency.locale", "'de' is not one of fr, en", "locale"),
    ("database", replace(BASE, 'timezone = "Europe/Paris"',
                         'timezone = "Europe/Paris"\ndatabase_url = "mysql://db/tma"'),
     "agency.database_url", "SQLite or PostgreSQL", "database_url"),
    ("country", BASE + '[calendar]\ncountry = "XX"\n', "calendar.country",
     "'XX' is not a country code", "country"),
    ("subdivision", BASE + '[calendar]\nsubdivision = "99"\n', "calendar.subdivision",
     "'99' is not a subdivision of FR", "subdivision"),
    ("workday", BASE + '[calendar]\nworkdays = ["monday"]\n', "calendar.workdays[0]",
     "'monday' is not one of mon, tue, wed, thu, fri, sat, sun", "workdays"),
    ("hours overlap", BASE + '[calendar]\nhours = ["09:00-13:00", "12:30-18:00"]\n',
     "calendar.hours[1]", "overlaps", "hours"),
    ("hours format", BASE + '[calendar]\nhours = ["9h-12h"]\n', "calendar.hours[0]",
     "'9h-12h' is not a range HH:MM-HH:MM", "hours"),
    ("closed day", BASE + '[calendar]\nclosed_days = ["24/12/2026"]\n', "calendar.closed_days[0]",
     "is not a date", "closed_days"),
    ("maintenance window half aware", BASE + '[clients.uptime]\nkind = "csv"\npath = "u.csv"\n'
     "maintenance_windows = [{ start = 2026-11-10T22:00:00+01:00, end = 2026-11-10T23:00:00 }]"
     "\n", "clients[0].uptime.maintenance_windows[0].end", "an offset, or neither",
     "maintenance_windows"),
    ("at risk ratio", BASE + "[sla]\nat_risk_ratio = 1.5\n", "sla.at_risk_ratio",
     "must be less than 1", "at_risk_ratio"),
    ("comment response", BASE + "[sla]\nresponse_on_comment = true\n", "sla.agency_domains",
     "required when response_on_comment = true", "[sla]"),
    ("priority", BASE + '[priorities]\n"Bloquant" = "P5"\n', "priorities.Bloquant",
     "'P5' is not one of P0, P1, P2, P3", "Bloquant"),
    ("priority with space", BASE + '[priorities]\n"Très haute" = "X"\n', 'priorities."Très haute"',
     "is not one of P0", "Très haute"),
    ("slack pm channel", BASE + '[slack]\nbot_token_env = "JIRA_API_TOKEN"\n', "slack.pm_channel",
     "required key is missing", "[slack]"),
    ("email pair",
     BASE + '[email]\nhost = "smtp"\nfrom = "a@b.example"\nusername_env = "JIRA_API_TOKEN"\n',
     "email.password_env", "username_env and password_env go together", "[email]"),
    ("email from", BASE + '[email]\nhost = "smtp"\nfrom = "TMA"\n', "email.from",
     "'TMA' is not an email address", "from ="),
    ("email security", BASE + '[email]\nhost = "smtp"\nfrom = "a@b.example"\nsecurity = "tls"\n',
     "email.security", "'tls' is not one of none, starttls, ssl", "security"),
    ("email port", BASE + '[email]\nhost = "smtp"\nfrom = "a@b.example"\nport = 70000\n',
     "email.port", "must be at most 65535", "port"),
    ("schedule time", BASE + '[schedule]\ndigest_time = "9h"\n', "schedule.digest_time",
     "'9h' is not a time of day (HH:MM)", "digest_time"),
    ("schedule interval", BASE + "[schedule]\nsync_every_minutes = 0\n",
     "schedule.sync_every_minutes", "must be at least 1", "sync_every_minutes"),
    ("schedule whole minutes", BASE + "[schedule]\nnudge_every_minutes = 7.5\n",
     "schedule.nudge_every_minutes", "expected a whole number", "nudge_every_minutes"),
    ("colour", BASE + '[report]\ncolour = "blue"\n', "report.colour", "'blue' is not a hex colour",
     "colour"),
    ("format", BASE + '[report]\nformats = ["html", "docx"]\n', "report.formats[1]",
     "'docx' is not one of html, pdf, md, json", "formats"),
    ("templates dir", BASE + '[report]\ntemplates_dir = "no-such-dir"\n', "report.templates_dir",
     "is not a directory", "templates_dir"),
    ("source_path", BASE.replace("[agency]", 'source_path = "x"\n[agency]'), "source_path",
     "unknown key (typo?)", "source_path"),
    ("missing env", BASE, "trackers.agency-jira.token_env",
     "environment variable JIRA_API_TOKEN is not set", "token_env"),
]


@pytest.mark.parametrize(
    ("text", "key_path", "message", "line_text"),
    [case[1:] for case in BAD_CONFIGS],
    ids=[case[0] for case in BAD_CONFIGS],
)
def test_bad_config_is_reported_with_key_path_and_line(
    text: str, key_path: str, message: str, line_text: str | None
) -> None:
    env = {} if message.startswith("environment variable") else ENV
    error = errors_of(text, env)
    prefix = f"tmabot.toml: {key_path}: "
    matching = [line for line in error.problems if line.startswith(prefix) and message in line]
    assert matching, "\n".join(error.problems)
    if line_text is None:
        assert not re.search(r"\(line \d+\)$", matching[0])
    else:
        assert matching[0].endswith(f"(line {line_containing(text, line_text)})")
    assert SECRET not in str(error)
    assert all("\n" not in line for line in error.problems)


def test_every_problem_is_reported_at_once() -> None:
    text = replace(BASE, '"business"', '"buisness"')
    text = replace(text, "Europe/Paris", "Mars/Olympus")
    text += '[[classification.rules]]\ncategory = "correctif"\ntitle = "("\n'
    error = errors_of(text, env={})
    assert [line.split(": ")[1] for line in error.problems] == [
        "agency.timezone",
        "trackers.agency-jira.token_env",
        "clients[0].contract.tier",
        "classification.rules[0].title",
    ]
    assert str(error) == "\n".join(error.problems)


def test_clients_tables_belong_to_the_client_above() -> None:
    text = BASE + SECOND_CLIENT.replace('tier = "essentiel"', 'tier = "essential"')
    error = errors_of(text)
    assert error.problems == [
        "tmabot.toml: clients[1].contract.tier: 'essential' is not one of essentiel, business, "
        f"critique (line {line_containing(text, 'essential')})"
    ]


def test_literal_secret_value_is_never_echoed() -> None:
    text = replace(BASE, 'token_env = "JIRA_API_TOKEN"', f'api_token = "{SECRET}"')
    text += f'[email]\nhost = "smtp"\nfrom = "a@b.example"\npassword = "{SECRET}"\n'
    error = errors_of(text)
    assert SECRET not in str(error)
    assert any("email.password: secrets are not written in the config: use password_env" in line
               for line in error.problems)
    assert any(line.startswith("tmabot.toml: trackers.agency-jira.api_token: secrets are not")
               for line in error.problems)
    # The token_env it should have been is not reported a second time as missing.
    assert len(error.problems) == 2


def test_invalid_items_are_not_also_reported_as_an_empty_list() -> None:
    error = errors_of(BASE + '[calendar]\nworkdays = ["monday"]\n')
    assert len(error.problems) == 1


def test_a_secret_typed_into_an_ordinary_key_is_masked() -> None:
    text = replace(BASE, 'tier = "business"', f'tier = "{SECRET}"')
    error = errors_of(text)
    assert SECRET not in str(error)
    assert "clients[0].contract.tier: '***' is not one of" in str(error)


def test_empty_env_variable_is_a_problem() -> None:
    error = errors_of(BASE, env={"JIRA_API_TOKEN": "  "})
    assert "environment variable JIRA_API_TOKEN is empty" in str(error)


def test_interface_example_loads_with_resolved_values() -> None:
    settings = load_config_text(INTERFACE_EXAMPLE, env=EXAMPLE_ENV)
    assert settings.agency.locale == "fr"
    assert str(settings.agency.zone) == "Europe/Paris"
    assert settings.calendar.weekdays == frozenset(range(5))
    assert settings.calendar.minute_ranges == ((540, 750), (810, 1080))
    assert settings.sla.response_on_comment is False
    tracker = settings.tracker_for(settings.client("acme"))
    assert (tracker.kind, tracker.deployment, tracker.timeout_seconds, tracker.max_retries) == (
        "jira", "cloud", 30.0, 5)
    acme = settings.client("acme")
    contract = acme.contract
    assert contract.monthly_fee == Decimal("900.00")
    assert isinstance(contract.hourly_rate, Decimal)
    assert contract.start == date(2026, 1, 1)
    assert (contract.tickets_quota, contract.run_hours_allowance) == (5, 2.0)
    assert contract.credits[0].date == date(2026, 9, 1)
    assert [(c.below, c.percent) for c in contract.uptime_credits] == [(99.5, 5), (99.0, 10)]
    assert contract.resolution_credit.max_percent == 20
    assert acme.facts == {"D1": date(2026, 9, 1), "C3": False, "A4": date(2026, 2, 15)}
    assert acme.uptime is not None and acme.uptime.monitor_id == "777"
    assert settings.classification.rules[0].labels == ("run",)
    assert settings.slack is not None and settings.slack.app_token_env is None
    assert settings.email is not None
    assert settings.email.sender_email == "tma@agency.example"
    assert settings.schedule.digest_time == time(9, 0)
    assert settings.schedule.report_business_day == 2
    assert settings.report.formats == ("html", "pdf")
    assert settings.map_priority("highest") == "P0"
    assert settings.map_priority("No priority") == "P3"
    assert settings.map_priority("Whatever") is None
    assert settings.secret("SLACK_BOT_TOKEN") == EXAMPLE_ENV["SLACK_BOT_TOKEN"]


def test_secrets_stay_out_of_repr_and_dump() -> None:
    settings = load_config_text(INTERFACE_EXAMPLE, env=EXAMPLE_ENV)
    named = {k: v for k, v in EXAMPLE_ENV.items() if k != "LINEAR_API_KEY"}
    assert sorted(settings.secret_values()) == sorted(named.values())
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    shown += settings.model_dump_json()
    for value in named.values():
        assert value not in shown
    with pytest.raises(ConfigError, match="not named by the config"):
        settings.secret("HOME")


def test_settings_are_frozen() -> None:
    settings = load_config_text(BASE, env=ENV)
    with pytest.raises(pydantic.ValidationError):
        settings.agency.name = "Other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("tier", "extra", "quota", "run_hours"),
    [
        ("essentiel", "", 2, 0.0),
        ("business", "", 5, 2.0),
        ("critique", "", None, 4.0),
        ("business", "tickets_per_month = -1", None, 2.0),
        ("critique", "tickets_per_month = 3\nrun_hours_per_month = 1.5", 3, 1.5),
        (None, "", None, 0.0),
    ],
)
def test_tier_defaults(tier: str | None, extra: str, quota: int | None, run_hours: float) -> None:
    text = replace(BASE, 'tier = "business"\n', f'tier = "{tier}"\n' if tier else "") + extra + "\n"
    contract = load_config_text(text, env=ENV).client("acme").contract
    assert (contract.tickets_quota, contract.run_hours_allowance) == (quota, run_hours)
    assert (contract.run_ticket_max_hours, contract.rounding_minutes, contract.expiry_months) == (
        1.0, 15, 12)
    assert (contract.low_balance_ratio, contract.uptime_target, contract.currency) == (
        0.2, 99.5, "EUR")
    assert (contract.resolution_credit.percent_per_hour, contract.credits) == (2.0, ())


def test_defaults_of_optional_sections() -> None:
    settings = load_config_text(BASE, env=ENV)
    assert settings.agency.locale == "fr"
    assert (settings.calendar.country, settings.calendar.subdivision) == ("FR", "")
    assert settings.calendar.workdays == ("mon", "tue", "wed", "thu", "fri")
    assert settings.calendar.hours == ("09:00-12:30", "13:30-18:00")
    assert settings.sla.at_risk_ratio == 0.75
    assert settings.sla.pause_statuses == ("Waiting for client", "En attente client")
    assert settings.sla.staging_statuses == ("In staging", "Recette")
    assert settings.priorities == DEFAULT_PRIORITIES
    assert settings.slack is None and settings.email is None
    assert settings.classification.rules == ()
    schedule = settings.schedule
    assert (schedule.sync_every_minutes, schedule.nudge_every_minutes) == (15, 15)
    assert (schedule.digest_time, schedule.report_time, schedule.reconcile_time) == (
        time(9), time(10), time(2, 30))
    assert (schedule.digest_weekday, schedule.report_business_day) == ("mon", 2)
    assert (settings.report.colour, settings.report.templates_dir) == ("#1f4e79", None)
    assert settings.client("acme").facts == {}


def test_priorities_merge_over_defaults() -> None:
    text = BASE + '[priorities]\nHigh = "P0"\n"Bloquant" = "p0"\n'
    settings = load_config_text(text, env=ENV)
    assert settings.priorities["High"] == "P0"
    assert settings.priorities["Bloquant"] == "P0"
    assert settings.priorities["Trivial"] == "P3"


def test_calendar_subdivision_and_hours() -> None:
    text = BASE + (
        '[calendar]\nsubdivision = "Moselle"\nworkdays = ["sat", "mon"]\n'
        'hours = ["8:00-12:00", "14:00-24:00"]\nclosed_days = [2026-12-24, "2026-12-31"]\n'
    )
    calendar = load_config_text(text, env=ENV).calendar
    assert calendar.subdivision == "57"
    assert calendar.workdays == ("mon", "sat")
    assert calendar.hours == ("08:00-12:00", "14:00-24:00")
    assert calendar.minute_ranges == ((480, 720), (840, 1440))
    assert calendar.closed_days == (date(2026, 12, 24), date(2026, 12, 31))


def test_linear_tracker_defaults_its_endpoint() -> None:
    text = BASE + LINEAR + SECOND_CLIENT.replace('"agency-jira"', '"agency-linear"').replace(
        '["GLOBEX"]', '["ACME", "glx"]')
    settings = load_config_text(text, env=ENV)
    assert settings.trackers["agency-linear"].url == "https://api.linear.app/graphql"
    # Same key on another tracker is another project; Linear keys are not Jira-shaped.
    assert settings.client("globex").projects == ("ACME", "glx")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///tmabot.db", "sqlite:///{dir}/tmabot.db"),
        ("sqlite:///data/../db/tma.db?timeout=5", "sqlite:///{dir}/db/tma.db?timeout=5"),
        ("sqlite+pysqlite:///x.db", "sqlite+pysqlite:///{dir}/x.db"),
        ("sqlite:////var/lib/tma.db", "sqlite:////var/lib/tma.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite://", "sqlite://"),
        ("postgresql+psycopg://tma@db/tma", "postgresql+psycopg://tma@db/tma"),
    ],
)
def test_relative_sqlite_path_is_resolved_against_the_config_dir(
    tmp_path: Path, url: str, expected: str
) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    path = config_dir / "tmabot.toml"
    path.write_text(replace(BASE, 'timezone = "Europe/Paris"',
                            f'timezone = "Europe/Paris"\ndatabase_url = "{url}"'))
    settings = load_config(path, env=ENV)
    assert settings.agency.database_url == expected.format(dir=config_dir)
    assert settings.source_path == path
    if url == "sqlite:///tmabot.db":
        assert settings.agency.sqlite_path == config_dir / "tmabot.db"


def test_report_paths_are_relative_to_the_config_dir(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "logo.png").write_bytes(b"png")
    path = tmp_path / "agency.toml"
    path.write_text(BASE + '[report]\ntemplates_dir = "templates"\nlogo = "logo.png"\n'
                    'colour = "#ABC"\nformats = ["md"]\n')
    report = load_config(path, env=ENV).report
    assert (report.templates_dir, report.logo) == (tmp_path / "templates", tmp_path / "logo.png")
    assert (report.colour, report.formats) == ("#abc", ("md",))


def test_database_password_is_treated_as_a_secret() -> None:
    text = replace(BASE, 'timezone = "Europe/Paris"',
                   'timezone = "Europe/Paris"\n'
                   'database_url = "postgresql+psycopg://tma:pgPassw0rd!@db/tma"')
    assert "pgPassw0rd!" in load_config_text(text, env=ENV).secret_values()


def test_config_example_loads() -> None:
    settings = load_config(REPO / "config.example.toml", env=EXAMPLE_ENV)
    assert [client.id for client in settings.clients] == ["acme", "globex", "initech"]
    assert settings.client("initech").contract.tickets_quota is None
    uptime = settings.client("globex").uptime
    assert uptime is not None and uptime.path == REPO / "uptime" / "globex.csv"
    assert len(settings.secret_values()) == len(EXAMPLE_ENV)


def test_unknown_client() -> None:
    settings = load_config_text(BASE + SECOND_CLIENT, env=ENV)
    with pytest.raises(ConfigError) as caught:
        settings.client("initech")
    assert str(caught.value) == "unknown client 'initech' (known: acme, globex)"
    assert caught.value.problems == [str(caught.value)]


def test_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "tmabot.toml"
    with pytest.raises(ConfigError, match="config file not found .use --config PATH or set "
                                          "TMABOT_CONFIG."):
        load_config(missing, env=ENV)
    missing.write_text(BASE + "\n[agency\n")
    with pytest.raises(ConfigError) as caught:
        load_config(missing, env=ENV)
    assert str(caught.value).startswith("tmabot.toml: invalid TOML: ")
    assert "(at line 25, column 8)" in str(caught.value)
    missing.write_bytes(b"name = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(missing, env=ENV)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, env=ENV)


def test_resolve_config_path_precedence() -> None:
    env = {"TMABOT_CONFIG": "/etc/tmabot/tmabot.toml"}
    assert resolve_config_path("cli.toml", env) == Path("cli.toml")
    assert resolve_config_path(None, env) == Path("/etc/tmabot/tmabot.toml")
    assert resolve_config_path(None, {"TMABOT_CONFIG": ""}) == Path("tmabot.toml")
    assert resolve_config_path(None, {}) == Path("tmabot.toml")


def test_settings_can_be_built_in_code() -> None:
    settings = Settings.model_validate({"agency": {"name": "Agence"}})
    assert settings.clients == () and settings.secret_values() == []


def test_key_locator_handles_toml_shapes() -> None:
    text = '''\
title = """multi
[not.a.table]
line"""
"quoted.key" = 1
a.b = { c = 1, d = [1, 2] }   # comment with = sign
arr = [
  { x = 1 },  # first
  { x = 2 },
]

[[clients]]
id = 'a'
[clients.contract]
tier = "x"
[[clients]]
id = "b"
[ clients . contract ]
tier = "y"
[[clients.rules]]
k = 1
'''
    lines = _KeyLines(text).lines
    assert lines[("title",)] == 1
    assert ("not", "a", "table") not in lines
    assert lines[("quoted.key",)] == 4
    assert lines[("a", "b", "c")] == lines[("a", "b", "d", 1)] == 5
    assert lines[("arr", 1, "x")] == 8
    assert lines[("clients", 0, "contract", "tier")] == 14
    assert lines[("clients", 1, "contract", "tier")] == 18
    assert lines[("clients", 1, "rules", 0, "k")] == 20
    assert lines[("clients",)] == 11
    # Never loops or raises on text it does not understand.
    assert _KeyLines("[[broken").lines == {}
    assert _KeyLines("a = [}\nb = [[[[\nc = {").lines[("a",)] == 1


def test_priority_tables_per_tracker_and_client_override_the_top_level() -> None:
    base = '''
[agency]
name = "A"
[priorities]
"Bloquant" = "P0"
[trackers.j]
kind = "jira"
url = "https://x.atlassian.net"
deployment = "cloud"
email = "a@b.example"
token_env = "T"
priorities = { "Haute" = "%s", "Medium" = "P1" }
[[clients]]
id = "c"
name = "C"
tracker = "j"
projects = ["CC"]
priorities = { "High" = "P0" }
[clients.contract]
model = "forfait"
tier = "business"
start = 2026-01-01
'''
    settings = load_config_text(base % "p1", env={"T": "x"})
    table = settings.priorities_for(settings.clients[0])
    assert (table["High"], table["Haute"], table["Bloquant"], table["Medium"], table["Low"]) \
        == ("P0", "P1", "P0", "P1", "P3")
    assert settings.priorities["High"] == "P1"  # the top level is untouched
    with pytest.raises(ConfigError) as info:
        load_config_text(base % "P7", env={"T": "x"})
    assert info.value.problems == [
        "tmabot.toml: trackers.j.priorities.Haute: 'P7' is not one of P0, P1, P2, P3 (line 12)"]

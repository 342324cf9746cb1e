"""The config file: TOML → validated, frozen settings; the only reader of environment variables."""

from __future__ import annotations

import bisect
import difflib
import json
import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from email.utils import parseaddr
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "CATEGORIES",
    "CHECKLIST_IDS",
    "DECLARABLE_FACTS",
    "DEFAULT_PRIORITIES",
    "TIER_DEFAULTS",
    "AgencySettings",
    "CalendarSettings",
    "ClassificationRule",
    "ClassificationSettings",
    "ClientSettings",
    "ConfigError",
    "ContractSettings",
    "CreditPurchase",
    "EmailSettings",
    "ReportSettings",
    "ResolutionCredit",
    "ScheduleSettings",
    "Settings",
    "SlaSettings",
    "SlackSettings",
    "TrackerSettings",
    "UptimeCredit",
    "UptimeSettings",
    "load_config",
    "load_config_text",
    "resolve_config_path",
]

DEFAULT_CONFIG_NAME = "tmabot.toml"

Priority = Literal["P0", "P1", "P2", "P3"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Category = Literal[
    "correctif", "preventif", "securite", "supervision", "evolutif_run", "hors_perimetre"
]
Tier = Literal["essentiel", "business", "critique"]
ReportFormat = Literal["html", "pdf", "md", "json"]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CATEGORIES: tuple[str, ...] = typing.get_args(Category)

# DOMAIN.md §2: both Jira schemes and Linear's labels; the config merges over these.
DEFAULT_PRIORITIES: dict[str, Priority] = {
    "Highest": "P0",
    "High": "P1",
    "Medium": "P2",
    "Low": "P3",
    "Lowest": "P3",
    "Blocker": "P0",
    "Critical": "P1",
    "Major": "P2",
    "Minor": "P3",
    "Trivial": "P3",
    "Urgent": "P0",
    "No priority": "P3",
}

# DOMAIN.md §3 plan tiers: corrective tickets per month (None = unlimited), Run hours.
TIER_DEFAULTS: dict[str, tuple[int | None, float]] = {
    "essentiel": (2, 0.0),
    "business": (5, 2.0),
    "critique": (None, 4.0),
}

CHECKLIST_IDS: tuple[str, ...] = (
    *(f"A{i}" for i in range(1, 6)),
    *(f"B{i}" for i in range(1, 6)),
    *(f"C{i}" for i in range(1, 5)),
    *(f"D{i}" for i in range(1, 6)),
    *(f"E{i}" for i in range(1, 10)),
)
# DOMAIN.md §6: the points tmabot cannot evidence from tracker data, so the agency declares them.
DECLARABLE_FACTS: tuple[str, ...] = (
    "A3", "A4", "A5", "B2", "B3", "B4", "B5", "C1", "C2", "C3", "C4",
    "D1", "D2", "D3", "D4", "E5", "E6", "E7", "E8",
)  # fmt: skip
_DECLARABLE_TEXT = "A3–A5, B2–B5, C1–C4, D1–D4, E5–E8"

Loc = tuple[str | int, ...]


class ConfigError(Exception):
    """A config that cannot be used; one full line per problem."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class _Problems(ValueError):
    """Raised by validators to report problems at keys below the model being validated."""

    def __init__(self, items: list[tuple[Loc, str]]) -> None:
        self.items = items
        super().__init__("; ".join(message for _, message in items))


# ---------------------------------------------------------------------------
# small value validators (messages are shown to the user as they are)


def _base_dir(info: ValidationInfo) -> Path | None:
    context = info.context
    if isinstance(context, dict) and isinstance(context.get("base_dir"), Path):
        return context["base_dir"]
    return None


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    value = value.expanduser()
    base = _base_dir(info)
    if base is not None and not value.is_absolute():
        value = base / value
    return value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: str) -> str:
    # Never echo the value: a user who pasted the token itself here must not see it printed.
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            "expected the name of an environment variable (e.g. JIRA_API_TOKEN), "
            "not the secret itself"
        )
    return value


def _day(value: Any) -> Any:
    # TOML has native dates; a date-time or a number here is a mistake, not something to coerce.
    if isinstance(value, datetime):
        raise ValueError("expected a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"'{value}' is not a date (YYYY-MM-DD)") from None
    raise ValueError("expected a date (YYYY-MM-DD)")


_HHMM = re.compile(r"(\d{1,2}):(\d{2})")


def _minutes(text: str, *, allow_24: bool = False) -> int | None:
    match = _HHMM.fullmatch(text.strip())
    if not match:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        return None
    return hours * 60 + minutes


def _clock_time(value: Any) -> Any:
    if isinstance(value, time):
        if value.second or value.microsecond:
            raise ValueError("expected a time in whole minutes (HH:MM)")
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        minutes = _minutes(value)
        if minutes is None:
            raise ValueError(f"'{value}' is not a time of day (HH:MM)")
        return time(minutes // 60, minutes % 60)
    raise ValueError('expected a time of day as a string, e.g. "09:00"')


def _money(value: Any) -> Any:
    # A binary float cannot hold 0.10 exactly; amounts end up on invoices.
    if isinstance(value, float | bool):
        raise ValueError('write money as a string, e.g. "900.00"')
    if isinstance(value, str):
        return value.strip()
    return value


def _email_address(value: str) -> str:
    _, address = parseaddr(value)
    if not address or not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+", address):
        raise ValueError(f"'{value}' is not an email address")
    return value.strip()


def _http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{value}' is not an http(s) URL")
    return value.strip()


def _monitor_id(value: Any) -> Any:
    # UptimeRobot ids are numbers; TOML users write them either way.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _priority_value(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


EnvName = Annotated[str, AfterValidator(_env_name)]
Day = Annotated[date, BeforeValidator(_day)]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Money = Annotated[Decimal, BeforeValidator(_money), Field(ge=0)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
PriorityValue = Annotated[Priority, BeforeValidator(_priority_value)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------
# sections


class AgencySettings(_Model):
    name: NonEmptyStr
    timezone: str = "Europe/Paris"
    locale: Literal["fr", "en"] = "fr"
    database_url: str = "sqlite:///tmabot.db"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. Europe/Paris)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str, info: ValidationInfo) -> str:
        # The URL may carry a password: never echo it in a message.
        dialect = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(
                'expected an SQLAlchemy URL of SQLite or PostgreSQL, e.g. "sqlite:///tmabot.db" '
                'or "postgresql+psycopg://user@host/db"'
            )
        base = _base_dir(info)
        match = re.fullmatch(r"(sqlite(?:\+\w+)?):///([^?]*)(\?.*)?", value)
        if base is None or not match:
            return value
        prefix, file, query = match.group(1), match.group(2), match.group(3) or ""
        if not file or file == ":memory:" or file.startswith(("/", "file:")):
            return value
        # Relative to the config file, so `tmabot` behaves the same from any working directory.
        return f"{prefix}:///{os.path.normpath(base / Path(file).expanduser())}{query}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL or an in-memory database."""
        match = re.fullmatch(r"sqlite(?:\+\w+)?:///([^?]+)(\?.*)?", self.database_url)
        if not match or match.group(1) == ":memory:" or match.group(1).startswith("file:"):
            return None
        return Path(match.group(1))


class CalendarSettings(_Model):
    country: str = "FR"
    subdivision: str = ""
    workdays: tuple[Weekday, ...] = Field(default=("mon", "tue", "wed", "thu", "fri"), min_length=1)
    hours: tuple[str, ...] = Field(default=("09:00-12:30", "13:30-18:00"), min_length=1)
    closed_days: tuple[Day, ...] = ()

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        import holidays  # imported here: it is slow to import and only needed to validate

        code = value.strip().upper()
        try:
            # One country's class, not list_supported_countries(): that builds all 500.
            holidays.country_holidays(code, years=[])
        except NotImplementedError:
            raise ValueError(
                f"'{value}' is not a country code the holidays package knows (e.g. FR, BE, CH)"
            ) from None
        return code

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        country = info.data.get("country")
        if not value or not country:
            return value
        import holidays

        # Checked against the lists, not by constructing: deprecated names only warn there.
        calendar = holidays.country_holidays(country, years=[])
        if value in calendar.subdivisions:
            return value
        aliases = getattr(calendar, "subdivisions_aliases", {}) or {}
        if value in aliases:
            return str(aliases[value])
        known = ", ".join(calendar.subdivisions) or "none"
        raise ValueError(f"'{value}' is not a subdivision of {country} (known: {known})")

    @field_validator("workdays")
    @classmethod
    def _distinct_days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a day is listed twice")
        return tuple(sorted(value, key=WEEKDAYS.index))

    @field_validator("hours")
    @classmethod
    def _ordered_ranges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problems: list[tuple[Loc, str]] = []
        normalized: list[str] = []
        previous_end: int | None = None
        for index, text in enumerate(value):
            start_text, _, end_text = text.partition("-")
            start, end = _minutes(start_text), _minutes(end_text, allow_24=True)
            if start is None or end is None:
                problems.append(((index,), f"'{text}' is not a range HH:MM-HH:MM"))
                continue
            if end <= start:
                problems.append(((index,), f"'{text}' ends before it starts"))
            elif previous_end is not None and start < previous_end:
                problems.append(
                    (
                        (index,),
                        f"'{text}' overlaps or precedes the range before it (list them in order)",
                    )
                )
            normalized.append(f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
            previous_end = end
        if problems:
            raise _Problems(problems)
        return tuple(normalized)

    @property
    def weekdays(self) -> frozenset[int]:
        """Working days as `date.weekday()` numbers (Monday = 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.workdays)

    @property
    def minute_ranges(self) -> tuple[tuple[int, int], ...]:
        """Working hours as (start, end) minutes after midnight; end may be 1440."""
        ranges = []
        for text in self.hours:
            start, _, end = text.partition("-")
            ranges.append((_minutes(start) or 0, _minutes(end, allow_24=True) or 0))
        return tuple(ranges)


def is_agency_email(email: str | None, domains: Sequence[str]) -> bool:
    """Whether an address belongs to the agency: its domain is one of `domains` (already
    lower-cased, see SlaSettings.agency_domains) or a subdomain of one."""
    if not email or "@" not in email:
        return False
    domain = email.rsplit("@", 1)[1].strip().lower()
    return any(domain == d or domain.endswith("." + d) for d in domains)


class SlaSettings(_Model):
    at_risk_ratio: float = Field(default=0.75, gt=0, lt=1)
    pause_statuses: tuple[NonEmptyStr, ...] = ("Waiting for client", "En attente client")
    staging_statuses: tuple[NonEmptyStr, ...] = ("In staging", "Recette")
    response_on_comment: bool = False
    agency_domains: tuple[str, ...] = ()

    @field_validator("agency_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problems: list[tuple[Loc, str]] = []
        domains = []
        for index, text in enumerate(value):
            domain = text.strip().lower().lstrip("@")
            if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
                problems.append(
                    ((index,), f"'{text}' is not an email domain (e.g. agency.example)")
                )
            domains.append(domain)
        if problems:
            raise _Problems(problems)
        return tuple(domains)

    @model_validator(mode="after")
    def _domains_for_comments(self) -> SlaSettings:
        if self.response_on_comment and not self.agency_domains:
            raise _Problems(
                [
                    (
                        ("agency_domains",),
                        "required when response_on_comment = true: "
                        "whose comments count as a response?",
                    )
                ]
            )
        return self


class TrackerSettings(_Model):
    kind: Literal["jira", "linear"]
    url: HttpUrl
    deployment: Literal["cloud", "server"] | None = None
    email: EmailAddress | None = None
    token_env: EnvName
    page_size: int | None = Field(default=None, ge=1, le=5000)
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0, le=20)
    # Jira only: read Jira Service Management's own SLA fields (found through /field) with
    # every ticket, to compare with tmabot's figures (`tracker_sla` in the tickets JSON).
    service_desk_sla: bool = False
    # This tracker's priority names → P0–P3, over the top-level [priorities].
    priorities: dict[str, PriorityValue] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _linear_endpoint(cls, data: Any) -> Any:
        # Linear has one public endpoint; `url` is there to point tests at an emulator.
        if isinstance(data, dict) and data.get("kind") == "linear" and "url" not in data:
            return {**data, "url": "https://api.linear.app/graphql"}
        return data

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        # Jira links are built as f"{url}/browse/{key}".
        return value.rstrip("/")

    @property
    def site(self) -> tuple[str, ...]:
        """What identifies the tracker's data: a Jira site by URL, a Linear workspace by its key."""
        if self.kind == "jira":
            return ("jira", self.url.lower())
        return ("linear", self.url.lower(), self.token_env)

    @model_validator(mode="after")
    def _kind_specific_keys(self) -> TrackerSettings:
        problems: list[tuple[Loc, str]] = []
        if self.kind == "jira":
            if self.deployment is None:
                problems.append(
                    (("deployment",), 'required for kind = "jira": "cloud" or "server"')
                )
            elif self.deployment == "cloud" and self.email is None:
                problems.append(
                    (("email",), "required for Jira Cloud: the account the API token belongs to")
                )
        else:
            for key in ("deployment", "email"):
                if getattr(self, key) is not None:
                    problems.append(((key,), 'only for kind = "jira": remove it'))
            if self.service_desk_sla:
                problems.append((("service_desk_sla",), 'only for kind = "jira": Linear\'s '
                                 "own SLA fields are always read"))
        if problems:
            raise _Problems(problems)
        return self


class CreditPurchase(_Model):
    date: Day
    hours: float = Field(gt=0)


class UptimeCredit(_Model):
    below: float = Field(gt=0, le=100)
    percent: float = Field(gt=0, le=100)


class ResolutionCredit(_Model):
    percent_per_hour: float = Field(default=2.0, ge=0, le=100)
    max_percent: float = Field(default=20.0, ge=0, le=100)


class ContractSettings(_Model):
    model: Literal["forfait", "credit_temps", "sla"]
    # Optional: without a tier there is no ticket quota, no Run hours, and the P0 response
    # target is DOMAIN.md's "no tier" one.
    tier: Tier | None = None
    start: Day
    currency: str = "EUR"
    monthly_fee: Money = Decimal("0.00")
    hourly_rate: Money = Decimal("0.00")
    tickets_per_month: int | None = Field(default=None, ge=-1)
    run_hours_per_month: float | None = Field(default=None, ge=0)
    run_ticket_max_hours: float = Field(default=1.0, gt=0)
    rounding_minutes: int = Field(default=15, ge=1, le=480)
    expiry_months: int = Field(default=12, ge=0)
    low_balance_ratio: float = Field(default=0.2, ge=0, le=1)
    credits: tuple[CreditPurchase, ...] = ()
    uptime_target: float = Field(default=99.5, gt=0, le=100)
    uptime_credits: tuple[UptimeCredit, ...] = ()
    resolution_credit: ResolutionCredit = ResolutionCredit()

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"'{value}' is not an ISO 4217 currency code (e.g. EUR)")
        return value

    @property
    def tickets_quota(self) -> int | None:
        """Corrective tickets included per month; None = unlimited."""
        if self.tickets_per_month is not None:
            return None if self.tickets_per_month == -1 else self.tickets_per_month
        return TIER_DEFAULTS[self.tier][0] if self.tier else None

    @property
    def run_hours_allowance(self) -> float:
        """Run (light evolutive) hours included per month."""
        if self.run_hours_per_month is not None:
            return float(self.run_hours_per_month)
        return TIER_DEFAULTS[self.tier][1] if self.tier else 0.0


class MaintenanceWindow(_Model):
    """Planned downtime announced to the client: not counted against the uptime."""

    start: datetime  # a TOML datetime; without an offset, the agency's time zone
    end: datetime
    reason: str = "maintenance planifiée"

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise _Problems([(("end",), "give both start and end an offset, or neither")])
        if self.end <= self.start:
            raise _Problems([(("end",), "must be after start")])
        return self


class UptimeSettings(_Model):
    kind: Literal["uptimerobot", "csv"]
    api_key_env: EnvName | None = None
    monitor_id: Annotated[NonEmptyStr | None, BeforeValidator(_monitor_id)] = None
    url: HttpUrl = "https://api.uptimerobot.com/v2/"
    path: Path | None = None
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        # A base URL: API methods are joined to it.
        return value if value.endswith("/") else value + "/"

    @field_validator("path")
    @classmethod
    def _relative_to_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve_path(value, info)

    @model_validator(mode="after")
    def _kind_specific_keys(self) -> UptimeSettings:
        problems: list[tuple[Loc, str]] = []
        if self.kind == "uptimerobot":
            for key in ("api_key_env", "monitor_id"):
                if getattr(self, key) is None:
                    problems.append(((key,), 'required for kind = "uptimerobot"'))
            if self.path is not None:
                problems.append((("path",), 'only for kind = "csv": remove it'))
        else:
            if self.path is None:
                problems.append((("path",), 'required for kind = "csv"'))
            for key in ("api_key_env", "monitor_id", "url"):
                if key in self.model_fields_set:
                    problems.append(((key,), 'only for kind = "uptimerobot": remove it'))
        if problems:
            raise _Problems(problems)
        return self


def _facts(value: Any) -> dict[str, date | Literal[False]]:
    if not isinstance(value, dict):
        raise ValueError("expected a table of checklist ids, e.g. D1 = 2026-09-01")
    problems: list[tuple[Loc, str]] = []
    facts: dict[str, date | Literal[False]] = {}
    for key, fact in value.items():
        if key not in DECLARABLE_FACTS:
            if key in CHECKLIST_IDS:
                message = f"{key} is evidenced by tmabot, not declared"
            else:
                message = f"'{key}' is not a checklist id"
            problems.append(((key,), f"{message} (declarable: {_DECLARABLE_TEXT})"))
        elif fact is True:
            problems.append(
                (
                    (key,),
                    f"true is not accepted: give the date it was last verified "
                    f"(e.g. {key} = 2026-09-01), or false if it is not in place",
                )
            )
        elif fact is False:
            facts[key] = False
        else:
            try:
                facts[key] = _day(fact)
            except ValueError as error:
                problems.append(((key,), f"{error}, or false"))
    if problems:
        raise _Problems(problems)
    return facts


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([dhm]?)\s*")


def _target(value: Any) -> float | str | Literal[False] | None:
    """A target: hours as a number, or "3d" / "8h" / "90m"; false = no target."""
    if value is None or value is False:
        return value
    if value is True:
        raise ValueError("true is not a target: give hours (8), a duration (\"3d\"), or false")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("must be more than 0 (false: no target)")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match and float(match.group(1)) > 0:
            return value.strip()
    raise ValueError(f"{value!r} is not a target: hours (8), \"3d\", \"8h\", \"90m\" or false")


Target = Annotated[float | str | Literal[False] | None, BeforeValidator(_target)]


def target_hours(value: float | str, day_hours: float) -> float:
    """A configured target in hours; a day is `day_hours` (business) or 24 (24/7)."""
    if isinstance(value, float | int):
        return float(value)
    match = _DURATION.fullmatch(value)
    assert match is not None  # validated
    amount, unit = float(match.group(1)), match.group(2) or "h"
    return {"d": amount * day_hours, "h": amount, "m": amount / 60}[unit]


class PriorityTargetsSettings(_Model):
    response: Target = None
    resolution: Target = None
    delivery: Target = None
    clock: Literal["business", "24/7"] | None = None


class ClientSlaSettings(_Model):
    """Per-client overrides of the default SLA policy (DOMAIN.md §2)."""

    at_risk_ratio: float | None = Field(default=None, gt=0, lt=1)
    P0: PriorityTargetsSettings | None = None
    P1: PriorityTargetsSettings | None = None
    P2: PriorityTargetsSettings | None = None
    P3: PriorityTargetsSettings | None = None

    def priorities(self) -> dict[str, dict[str, Any]]:
        """Level → the keys given (targets as configured, False = none; clock)."""
        out: dict[str, dict[str, Any]] = {}
        for level in ("P0", "P1", "P2", "P3"):
            section = getattr(self, level)
            if section is not None:
                out[level] = {k: getattr(section, k) for k in section.model_fields_set}
        return out


_CLIENT_ID = re.compile(r"[a-z0-9-]+")


class ClientSettings(_Model):
    id: str
    name: NonEmptyStr
    tracker: NonEmptyStr
    projects: tuple[NonEmptyStr, ...] = Field(min_length=1)
    slack_channel: NonEmptyStr | None = None
    report_recipients: tuple[EmailAddress, ...] = ()
    sync_since: Day | None = None
    contract: ContractSettings
    uptime: UptimeSettings | None = None
    sla: ClientSlaSettings | None = None
    # This client's priority names → P0–P3, over its tracker's and the top-level ones.
    priorities: dict[str, PriorityValue] = Field(default_factory=dict)
    # Estimate (points, as the tracker gives them) → hours, for tickets without logged time.
    estimate_hours: dict[str, float] = Field(default_factory=dict)

    @field_validator("estimate_hours")
    @classmethod
    def _estimate_table(cls, value: dict[str, float]) -> dict[str, float]:
        problems: list[tuple[Loc, str]] = []
        for key, hours in value.items():
            try:
                points = float(key)
            except ValueError:
                points = -1.0
            if points < 0:
                problems.append(((key,), f"'{key}' is not an estimate (a number, e.g. \"3\")"))
            elif hours < 0:
                problems.append(((key,), "hours must not be negative"))
        if problems:
            raise _Problems(problems)
        return {str(float(k)): float(v) for k, v in value.items()}

    def hours_for_estimate(self, points: float | None) -> float | None:
        """Hours the estimate table gives for an estimate; None without a match."""
        if points is None or not self.estimate_hours:
            return None
        return self.estimate_hours.get(str(float(points)))
    # A date: last verified in place; False: known not in place; absent: unknown.
    facts: dict[str, date | Literal[False]] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _stable_id(cls, value: str) -> str:
        if not _CLIENT_ID.fullmatch(value):
            raise ValueError(
                f"'{value}' is not a client id: lowercase letters, digits and '-' only"
            )
        return value

    @field_validator("facts", mode="before")
    @classmethod
    def _declarable_facts(cls, value: Any) -> Any:
        return _facts(value)

    @field_validator("projects")
    @classmethod
    def _distinct_projects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for index, key in enumerate(value):
            if key.upper() in seen:
                raise _Problems([((index,), f"'{key}' is listed twice")])
            seen.add(key.upper())
        return value


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"invalid regular expression: {error}") from None
    return value


Regex = Annotated[str | None, AfterValidator(_regex)]
Conditions = tuple[NonEmptyStr, ...]

_RULE_CONDITIONS = (
    "labels", "issue_types", "components", "projects", "title", "description", "epic",
    "min_hours", "max_hours",
)  # fmt: skip


class ClassificationRule(_Model):
    category: Category
    name: NonEmptyStr | None = None
    labels: Conditions | None = Field(default=None, min_length=1)
    issue_types: Conditions | None = Field(default=None, min_length=1)
    components: Conditions | None = Field(default=None, min_length=1)
    projects: Conditions | None = Field(default=None, min_length=1)
    title: Regex = None
    description: Regex = None
    epic: NonEmptyStr | None = None
    min_hours: float | None = Field(default=None, ge=0)
    max_hours: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _has_condition(self) -> ClassificationRule:
        if all(getattr(self, key) is None for key in _RULE_CONDITIONS):
            raise ValueError("a rule needs at least one condition: " + ", ".join(_RULE_CONDITIONS))
        if (
            self.min_hours is not None
            and self.max_hours is not None
            and self.min_hours > self.max_hours
        ):
            raise _Problems([(("max_hours",), "must not be less than min_hours")])
        return self

    @property
    def title_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.title) if self.title is not None else None

    @property
    def description_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.description) if self.description is not None else None


class ClassificationSettings(_Model):
    # Tried in order, before the built-in rules.
    rules: tuple[ClassificationRule, ...] = ()


class SlackSettings(_Model):
    bot_token_env: EnvName
    # Needed by `slack serve` over HTTP; Socket Mode (app_token_env) does not sign requests.
    signing_secret_env: EnvName | None = None
    app_token_env: EnvName | None = None
    api_url: HttpUrl = "https://slack.com/api/"
    pm_channel: NonEmptyStr
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("api_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


class EmailSettings(_Model):
    host: NonEmptyStr
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    from_address: EmailAddress = Field(alias="from")
    timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _credentials_pair(self) -> EmailSettings:
        if (self.username_env is None) != (self.password_env is None):
            missing = "password_env" if self.password_env is None else "username_env"
            raise _Problems([((missing,), "username_env and password_env go together")])
        return self

    @property
    def sender_email(self) -> str:
        return parseaddr(self.from_address)[1]

    @property
    def sender_name(self) -> str:
        return parseaddr(self.from_address)[0]


class ScheduleSettings(_Model):
    sync_every_minutes: int = Field(default=15, ge=1)
    nudge_every_minutes: int = Field(default=15, ge=1)
    digest_time: ClockTime = time(9, 0)
    digest_weekday: Weekday = "mon"
    report_business_day: int = Field(default=2, ge=1, le=20)
    report_time: ClockTime = time(10, 0)
    reconcile_time: ClockTime = time(2, 30)


class WebhookSettings(_Model):
    """Optional fast path: trackers call `tmabot run --http-port` when an issue changes."""

    linear_secret_env: EnvName | None = None  # Linear's webhook signing secret
    jira_secret_env: EnvName | None = None  # a shared secret in the Jira webhook's URL/header


class ReportSettings(_Model):
    templates_dir: Path | None = None
    logo: Path | None = None
    colour: str = "#1f4e79"
    formats: tuple[ReportFormat, ...] = Field(default=("html", "pdf"), min_length=1)

    @field_validator("templates_dir")
    @classmethod
    def _existing_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        value = _resolve_path(value, info)
        if _base_dir(info) is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @field_validator("logo")
    @classmethod
    def _existing_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        value = _resolve_path(value, info)
        if _base_dir(info) is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @field_validator("colour")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})", value):
            raise ValueError(f"'{value}' is not a hex colour (e.g. \"#1f4e79\")")
        return value.lower()

    @field_validator("formats")
    @classmethod
    def _distinct_formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a format is listed twice")
        return value


_JIRA_KEY = re.compile(r"[A-Z][A-Z0-9_]+")


class Settings(_Model):
    agency: AgencySettings
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    sla: SlaSettings = SlaSettings()
    # Tracker priority name → P0–P3, the config's table merged over DEFAULT_PRIORITIES.
    priorities: dict[str, PriorityValue] = Field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    trackers: dict[str, TrackerSettings] = Field(default_factory=dict)
    clients: tuple[ClientSettings, ...] = ()
    classification: ClassificationSettings = ClassificationSettings()
    slack: SlackSettings | None = None
    email: EmailSettings | None = None
    schedule: ScheduleSettings = ScheduleSettings()
    report: ReportSettings = ReportSettings()
    webhooks: WebhookSettings | None = None
    source_path: Path = Path(DEFAULT_CONFIG_NAME)

    # Private: pydantic leaves private attributes out of repr() and model_dump().
    _secrets: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @field_validator("priorities", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {**DEFAULT_PRIORITIES, **value}
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        problems: list[tuple[Loc, str]] = []
        first_index: dict[str, int] = {}
        # (tracker site, project key) → client id: one client's data must never reach another's
        # report, even through two [trackers.*] entries naming the same site.
        owners: dict[tuple[str, ...], str] = {}
        for index, client in enumerate(self.clients):
            if client.id in first_index:
                first = first_index[client.id]
                problems.append(
                    (
                        ("clients", index, "id"),
                        f"duplicate client id '{client.id}' (also clients[{first}])",
                    )
                )
            else:
                first_index[client.id] = index
            tracker = self.trackers.get(client.tracker)
            if tracker is None:
                problems.append(
                    (
                        ("clients", index, "tracker"),
                        _unknown_name("tracker", client.tracker, list(self.trackers)),
                    )
                )
                continue
            for position, key in enumerate(client.projects):
                where: Loc = ("clients", index, "projects", position)
                if tracker.kind == "jira" and not _JIRA_KEY.fullmatch(key):
                    problems.append(
                        (
                            where,
                            f"'{key}' is not a Jira project key "
                            "(uppercase letters, digits and _, e.g. ACME)",
                        )
                    )
                owner = owners.setdefault((*tracker.site, key.upper()), client.id)
                if owner != client.id:
                    problems.append(
                        (
                            where,
                            f"project '{key}' of tracker '{client.tracker}' is already "
                            f"used by client '{owner}' (one client's data must never reach "
                            "another's report)",
                        )
                    )
        if problems:
            raise _Problems(problems)
        return self

    @property
    def config_dir(self) -> Path:
        return self.source_path.parent

    def client(self, client_id: str) -> ClientSettings:
        for client in self.clients:
            if client.id == client_id:
                return client
        known = ", ".join(client.id for client in self.clients) or "none"
        raise ConfigError(f"unknown client '{client_id}' (known: {known})")

    def tracker_for(self, client: ClientSettings) -> TrackerSettings:
        return self.trackers[client.tracker]

    def priorities_for(self, client: ClientSettings) -> dict[str, str]:
        """The priority table that applies to a client: its own entries, then its tracker's,
        then the top-level [priorities] (which include the DOMAIN.md defaults)."""
        tracker = self.trackers.get(client.tracker)
        return {**self.priorities, **(tracker.priorities if tracker else {}),
                **client.priorities}

    def map_priority(self, tracker_priority: str | None) -> str | None:
        """P0–P3 for a tracker's priority name (case-insensitive); None when absent or unmapped."""
        if not tracker_priority:
            return None
        wanted = tracker_priority.strip().casefold()
        for name, priority in self.priorities.items():
            if name.casefold() == wanted:
                return priority
        return None

    def secret(self, env_name: str) -> str:
        """The value of an environment variable a `*_env` key of this config names."""
        value = self._secrets.get(env_name)
        if value is None:
            raise ConfigError(f"environment variable {env_name} is not named by the config")
        return value.get_secret_value()

    def secret_values(self) -> list[str]:
        """Every secret this config gives access to, longest first (for log redaction)."""
        values = {secret.get_secret_value() for secret in self._secrets.values()}
        password = urlsplit(self.agency.database_url).password
        if password:
            values.add(password)
        return sorted((value for value in values if value), key=lambda v: (-len(v), v))


def _unknown_name(what: str, name: str, known: list[str]) -> str:
    if not known:
        return f"'{name}' is not a defined {what} (no [{what}s.<name>] section)"
    message = f"'{name}' is not a defined {what} (defined: {', '.join(known)})"
    close = difflib.get_close_matches(name, known, n=1)
    return f"{message}; did you mean '{close[0]}'?" if close else message


# ---------------------------------------------------------------------------
# loading


def resolve_config_path(cli_path: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """--config, else $TMABOT_CONFIG, else ./tmabot.toml."""
    if cli_path:
        return Path(cli_path).expanduser()
    if env.get("TMABOT_CONFIG"):
        return Path(env["TMABOT_CONFIG"]).expanduser()
    return Path(DEFAULT_CONFIG_NAME)


def load_config(path: Path, *, env: Mapping[str, str] = os.environ) -> Settings:
    """Read, validate and bind the config at `path`; every problem at once in a ConfigError."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found (use --config PATH or set TMABOT_CONFIG)")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path.name}: not UTF-8 text (byte {error.start}); save the file as UTF-8"
        ) from None
    return load_config_text(text, env=env, path=path)


def load_config_text(
    text: str, *, env: Mapping[str, str] = os.environ, path: Path = Path(DEFAULT_CONFIG_NAME)
) -> Settings:
    """Like load_config, from text; `path` names the file in messages and anchors relative paths."""
    path = Path(path).absolute()
    label = path.name
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{label}: invalid TOML: {error}") from None

    problems, secret_env_keys = _pop_literal_secrets(raw)
    if "source_path" in raw:  # set by the loader, never by the file
        del raw["source_path"]
        problems.append((("source_path",), _unknown_key_message("source_path", ())))
    problems += _missing_env(raw, env)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(
            {**raw, "source_path": path}, context={"base_dir": path.parent}
        )
    except ValidationError as error:
        # The `*_env` key a literal secret should have been is reported once, by that secret.
        problems += [
            (loc, message)
            for loc, message in _translate(error)
            if not (loc in secret_env_keys and message == "required key is missing")
        ]

    if problems or settings is None:
        locator = _KeyLines(text)
        located = [(locator.line_of(loc), loc, message) for loc, message in problems]
        located.sort(key=lambda item: (item[0] is None, item[0] or 0))
        secrets = [env[name] for name in _named_env_vars_raw(raw) if len(env.get(name, "")) >= 3]
        lines: list[str] = []
        for line, loc, message in located:
            rendered = _render(label, loc, message, line, secrets)
            if rendered not in lines:
                lines.append(rendered)
        raise ConfigError(lines)

    settings._secrets = {name: SecretStr(env[name]) for name in _named_env_vars(settings)}
    return settings


def _render(label: str, loc: Loc, message: str, line: int | None, secrets: list[str]) -> str:
    rendered = f"{label}: {_key_path(loc)}: {message}" if loc else f"{label}: {message}"
    if line is not None:
        rendered += f" (line {line})"
    # A secret typed into an ordinary key could be echoed as the bad value.
    for secret in sorted(secrets, key=len, reverse=True):
        rendered = rendered.replace(secret, "***")
    return rendered


def _key_path(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = (
                part
                if re.fullmatch(r"[A-Za-z0-9_-]+", part)
                else json.dumps(part, ensure_ascii=False)
            )
            text += f".{key}" if text else key
    return text


def _is_data_table(loc: Loc) -> bool:
    """Tables whose keys are the user's data (priority names, checklist ids), not settings."""
    if loc == ("priorities",):
        return True
    if len(loc) == 3 and loc[0] == "clients" and loc[2] in ("facts", "priorities",
                                                            "estimate_hours"):
        return True
    return len(loc) == 3 and loc[0] == "trackers" and loc[2] == "priorities"


def _walk(node: Any, loc: Loc = ()) -> Iterator[tuple[Loc, dict[str, Any], str]]:
    """Every (table location, table, key) of the parsed TOML, tables in arrays included."""
    if isinstance(node, dict):
        if _is_data_table(loc):
            return
        for key in list(node):
            yield loc, node, key
            if key in node:
                yield from _walk(node[key], (*loc, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, (*loc, index))


_LITERAL_SECRET = re.compile(
    r"(?:^|[_-])(?:token|password|passwd|pwd|secret|credentials?|api[_-]?key|apikey|"
    r"(?:access|secret|private)[_-]?key)$",
    re.IGNORECASE,
)


def _pop_literal_secrets(raw: dict[str, Any]) -> tuple[list[tuple[Loc, str]], set[Loc]]:
    """Problems for keys holding a literal secret, and the `*_env` keys suggested instead."""
    problems: list[tuple[Loc, str]] = []
    suggested: set[Loc] = set()
    for loc, table, key in _walk(raw):
        if key.lower().endswith("_env") or not _LITERAL_SECRET.search(key):
            continue
        # Dropped before validation so its value can never surface in an "invalid value" line.
        del table[key]
        expected = _expected_keys(loc)
        env_keys = [name for name in expected if name.endswith("_env")]
        suggestion = f"{key}_env" if f"{key}_env" in expected else (env_keys or ["token_env"])[0]
        suggested.add((*loc, suggestion))
        problems.append(
            (
                (*loc, key),
                f'secrets are not written in the config: use {suggestion} = "VAR" and export VAR',
            )
        )
    return problems, suggested


def _missing_env(raw: dict[str, Any], env: Mapping[str, str]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for loc, table, key in _walk(raw):
        name = table[key]
        if not key.endswith("_env") or not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            continue  # a malformed name is reported by validation
        value = env.get(name)
        if value is None:
            problems.append(((*loc, key), f"environment variable {name} is not set"))
        elif not value.strip():
            problems.append(((*loc, key), f"environment variable {name} is empty"))
    return problems


def _named_env_vars_raw(raw: dict[str, Any]) -> list[str]:
    return [
        table[key]
        for _, table, key in _walk(raw)
        if key.endswith("_env") and isinstance(table[key], str)
    ]


def _named_env_vars(node: Any) -> list[str]:
    """Every environment variable a validated `*_env` field names."""
    names: list[str] = []
    if isinstance(node, BaseModel):
        for field in type(node).model_fields:
            value = getattr(node, field)
            if field.endswith("_env") and isinstance(value, str):
                names.append(value)
            else:
                names += _named_env_vars(value)
    elif isinstance(node, tuple | list):
        for item in node:
            names += _named_env_vars(item)
    elif isinstance(node, dict):
        for item in node.values():
            names += _named_env_vars(item)
    return names


# ---------------------------------------------------------------------------
# pydantic errors → plain lines


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not NoneType]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _model_field(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return field
    return None


def _annotation_at(loc: Loc) -> Any:
    annotation: Any = Settings
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not isinstance(part, str):
                return None
            field = _model_field(annotation, part)
            if field is None:
                return None
            annotation = field.annotation
        else:
            origin, args = typing.get_origin(annotation), typing.get_args(annotation)
            if origin in (tuple, list) and args:
                annotation = args[0]
            elif origin is dict and len(args) == 2:
                annotation = args[1]
            else:
                return None
    return _unwrap(annotation)


def _expected_keys(loc: Loc) -> list[str]:
    """The keys the table at `loc` accepts (TOML spelling), for "did you mean"."""
    model = _annotation_at(loc)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    keys = [field.alias or name for name, field in model.model_fields.items()]
    return [key for key in keys if not (model is Settings and key == "source_path")]


def _unknown_key_message(key: str, parent: Loc) -> str:
    close = difflib.get_close_matches(key, _expected_keys(parent), n=1, cutoff=0.6)
    return f"unknown key (typo?); did you mean '{close[0]}'?" if close else "unknown key (typo?)"


def _shown(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value, default=str)


_PLAIN_MESSAGES = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "time_type": "expected a time of day (HH:MM)",
    "time_parsing": "expected a time of day (HH:MM)",
    "path_type": "expected a path (a string)",
    "decimal_type": 'expected an amount as a string, e.g. "900.00"',
    "decimal_parsing": 'expected an amount as a string, e.g. "900.00"',
    "finite_number": "must be a finite number",
    "none_required": "must not be set",
}


def _plain_message(error: Any, loc: Loc) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key_message(str(loc[-1]), loc[:-1])
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{_shown(error['input'])} is not one of {', '.join(choices)}"
    if kind in ("list_type", "tuple_type", "set_type"):
        element = _annotation_at((*loc, 0))
        if isinstance(element, type) and issubclass(element, BaseModel):
            return f"expected an array of tables ([[{_key_path(loc)}]])"
        return 'expected a list, e.g. ["a", "b"]'
    if kind == "too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"must have at least {ctx.get('min_length')} items"
    if kind == "string_too_short":
        return "must not be empty"
    bounds = {
        "greater_than": ("gt", "must be greater than"),
        "greater_than_equal": ("ge", "must be at least"),
        "less_than": ("lt", "must be less than"),
        "less_than_equal": ("le", "must be at most"),
    }
    if kind in bounds:
        key, text = bounds[kind]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"{text} {bound}"
    if kind in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[kind]
    message = str(error.get("msg", "invalid value"))
    return message[:1].lower() + message[1:]


def _translate(error: ValidationError) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    items = error.errors()
    for item in items:
        if item["type"] == "too_short" and any(
            len(other["loc"]) > len(item["loc"]) and other["loc"][: len(item["loc"])] == item["loc"]
            for other in items
        ):
            continue  # "empty" only because its items were invalid: those are reported
        # Drop pydantic's internal steps ("function-after[...]", "[key]") from locations.
        loc: Loc = tuple(
            part
            for part in item["loc"]
            if isinstance(part, int) or not (part.startswith(("function-", "[")) or "[" in part)
        )
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, _Problems):
            problems += [((*loc, *sub), message) for sub, message in cause.items]
        elif item["type"] in ("value_error", "assertion_error") and cause is not None:
            problems.append((loc, str(cause)))
        else:
            problems.append((loc, _plain_message(item, loc)))
    return problems


# ---------------------------------------------------------------------------
# where a key is written


_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _KeyLines:
    """Best-effort map from key paths to the line they are written on, for error messages."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._newlines = [index for index, char in enumerate(text) if char == "\n"]
        self.lines: dict[Loc, int] = {}
        try:
            self._scan()
        except Exception:  # noqa: BLE001 - a locator bug must never hide the real problem
            pass

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, else of its nearest written parent (e.g. a missing key's table)."""
        for length in range(len(loc), 0, -1):
            line = self.lines.get(tuple(loc[:length]))
            if line is not None:
                return line
        return None

    def _mark(self, loc: Loc, position: int) -> None:
        self.lines.setdefault(loc, bisect.bisect_left(self._newlines, position) + 1)

    def _mark_table(self, table: Loc, position: int) -> None:
        # Implicit parents (`trackers` of `[trackers.x]`) are located at their first sub-table.
        for length in range(1, len(table) + 1):
            self._mark(table[:length], position)

    def _scan(self) -> None:
        text, end = self._text, len(self._text)
        table: Loc = ()
        array_counts: dict[Loc, int] = {}
        position = 0
        while True:
            position = self._skip(position, newlines=True)
            if position >= end:
                return
            start = position
            if text.startswith("[[", position):
                keys, position = self._keys(position + 2)
                position = text.index("]]", position) + 2
                table = self._table(keys, array_counts, is_array=True)
                self._mark_table(table, start)
            elif text[position] == "[":
                keys, position = self._keys(position + 1)
                position = text.index("]", position) + 1
                table = self._table(keys, array_counts, is_array=False)
                self._mark_table(table, start)
            else:
                keys, position = self._keys(position)
                position = self._skip(position, newlines=False)
                if position >= end or text[position] != "=" or not keys:
                    return  # not TOML we understand: keep what we have
                self._mark((*table, *keys), start)
                position = self._value(position + 1, (*table, *keys))
            position = self._skip(position, newlines=False)

    @staticmethod
    def _table(keys: Loc, array_counts: dict[Loc, int], *, is_array: bool) -> Loc:
        # `[clients.contract]` belongs to the last `[[clients]]` seen.
        resolved: list[str | int] = []
        for index, key in enumerate(keys):
            resolved.append(key)
            if is_array and index == len(keys) - 1:
                count = array_counts.get(tuple(resolved), -1) + 1
                array_counts[tuple(resolved)] = count
                resolved.append(count)
            elif tuple(resolved) in array_counts:
                resolved.append(array_counts[tuple(resolved)])
        return tuple(resolved)

    def _skip(self, position: int, *, newlines: bool) -> int:
        text, end = self._text, len(self._text)
        while position < end:
            char = text[position]
            if char in " \t\r" or (newlines and char == "\n"):
                position += 1
            elif char == "#":
                newline = text.find("\n", position)
                position = end if newline < 0 else newline
            else:
                break
        return position

    def _keys(self, position: int) -> tuple[Loc, int]:
        text, end = self._text, len(self._text)
        keys: list[str | int] = []
        while True:
            position = self._skip(position, newlines=False)
            if position >= end:
                break
            if text[position] in "\"'":
                stop = self._string_end(position)
                raw = text[position:stop]
                try:
                    keys.append(tomllib.loads(f"k = {raw}")["k"])
                except tomllib.TOMLDecodeError:
                    keys.append(raw[1:-1])
                position = stop
            else:
                start = position
                while position < end and text[position] in _BARE_KEY:
                    position += 1
                if position == start:
                    break
                keys.append(text[start:position])
            position = self._skip(position, newlines=False)
            if position < end and text[position] == ".":
                position += 1
                continue
            break
        return tuple(keys), position

    def _string_end(self, position: int) -> int:
        text = self._text
        for quotes in ('"""', "'''"):
            if text.startswith(quotes, position):
                search = position + 3
                while True:
                    close = text.index(quotes, search)
                    backslashes = 0
                    while quotes == '"""' and text[close - 1 - backslashes] == "\\":
                        backslashes += 1
                    if backslashes % 2 == 0:
                        close += 3
                        # Up to two quotes may end the content right before the delimiter.
                        while close < len(text) and text[close] == quotes[0]:
                            close += 1
                        return close
                    search = close + 1
        if text[position] == "'":
            return text.index("'", position + 1) + 1
        index = position + 1
        while text[index] != '"':
            index += 2 if text[index] == "\\" else 1
        return index + 1

    def _value(self, position: int, loc: Loc) -> int:
        text, end = self._text, len(self._text)
        position = self._skip(position, newlines=False)
        if position >= end:
            return position
        char = text[position]
        if char in "\"'":
            return self._string_end(position)
        if char == "[":
            position += 1
            index = 0
            while True:
                position = self._skip(position, newlines=True)
                if position >= end or text[position] == "]":
                    return position + 1
                self._mark((*loc, index), position)
                before = position
                position = self._skip(self._value(position, (*loc, index)), newlines=True)
                index += 1
                if position < end and text[position] == ",":
                    position += 1
                elif position == before:
                    return position  # not TOML we understand: never loop on it
        if char == "{":
            position += 1
            while True:
                position = self._skip(position, newlines=True)
                if position >= end or text[position] == "}":
                    return position + 1
                start = position
                keys, position = self._keys(position)
                position = self._skip(position, newlines=False)
                if not keys or position >= end or text[position] != "=":
                    return position
                self._mark((*loc, *keys), start)
                position = self._value(position + 1, (*loc, *keys))
                position = self._skip(position, newlines=True)
                if position < end and text[position] == ",":
                    position += 1
        while position < end and text[position] not in ",]}\n#":
            position += 1
        return position

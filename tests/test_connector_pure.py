"""Pure pieces of the Jira connector: JQL, time parsing, ADF, statuses, error classes, retries."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import requests

from connectors.errors import (
    ErrorKind,
    TrackerConfigError,
    TrackerError,
    TrackerUnavailable,
    classify_exception,
    classify_response,
)
from connectors.jira import (
    StatusMap,
    adf_to_text,
    build_jql,
    jql_date,
    parse_jira_time,
    transitions_from_histories,
)
from connectors.retry import RetryPolicy


def test_build_jql_full_and_incremental_in_user_zone() -> None:
    assert build_jql("ACME", None, "Europe/Paris") == (
        'project = "ACME" ORDER BY updated ASC, key ASC')
    # 09:07:42 UTC = 10:07 in Paris (winter); minus the 10 min overlap, floored to the minute.
    since = datetime(2026, 11, 3, 9, 7, 42, tzinfo=UTC)
    assert build_jql("ACME", since, "Europe/Paris") == (
        'project = "ACME" AND updated >= "2026-11-03 09:57" ORDER BY updated ASC, key ASC')
    assert build_jql("ACME", since, "America/New_York", overlap=timedelta(0)) == (
        'project = "ACME" AND updated >= "2026-11-03 04:07" ORDER BY updated ASC, key ASC')


def test_jql_quotes_are_escaped() -> None:
    assert build_jql('A"B', None, None).startswith('project = "A\\"B"')


@pytest.mark.parametrize("tz,expected", [
    ("Europe/Paris", "2026-03-29 03:30"),  # after the spring-forward gap
    (None, "2026-03-29 01:30"),
])
def test_jql_date_dst(tz: str | None, expected: str) -> None:
    assert jql_date(datetime(2026, 3, 29, 1, 30, 59, tzinfo=UTC), tz) == expected


@pytest.mark.parametrize("raw,expected", [
    ("2022-05-17T04:28:19.523-0700", datetime(2022, 5, 17, 11, 28, 19, 523000, tzinfo=UTC)),
    ("2026-10-05T10:12:00.000+0200", datetime(2026, 10, 5, 8, 12, tzinfo=UTC)),
    ("2026-10-05T10:12:00+02:00", datetime(2026, 10, 5, 8, 12, tzinfo=UTC)),
    (1759651920000, datetime(2025, 10, 5, 8, 12, tzinfo=UTC)),
    ("1759651920000", datetime(2025, 10, 5, 8, 12, tzinfo=UTC)),
    (None, None),
])
def test_parse_jira_time(raw: object, expected: datetime | None) -> None:
    assert parse_jira_time(raw) == expected  # type: ignore[arg-type]


def test_adf_to_text() -> None:
    doc = {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "Erreur 500"},
                                          {"type": "hardBreak"},
                                          {"type": "text", "text": "sur le panier"}]},
        {"type": "paragraph", "content": [{"type": "mention", "attrs": {"text": "@Léa"}}]}]}
    assert adf_to_text(doc) == "Erreur 500\nsur le panier\n@Léa"
    assert adf_to_text("plain v2 text") == "plain v2 text"
    assert adf_to_text(None) == ""


def test_transitions_keep_status_items_only_and_map_historical_ids() -> None:
    statuses = StatusMap({"1": ("À faire", "todo"), "3": ("En cours", "in_progress")})
    histories = [
        {"id": "20", "created": "2026-10-02T10:00:00.000+0200", "items": [
            {"field": "assignee", "fieldId": "assignee", "from": None, "to": "u1"},
            {"field": "status", "fieldId": "status", "from": "3", "fromString": "En cours",
             "to": "99", "toString": "Ancien statut"}]},
        {"id": "10", "created": "2026-10-01T10:00:00.000+0200", "items": [
            {"field": "status", "fieldId": "status", "from": "1", "fromString": "À faire",
             "to": "3", "toString": "En cours"}]},
    ]
    out = transitions_from_histories("I1", histories, statuses)
    assert [t.history_id for t in out] == ["10", "20"]  # sorted oldest first
    assert out[0].from_category == "todo" and out[0].to_category == "in_progress"
    assert out[1].to_category is None  # unknown historical status: not guessed
    assert statuses.missing("99") and not statuses.missing("1")


@pytest.mark.parametrize("status,body,headers,kind,retry_after", [
    (429, "", {"Retry-After": "7"}, ErrorKind.RETRIABLE, 7.0),
    (503, "", {}, ErrorKind.RETRIABLE, None),
    (500, "oops", {}, ErrorKind.RETRIABLE, None),
    (401, '{"errorMessages":["Client must be authenticated"]}', {}, ErrorKind.CONFIG, None),
    (403, "", {}, ErrorKind.CONFIG, None),
    (404, '{"errorMessages":["No project"]}', {}, ErrorKind.CONFIG, None),
    (400, '{"errorMessages":["Error in the JQL Query"],"errors":{}}', {}, ErrorKind.FATAL, None),
    (410, "{}", {}, ErrorKind.FATAL, None),
])
def test_classify_response_table(status: int, body: str, headers: dict[str, str],
                                 kind: ErrorKind, retry_after: float | None) -> None:
    c = classify_response(status, body, headers)
    assert c.kind is kind
    assert c.retry_after == retry_after


def test_classify_exceptions() -> None:
    assert classify_exception(requests.ReadTimeout()).kind is ErrorKind.RETRIABLE
    assert classify_exception(requests.ConnectionError()).kind is ErrorKind.RETRIABLE
    assert classify_exception(ValueError("bad json")).kind is ErrorKind.RETRIABLE
    assert classify_exception(KeyError("x")).kind is ErrorKind.FATAL


def _policy(sleeps: list[float], attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, base_delay=1.0, max_delay=10.0, jitter=0.25,
                       sleep=sleeps.append, rng=random.Random(1))


def _http_error(status: int, body: str = "", headers: dict[str, str] | None = None) -> Exception:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body.encode()
    resp.headers.update(headers or {})
    return requests.HTTPError(response=resp)


def test_retry_honours_retry_after_then_succeeds() -> None:
    sleeps: list[float] = []
    calls = iter([_http_error(429, headers={"Retry-After": "3"}), _http_error(503), "ok"])

    def fn() -> str:
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    assert _policy(sleeps).call(fn, tracker="t", what="search") == "ok"
    assert 3.0 <= sleeps[0] <= 3.25  # Retry-After respected, small jitter on top
    assert 1.5 <= sleeps[1] <= 2.5  # second attempt: 2 x base, +/- 25 %


def test_retry_is_bounded_and_caps_delays() -> None:
    sleeps: list[float] = []

    def fn() -> None:
        raise _http_error(429, headers={"Retry-After": "3600"})

    with pytest.raises(TrackerUnavailable, match="still failing after 4 attempts"):
        _policy(sleeps).call(fn, tracker="t", what="search")
    assert len(sleeps) == 3 and all(s <= 10.25 for s in sleeps)


def test_retry_does_not_retry_config_or_fatal_errors() -> None:
    sleeps: list[float] = []

    def unauthorized() -> None:
        raise _http_error(401, '{"errorMessages":["Client must be authenticated"]}')

    with pytest.raises(TrackerConfigError, match="authentication failed") as info:
        _policy(sleeps).call(unauthorized, tracker="agency-jira", what="search")
    assert str(info.value).startswith("agency-jira: ") and info.value.exit_code == 2

    def bad_jql() -> None:
        raise _http_error(400, '{"errorMessages":["Error in the JQL Query: bad"],"errors":{}}')

    with pytest.raises(TrackerError, match="Error in the JQL Query: bad") as info2:
        _policy(sleeps).call(bad_jql, tracker="t", what="search")
    assert info2.value.exit_code == 1
    assert sleeps == []


def test_backoff_grows_exponentially_with_jitter() -> None:
    p = RetryPolicy(base_delay=1.0, max_delay=100.0, jitter=0.0)
    assert [p.delay(a, None) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]

"""The JQL subset the Jira emulator understands: parse, filter and order issues like Jira does."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tmabot.emulators.dataset import JiraIssue

MAX_ORDER_BY_FIELDS = 7  # Jira Cloud refuses more

_DATE_FIELDS = {"updated": "updated", "updateddate": "updated",
                "created": "created", "createddate": "created"}
_ORDER_FIELDS = {"updated": "updated", "updateddate": "updated", "created": "created",
                 "createddate": "created", "key": "key", "issuekey": "key", "id": "id"}
# Jira sorts dates newest first unless told otherwise; keys and ids ascending.
_DEFAULT_DESCENDING = {"updated": True, "created": True, "key": False, "id": False}
_DATE_OPERATORS = {">=", ">", "<=", "<", "="}
# Real Jira fields outside the subset: refused with a message naming the emulator, so a
# 400 here is not mistaken for a typo.
_UNSUPPORTED_FIELDS = {
    "status", "statuscategory", "assignee", "reporter", "creator", "priority", "labels",
    "component", "issuetype", "type", "resolution", "resolved", "resolutiondate", "key",
    "issuekey", "id", "summary", "description", "text", "parent", "sprint", "duedate",
    "fixversion", "worklogdate", "worklogauthor", "timespent", "originalestimate",
}
_DATE_VALUE = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})(?: (\d{1,2}):(\d{2}))?")
_TOKEN = re.compile(
    r"""(?:
        "(?P<dq>(?:[^"\\]|\\.)*)"
      | '(?P<sq>(?:[^'\\]|\\.)*)'
      | (?P<op>>=|<=|!=|!~|=|>|<|~)
      | (?P<punct>[(),])
      | (?P<word>[^\s"'(),=<>!~]+)
    )""",
    re.VERBOSE,
)


class JqlError(ValueError):
    """A query Jira would refuse with 400; `message` is Jira's wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _Token:
    kind: str  # "string" (quoted), "word", "op", "punct", "end"
    text: str
    pos: int


@dataclass(frozen=True)
class DateCondition:
    field: str  # "updated" | "created"
    op: str
    instant: datetime  # aware: the literal read in the API user's time zone


@dataclass(frozen=True)
class JqlQuery:
    projects: frozenset[str] | None  # project keys allowed; None = no project clause
    conditions: tuple[DateCondition, ...]
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)

    @property
    def bounded(self) -> bool:
        return self.projects is not None

    def matches(self, issue: JiraIssue) -> bool:
        if self.projects is not None and issue.project_key not in self.projects:
            return False
        for cond in self.conditions:
            value = issue.updated if cond.field == "updated" else issue.created
            if not _compare(value, cond.op, cond.instant):
                return False
        return True

    def run(self, issues: Iterable[JiraIssue]) -> list[JiraIssue]:
        """Matching issues in the query's order (ties broken by id, so pages are stable)."""
        found = [issue for issue in issues if self.matches(issue)]
        found.sort(key=_id_order)
        # Stable sorts from the least significant key up give a multi-key order.
        for name, descending in reversed(self.order_by):
            found.sort(key=_SORT_KEYS[name], reverse=descending)
        return found


def _compare(value: datetime, op: str, instant: datetime) -> bool:
    # The literal can only name a minute; the issue's own timestamp keeps its seconds,
    # so 10:00:59 is >= "10:00" and < "10:01", as on a real site.
    if op == ">=":
        return value >= instant
    if op == ">":
        return value > instant
    if op == "<=":
        return value <= instant
    if op == "<":
        return value < instant
    return value == instant


def _issue_number(issue: JiraIssue) -> int:
    tail = issue.key.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0


def _id_order(issue: JiraIssue) -> tuple[int, str]:
    return (int(issue.id) if issue.id.isdigit() else 0, issue.id)


_SORT_KEYS: dict[str, Callable[[JiraIssue], Any]] = {
    "updated": lambda i: i.updated,
    "created": lambda i: i.created,
    "key": lambda i: (i.project_key, _issue_number(i)),
    "id": _id_order,
}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            char = text[pos]
            raise JqlError(
                f"Error in the JQL Query: The character '{char}' is a reserved JQL character. "
                f"You must enclose it in a string or use the escape '\\u{ord(char):04x}' "
                f"instead. (line 1, character {pos + 1})"
            )
        start = pos
        if m.group("dq") is not None or m.group("sq") is not None:
            raw = m.group("dq") if m.group("dq") is not None else m.group("sq")
            tokens.append(_Token("string", re.sub(r"\\(.)", r"\1", raw), start))
        elif m.group("op") is not None:
            tokens.append(_Token("op", m.group("op"), start))
        elif m.group("punct") is not None:
            tokens.append(_Token("punct", m.group("punct"), start))
        else:
            tokens.append(_Token("word", m.group("word"), start))
        pos = m.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(
        self, text: str, time_zone: str, resolve_project: Callable[[str], str | None],
    ) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.zone = ZoneInfo(time_zone)
        self.resolve_project = resolve_project

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok.kind == "word" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def fail(self, expecting: str, tok: _Token | None = None) -> JqlError:
        tok = tok or self.peek()
        got = "end of query" if tok.kind == "end" else f"'{tok.text}'"
        return JqlError(
            f"Error in the JQL Query: Expecting {expecting} but got {got}. "
            f"(line 1, character {tok.pos + 1})"
        )

    def value(self) -> str:
        tok = self.next()
        if tok.kind not in ("string", "word"):
            raise self.fail("either a value, an 'empty' or a function", tok)
        return tok.text

    def parse(self) -> JqlQuery:
        projects: frozenset[str] | None = None
        conditions: list[DateCondition] = []
        order_by: list[tuple[str, bool]] = []
        if self.peek().kind != "end" and not self._at_order_by():
            while True:
                clause = self.clause()
                if isinstance(clause, DateCondition):
                    conditions.append(clause)
                else:
                    projects = clause if projects is None else projects & clause
                if not self.keyword("and"):
                    break
        if self.keyword("order"):
            if not self.keyword("by"):
                raise self.fail("'by'")
            while True:
                order_by.append(self.sort_item())
                if not (self.peek().kind == "punct" and self.peek().text == ","):
                    break
                self.next()
            if len(order_by) > MAX_ORDER_BY_FIELDS:
                raise JqlError(
                    "Error in the JQL Query: The ORDER BY clause may not have more than "
                    f"{MAX_ORDER_BY_FIELDS} fields."
                )
        tok = self.peek()
        if tok.kind != "end":
            if tok.kind == "word" and tok.text.lower() in ("or", "not"):
                raise JqlError(
                    f"Error in the JQL Query: the emulator does not support '{tok.text}' "
                    f"(line 1, character {tok.pos + 1})"
                )
            raise self.fail("either 'OR' or 'AND'" if not order_by else "',' or end of query")
        return JqlQuery(projects, tuple(conditions), tuple(order_by))

    def _at_order_by(self) -> bool:
        tok = self.peek()
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else tok
        return (tok.kind == "word" and tok.text.lower() == "order"
                and nxt.kind == "word" and nxt.text.lower() == "by")

    def clause(self) -> DateCondition | frozenset[str]:
        tok = self.next()
        if tok.kind not in ("word", "string"):
            raise self.fail("a field name", tok)
        name = tok.text.lower()
        if name == "project":
            return self.project_clause()
        if name in _DATE_FIELDS:
            op = self.next()
            if op.kind != "op" or op.text not in _DATE_OPERATORS:
                raise self.fail("operator", op)
            raw = self.value()
            return DateCondition(_DATE_FIELDS[name], op.text, self.date(raw, tok.text))
        if name in _UNSUPPORTED_FIELDS:
            raise JqlError(
                f"Error in the JQL Query: the emulator does not support the field '{tok.text}'; "
                f"it understands project, created and updated. (line 1, character {tok.pos + 1})"
            )
        raise JqlError(
            f"Field '{tok.text}' does not exist or you do not have permission to view it."
        )

    def project_clause(self) -> frozenset[str]:
        op = self.next()
        values: list[str]
        if op.kind == "op" and op.text == "=":
            values = [self.value()]
        elif op.kind == "word" and op.text.lower() == "in":
            lparen = self.next()
            if lparen.text != "(":
                raise self.fail("'('", lparen)
            values = [self.value()]
            while self.peek().text == ",":
                self.next()
                values.append(self.value())
            rparen = self.next()
            if rparen.text != ")":
                raise self.fail("')'", rparen)
        else:
            raise self.fail("operator", op)
        keys = []
        for value in values:
            key = self.resolve_project(value)
            if key is None:
                raise JqlError(f"The value '{value}' does not exist for the field 'project'.")
            keys.append(key)
        return frozenset(keys)

    def date(self, raw: str, field_name: str) -> datetime:
        m = _DATE_VALUE.fullmatch(raw.strip())
        try:
            if m is None:
                raise ValueError(raw)
            year, _, month, day, hour, minute = m.groups()
            return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                            tzinfo=self.zone)
        except ValueError:
            raise JqlError(
                f"Date value '{raw}' for field '{field_name}' is invalid. Valid formats include: "
                "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a "
                "period format e.g. '-5d', '4w 2d'."
            ) from None

    def sort_item(self) -> tuple[str, bool]:
        tok = self.next()
        if tok.kind not in ("word", "string"):
            raise self.fail("a field name", tok)
        name = _ORDER_FIELDS.get(tok.text.lower())
        if name is None:
            raise JqlError(
                f"Error in the JQL Query: the emulator cannot order by '{tok.text}' "
                f"(line 1, character {tok.pos + 1})"
            )
        if self.keyword("asc"):
            return name, False
        if self.keyword("desc"):
            return name, True
        return name, _DEFAULT_DESCENDING[name]


def parse_jql(
    text: str, *, time_zone: str, resolve_project: Callable[[str], str | None],
) -> JqlQuery:
    """Parse `text`; dates are read in `time_zone` (the API user's profile zone).

    `resolve_project` maps a project key, id or name to its key (None when unknown).
    Raises JqlError with Jira's message for anything outside the supported subset.
    """
    return _Parser(text, time_zone, resolve_project).parse()

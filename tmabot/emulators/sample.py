"""Deterministic sample data: a French web agency on Jira with three TMA clients, and bulk data."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from tmabot.emulators import sample_texts as texts
from tmabot.emulators.dataset import (
    DONE,
    INDETERMINATE,
    NEW,
    ChangeItem,
    JiraDataset,
    JiraHistory,
    JiraIssue,
    JiraProject,
    JiraStatus,
    JiraUser,
    JiraWorklog,
)

TIMEZONE = "Europe/Paris"
PARIS = ZoneInfo(TIMEZONE)
AGENCY_NAME = "Atelier des Pentes"
AGENCY_DOMAIN = "atelier-des-pentes.fr"

# -- workflow -----------------------------------------------------------------
S_TODO, S_BACKLOG, S_DOING, S_WAITING, S_RECETTE = "10000", "10001", "10002", "10003", "10004"
S_STAGING, S_DONE, S_CANCELLED, S_REOPENED = "10005", "10006", "10007", "10008"
_STATUS_TABLE = [
    (S_TODO, "À faire", NEW),
    (S_BACKLOG, "Backlog", NEW),
    (S_DOING, "En cours", INDETERMINATE),
    (S_WAITING, "En attente client", INDETERMINATE),  # the SLA pause status
    (S_RECETTE, "Recette", INDETERMINATE),  # staging, used by LIB
    (S_STAGING, "In staging", INDETERMINATE),  # staging, used by AZR
    (S_DONE, "Terminé", DONE),
    (S_CANCELLED, "Annulé", DONE),
    (S_REOPENED, "Rouvert", NEW),  # like Jira's built-in "Reopened", in To Do
]
# "Recette" was renamed from "En recette" two months into the sample, so old
# changelog entries carry the old name: consumers must match by id or by the
# name at the time (DOMAIN.md §2).
RECETTE_OLD_NAME = "En recette"
STAGING_STATUSES = ["Recette", "In staging"]
PAUSE_STATUSES = ["En attente client"]

MODERN_PRIORITIES = ["Highest", "High", "Medium", "Low", "Lowest"]
LEGACY_PRIORITIES = ["Blocker", "Critical", "Major", "Minor", "Trivial"]


def sample_statuses() -> list[JiraStatus]:
    """The agency's Jira statuses (fresh objects: datasets are mutable)."""
    return [JiraStatus(sid, name, cat) for sid, name, cat in _STATUS_TABLE]


# -- public model ---------------------------------------------------------------
@dataclass
class SampleClient:
    id: str
    name: str
    project_key: str
    tier: str  # essentiel | business | critique
    model: str  # forfait | credit_temps | sla
    monthly_fee: str  # decimal string, EUR excl. VAT
    hourly_rate: str
    start: date
    credits: list[tuple[date, float]]  # prepaid hour blocks bought (credit_temps only)
    report_recipients: list[str]
    slack_channel: str
    site: str
    email_domain: str = ""


@dataclass
class SampleAgency:
    name: str
    timezone: str
    dataset: JiraDataset
    clients: list[SampleClient]
    now: datetime
    email_domain: str = AGENCY_DOMAIN
    staging_statuses: list[str] = field(default_factory=lambda: list(STAGING_STATUSES))
    pause_statuses: list[str] = field(default_factory=lambda: list(PAUSE_STATUSES))
    # Issue key -> the DOMAIN.md category the generator meant (None: deliberately
    # ambiguous). Ground truth for tests, not something a tracker would know.
    categories: dict[str, str | None] = field(default_factory=dict)


# -- the agency's clock ------------------------------------------------------------
_WINDOWS = ((time(9, 0), time(12, 30)), (time(13, 30), time(18, 0)))


class _Clock:
    """Office hours in Paris, to put people's actions where they really happen."""

    def __init__(self, years: Sequence[int]) -> None:
        self._holidays = frozenset(holidays.France(years=list(years)))

    def is_workday(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def holidays_between(self, lo: date, hi: date) -> list[date]:
        return sorted(d for d in self._holidays if lo <= d <= hi)

    def _windows(self, day: date) -> list[tuple[datetime, datetime]]:
        return [(datetime.combine(day, a, PARIS), datetime.combine(day, b, PARIS))
                for a, b in _WINDOWS]

    def add(self, at: datetime, minutes: float) -> datetime:
        """`at` plus `minutes` of office time (a zero delay snaps to the next opening)."""
        left, local = timedelta(minutes=minutes), at.astimezone(PARIS)
        day = local.date()
        while True:
            if self.is_workday(day):
                for a, b in self._windows(day):
                    start = max(a, local)
                    if start >= b:
                        continue
                    if start + left <= b:
                        return (start + left).astimezone(UTC)
                    left -= b - start
            day += timedelta(days=1)

    def back(self, at: datetime, minutes: float) -> datetime:
        """The moment `minutes` of office time before `at`."""
        left, local = timedelta(minutes=minutes), at.astimezone(PARIS)
        day = local.date()
        while True:
            if self.is_workday(day):
                for a, b in reversed(self._windows(day)):
                    end = min(b, local)
                    if end <= a:
                        continue
                    if end - left >= a:
                        return (end - left).astimezone(UTC)
                    left -= end - a
            day -= timedelta(days=1)


def _first_of_month(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _paris_midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), PARIS).astimezone(UTC)


def _require_aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware")
    return now.astimezone(UTC)


# -- generation ---------------------------------------------------------------------
@dataclass
class _Draft:
    prof: texts.Profile
    kind: str
    created: datetime
    summary: str
    p: int | None = None
    initial: str = S_TODO
    issue_type: str = "Task"
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    description: str | None = None
    reporter: str = ""
    parent: _Draft | None = None
    script: list[tuple[int, bool, str]] | None = None  # forced (minutes, office time?, status)
    key: str = ""


class _Builder:
    """Builds the sample agency; one instance per call, all randomness from `seed`."""

    def __init__(self, now: datetime, seed: int) -> None:
        self.now = _require_aware(now)
        self.seed = seed
        local_now = self.now.astimezone(PARIS)
        self.first_day = _first_of_month(local_now.date(), -6)
        self.start = _paris_midnight(self.first_day)
        self.months = [_first_of_month(self.first_day, i) for i in range(7)]
        self.clock = _Clock(range(self.first_day.year - 3, local_now.year + 2))
        self.rename_at = _paris_midnight(_first_of_month(self.first_day, 2))
        self.ds = JiraDataset(user_time_zone=TIMEZONE, statuses=sample_statuses(),
                              priorities=MODERN_PRIORITIES + LEGACY_PRIORITIES)
        self.names = {st.id: st.name for st in self.ds.statuses}
        self.by_name = {st.name: st.id for st in self.ds.statuses}
        self.cats = {st.id: st.category for st in self.ds.statuses}
        self.booked: Counter[tuple[str, date]] = Counter()  # seconds logged per person per day
        self.ids: dict[str, str] = {}  # person key -> account id
        self._make_users(random.Random(f"{seed}:users"))

    # -- setup --------------------------------------------------------------------
    def _make_users(self, rng: random.Random) -> None:
        for key, (display, username, local, visible) in texts.AGENCY_PEOPLE.items():
            self.ids[key] = f"{rng.getrandbits(96):024x}"
            self.ds.users.append(JiraUser(self.ids[key], username, display,
                                          f"{local}@{AGENCY_DOMAIN}", email_visible=visible))
        self.ids["automation"] = texts.AUTOMATION_ID
        self.ds.users.append(JiraUser(texts.AUTOMATION_ID, "automation", "Automation for Jira",
                                      None, email_visible=False, time_zone="UTC"))
        for prof in texts.PROFILES:
            self.ids[prof.id] = f"{rng.getrandbits(96):024x}"
            display, username, email = prof.reporter
            self.ds.users.append(JiraUser(self.ids[prof.id], username, display, email))

    def build(self) -> SampleAgency:
        drafts: list[_Draft] = []
        for prof in texts.PROFILES:
            self.ds.projects.append(JiraProject(self.ds.new_id(), prof.key, prof.name))
            drafts += self._plan(prof, random.Random(f"{self.seed}:{prof.id}:plan"))
        drafts.sort(key=lambda d: d.created)  # stable: ties keep planning order
        counters = {prof.key: 0 for prof in texts.PROFILES}
        for d in drafts:
            counters[d.prof.key] += 1
            d.key = f"{d.prof.key}-{counters[d.prof.key]}"
        life_rngs = {p.id: random.Random(f"{self.seed}:{p.id}:life") for p in texts.PROFILES}
        for d in drafts:
            self.ds.issues.append(self._live(d, life_rngs[d.prof.id]))
        self._number_events()
        self.quoted = {d.key for d in drafts if d.kind == "hors_perimetre"}
        clients = [self._client(prof) for prof in texts.PROFILES]
        categories = {d.key: texts.KINDS[d.kind].category for d in drafts}
        return SampleAgency(AGENCY_NAME, TIMEZONE, self.ds, clients, self.now,
                            categories=categories)

    def _client(self, prof: texts.Profile) -> SampleClient:
        start = _first_of_month(self.first_day, -prof.started_months_before)
        credits = self._credits(prof, start) if prof.model == "credit_temps" else []
        return SampleClient(prof.id, prof.name, prof.key, prof.tier, prof.model, prof.fee,
                            prof.rate, start, credits, list(prof.recipients), prof.slack,
                            prof.site, prof.domain)

    def _credits(self, prof: texts.Profile, start: date) -> list[tuple[date, float]]:
        # The client tops up 40 h whenever fewer than 5 h remain; quoted work
        # (hors périmètre) is invoiced separately and does not draw on them.
        block, credits, balance = 40.0, [(start, 40.0)], 40.0
        logs = sorted(
            (wl.started, wl.time_spent_seconds / 3600)
            for issue in self.ds.issues
            if issue.project_key == prof.key and issue.key not in self.quoted
            for wl in issue.worklogs
        )
        for started, hours in logs:
            balance -= hours
            if balance < 5:
                day = started.astimezone(PARIS).date() + timedelta(days=1)
                while not self.clock.is_workday(day):
                    day += timedelta(days=1)
                if day <= self.now.astimezone(PARIS).date():
                    credits.append((day, block))
                    balance += block
        return credits

    # -- planning: what tickets exist and when they were created ---------------------
    def _plan(self, prof: texts.Profile, rng: random.Random) -> list[_Draft]:
        drafts: list[_Draft] = []
        for index, month in enumerate(self.months):
            for kind, title, which in prof.recurring:
                if index not in which:
                    continue
                # Routine work is opened early in the month, restore tests mid-month.
                offset = rng.randint(10, 18) if kind == "restauration" else rng.randint(0, 5)
                created = self.clock.add(
                    _paris_midnight(month + timedelta(days=offset)), rng.uniform(15, 150))
                mois = f"{texts.MONTHS_FR[month.month - 1]} {month.year}"
                if created <= self.now:
                    drafts.append(self._draft(prof, kind, created, rng, title.format(mois=mois)))
        # Month by month, so every monthly report has a plausible volume.
        for month in self.months:
            lo = _paris_midnight(month)
            hi = min(self.now, _paris_midnight(_first_of_month(month, 1)))
            share = (hi - lo) / (_paris_midnight(_first_of_month(month, 1)) - lo)
            for _ in range(round(prof.per_month * share * rng.uniform(0.85, 1.15))):
                kind = rng.choices(list(prof.weights), list(prof.weights.values()))[0]
                drafts.append(self._draft(prof, kind, self._moment(prof, rng, lo, hi), rng))
        if prof.tier == "critique":  # 24/7 client: incidents also land on public holidays
            hols = self.clock.holidays_between(self.first_day, self.now.astimezone(PARIS).date())
            for n, day in enumerate(hols):
                at = datetime.combine(day, time(rng.randint(8, 21), rng.randrange(60)), PARIS)
                if (n == 0 or rng.random() < 0.6) and at.astimezone(UTC) <= self.now:
                    kind = rng.choice(["supervision_alerte", "correctif_urgent"])
                    drafts.append(self._draft(prof, kind, at.astimezone(UTC), rng))
        drafts += self._children(prof, drafts, rng)
        drafts += self._hot(prof, rng)
        return drafts

    def _moment(self, prof: texts.Profile, rng: random.Random, lo: datetime,
                hi: datetime) -> datetime:
        """A creation time: mostly office hours, some evenings, a few weekends."""
        span = (hi - lo).total_seconds()
        for _ in range(100):
            day = (lo + timedelta(seconds=rng.random() * span)).astimezone(PARIS).date()
            workday = self.clock.is_workday(day)
            if not workday and rng.random() > 0.12 + prof.off_hours:
                continue
            r = rng.random()
            if workday and r < 0.85 - prof.off_hours:
                minute = 540 + rng.randrange(480)
                minute += 60 if minute >= 750 else 0  # nobody files tickets at lunch
            elif not workday:
                minute = rng.randrange(600, 1260)
            elif r < 0.97 - prof.off_hours:
                minute = rng.randrange(1080, 1380)  # evening
            else:
                minute = rng.choice([rng.randrange(0, 420), rng.randrange(420, 540)])
            local = datetime.combine(day, time(minute // 60, minute % 60), PARIS)
            at = local.astimezone(UTC)
            if lo <= at <= hi:
                return at
        return lo + (hi - lo) / 2

    def _draft(self, prof: texts.Profile, kind: str, created: datetime, rng: random.Random,
               summary: str | None = None, p: int | None | str = "random") -> _Draft:
        spec = texts.KINDS[kind]
        if summary is None:
            pool = texts.TITLES[kind].get("*", []) + texts.TITLES[kind].get(prof.family, [])
            summary = rng.choice(pool).format(minutes=rng.choice([3, 5, 7, 12, 18, 25, 41]))
        if p == "random":
            p = rng.choices([0, 1, 2, 3, None], spec.prio)[0]
        assert p is None or isinstance(p, int)
        d = _Draft(prof, kind, _sec(created), summary, p)
        d.issue_type = rng.choices([t for t, _ in spec.types], [w for _, w in spec.types])[0]
        if spec.label and rng.random() < 0.8:
            d.labels.append(spec.label)
        if spec.category and p is not None and p <= 1 and rng.random() < 0.15:
            d.labels.append("urgent")
        if spec.category and spec.origin == "client" and rng.random() < 0.4:
            d.components.append(rng.choice(prof.components))
        if rng.random() < 0.88:
            local = created.astimezone(PARIS)
            d.description = rng.choice(texts.DESCRIPTIONS[kind]).format(
                reporter=prof.reporter[0].split()[0], site=prof.site, heure=f"{local:%Hh%M}")
        r = rng.random()
        if spec.origin == "robot":
            d.reporter, d.initial = self.ids["automation"], S_TODO
        elif spec.origin == "client":
            d.reporter = self.ids[prof.id] if r < 0.9 else self.ids["camille"]
            # Urgent requests never sit in the backlog.
            d.initial = S_TODO if rng.random() < 0.8 or (p is not None and p <= 1) else S_BACKLOG
        else:
            d.reporter = self.ids[rng.choice(["camille", *prof.devs])]
            d.initial = S_DOING if r < 0.35 else S_TODO if r < 0.75 else S_BACKLOG
        return d

    def _children(self, prof: texts.Profile, drafts: list[_Draft],
                  rng: random.Random) -> list[_Draft]:
        """Sub-tasks under some updates, and one quoted project split into an epic."""
        out: list[_Draft] = []
        for parent in drafts:
            if parent.kind == "preventif" and prof.staging and rng.random() < 0.2:
                at = parent.created + timedelta(minutes=rng.randint(5, 40))
                if at <= self.now:
                    title = rng.choice(texts.SUBTASK_TITLES)
                    child = self._draft(prof, "preventif", at, rng, title)
                    child.issue_type, child.parent, child.initial = "Sub-task", parent, S_TODO
                    out.append(child)
        title, stories = texts.EPICS[prof.family]
        at = self.clock.add(_paris_midnight(self.months[rng.randint(1, 3)]), rng.uniform(0, 2400))
        epic = self._draft(prof, "hors_perimetre", at, rng, title, p=3)
        epic.issue_type, epic.labels, epic.script = "Epic", ["devis"], [
            (60, True, S_DOING), (480 * 25, True, S_DONE)]  # closed once its stories are
        out.append(epic)
        for n, story in enumerate(stories):
            at = self.clock.add(epic.created, 480 * (n + 2) + rng.uniform(0, 240))
            child = self._draft(prof, "hors_perimetre", at, rng, story)
            # Half the stories carry no label: only the epic says they were quoted.
            child.issue_type, child.parent = "Story", epic
            child.labels = ["devis"] if rng.random() < 0.5 else []
            out.append(child)
        return [d for d in out if d.created <= self.now]

    def _hot(self, prof: texts.Profile, rng: random.Random) -> list[_Draft]:
        """Open tickets near `now` close to or past their SLA, for nudges to find."""
        out = []
        for kind, p, minutes, office, initial, script, title in texts.HOT_TICKETS[prof.key]:
            created = self.clock.back(self.now, minutes) if office else (
                self.now - timedelta(minutes=minutes))
            d = self._draft(prof, kind, created, rng, title, p=p)
            d.initial = self.by_name[initial]
            d.script = [(m, o, self.by_name[to]) for m, o, to in script]
            out.append(d)
        return out

    # -- a ticket's life ----------------------------------------------------------------
    def _name(self, status_id: str, at: datetime) -> str:
        if status_id == S_RECETTE and at < self.rename_at:
            return RECETTE_OLD_NAME
        return self.names[status_id]

    def _priority(self, prof: texts.Profile, p: int | None, rng: random.Random) -> str | None:
        if p is None:
            return None
        names = LEGACY_PRIORITIES if prof.legacy_priorities else MODERN_PRIORITIES
        return names[4] if p == 3 and rng.random() < 0.25 else names[p]

    def _priority_id(self, name: str | None) -> str | None:
        return None if name is None else str(self.ds.priorities.index(name) + 1)

    def _response_delay(self, d: _Draft, at: datetime, rng: random.Random) -> datetime:
        tier = d.prof.tier
        if d.p == 0:
            target = {"critique": 120, "business": 240}.get(tier, 480)
        else:
            target = {1: 480, 2: 1440}.get(d.p or 3, 2400)
        if rng.random() < 0.08:  # some answers are late
            frac = rng.uniform(1.05, 2.0)
        else:
            frac = rng.betavariate(1.2, 6) if d.p == 0 else rng.betavariate(1.5, 3)
        minutes = max(3.0, target * frac)
        if d.p == 0 and tier == "critique":  # 24/7 on-call clock
            return at + timedelta(minutes=minutes)
        return self.clock.add(at, minutes)

    def _work_until(self, d: _Draft, at: datetime, rng: random.Random) -> datetime:
        lo, hi = texts.KINDS[d.kind].work
        if d.p == 0:
            minutes = rng.uniform(20, 300)
            if d.prof.tier == "critique":
                return at + timedelta(minutes=minutes)
            return self.clock.add(at, minutes)
        if d.p == 1:
            hi = min(hi, 900)
        return self.clock.add(at, rng.uniform(lo, max(lo, hi)))

    def _live(self, d: _Draft, rng: random.Random) -> JiraIssue:
        """Simulate the ticket's workflow, then keep what happened up to `now`."""
        prof, spec = d.prof, texts.KINDS[d.kind]
        dev = self.ids[rng.choice(prof.devs)]
        pm, client = self.ids["camille"], self.ids[prof.id]
        trail = _Trail(self._name, d.initial, d.created)
        assign = ChangeItem("assignee", None, None, dev, self._display(dev))
        if d.script is not None:
            t = d.created
            for minutes, office, to in d.script:
                at = self.clock.add(t, minutes) if office else t + timedelta(minutes=minutes)
                first = to == S_DOING and d.initial != S_DOING and S_DOING not in trail.visited
                t = trail.move(at, to, pm if to == S_TODO else dev, [assign] if first else [])
        else:
            self._simulate(d, rng, trail, dev, pm, client, assign)
        priority = self._priority(prof, d.p, rng)
        side, first_priority = self._side_events(d, rng, trail.hist, dev, pm, priority)
        kept = sorted((h for h in trail.hist + side if h.created <= self.now),
                      key=lambda h: h.created)
        issue = JiraIssue(
            id=self.ds.new_id(), key=d.key, project_key=prof.key, summary=d.summary,
            issue_type=d.issue_type, status_id=d.initial, created=d.created, updated=d.created,
            description=d.description, labels=d.labels, components=d.components,
            priority=first_priority, reporter_id=d.reporter,
            assignee_id=dev if d.initial == S_DOING else None,
            parent_key=d.parent.key if d.parent else None, histories=kept,
            original_estimate_seconds=self._estimate(d.kind, rng),
        )
        # Replay what was kept: the current fields are where the changelog ends.
        for h in kept:
            for item in h.items:
                if item.field == "status" and item.to_id is not None:
                    entering_done = self.cats[item.to_id] == DONE
                    if entering_done and self.cats[item.from_id or ""] != DONE:
                        issue.resolution_date = h.created
                    elif not entering_done:
                        issue.resolution_date = None
                    issue.status_id = item.to_id
                elif item.field == "assignee":
                    issue.assignee_id = item.to_id
                elif item.field == "priority":
                    issue.priority = item.to_string
        issue.worklogs = self._worklogs(d, spec, rng, issue, dev)
        issue.updated = max([d.created, *(h.created for h in kept),
                             *(wl.updated or wl.started for wl in issue.worklogs)])
        return issue

    def _simulate(self, d: _Draft, rng: random.Random, trail: _Trail, dev: str, pm: str,
                  client: str, assign: ChangeItem) -> None:
        spec, t, move = texts.KINDS[d.kind], d.created, trail.move
        staging = self.by_name[d.prof.staging] if d.prof.staging else None
        if d.initial == S_BACKLOG and rng.random() < 0.6:
            t = move(self.clock.add(t, rng.uniform(20, 1500)), S_TODO, pm)  # triage: no response
        if d.initial != S_DOING:
            if rng.random() < 0.03:  # withdrawn or duplicate before anyone started
                move(self.clock.add(t, rng.uniform(480, 4800)), S_CANCELLED, pm)
                return
            t = move(self._response_delay(d, t, rng), S_DOING, dev, [assign])
        waits = 0.35 if d.kind == "hors_perimetre" else 0.18
        if spec.origin == "client" and rng.random() < waits:
            t = move(self.clock.add(t, rng.uniform(15, 240)), S_WAITING, dev)
            if rng.random() < 0.12:  # the client never answered
                move(self.clock.add(t, rng.uniform(1440, 4800)), S_CANCELLED, pm)
                return
            replied = t + timedelta(hours=rng.uniform(2, 140))  # clients answer any time
            t = move(self.clock.add(replied, rng.uniform(5, 120)), S_DOING, dev)
        t = self._work_until(d, t, rng)
        if staging and d.p != 0 and rng.random() < spec.staging:
            t = move(t, staging, dev)
            if rng.random() < 0.1:  # recette refused
                t = move(self.clock.add(t, rng.uniform(60, 600)), S_DOING, pm)
                t = move(self.clock.add(t, rng.uniform(30, 480)), staging, dev)
            t = move(self.clock.add(t, rng.uniform(30, 1440)), S_DONE,
                     rng.choice([pm, client, dev]))
        else:
            t = move(t, S_DONE, dev)
        r, reopens = rng.random(), 0.08 if spec.origin == "client" else 0.03
        if r < reopens:  # the fix was not a fix
            t = move(self.clock.add(t, rng.uniform(60, 2400)), S_REOPENED, rng.choice([client, pm]))
            t = move(self.clock.add(t, rng.uniform(30, 960)), S_DOING, dev)
            t = self.clock.add(t, rng.uniform(30, 600))
            if staging and rng.random() < 0.5:
                t = move(self.clock.add(move(t, staging, dev), rng.uniform(30, 600)), S_DONE, pm)
            else:
                move(t, S_DONE, dev)
        elif r < reopens + 0.015:  # closed as a duplicate after the fact: Terminé → Annulé
            move(self.clock.add(t, rng.uniform(60, 1440)), S_CANCELLED, pm)

    def _display(self, account_id: str) -> str:
        user = self.ds.user(account_id)
        return user.display_name if user else account_id

    def _side_events(self, d: _Draft, rng: random.Random, hist: list[JiraHistory], dev: str,
                     pm: str, priority: str | None) -> tuple[list[JiraHistory], str | None]:
        """Priority and assignee changes (not status changes: consumers must filter by field)."""
        side: list[JiraHistory] = []
        first_priority = priority
        if d.p is not None and rng.random() < 0.07:
            # The PM re-qualifies the ticket after talking to the client.
            first_priority = self._priority(d.prof, d.p + 1 if d.p < 3 else 2, rng)
            at = _sec(d.created + timedelta(minutes=rng.uniform(5, 300)))
            side.append(JiraHistory("", at, self.ids["camille"], [ChangeItem(
                "priority", self._priority_id(first_priority), first_priority,
                self._priority_id(priority), priority)]))
        assigned = [h.created for h in hist if any(i.field == "assignee" for i in h.items)]
        lo = d.created if d.initial == S_DOING else (assigned[0] if assigned else None)
        if lo is not None and hist and hist[-1].created > lo and rng.random() < 0.08:
            others = [self.ids[k] for k in d.prof.devs if self.ids[k] != dev]
            other = rng.choice(others or [self.ids["thomas"]])
            at = _sec(lo + (hist[-1].created - lo) * rng.uniform(0.2, 0.8))
            side.append(JiraHistory("", at, pm, [ChangeItem(
                "assignee", dev, self._display(dev), other, self._display(other))]))
        return side, first_priority

    @staticmethod
    def _estimate(kind: str, rng: random.Random) -> int | None:
        r = rng.random()
        if kind == "evolutif_run" and r < 0.5:
            # A few "small" changes are estimated over the 1 h Run limit.
            return rng.choice([900, 1800, 2700, 3600, 3600, 7200])
        if kind == "hors_perimetre" and r < 0.5:
            return rng.choice([4, 8, 16, 24, 40]) * 3600
        return rng.choice([1800, 3600, 7200]) if r < 0.15 else None

    def _worklogs(self, d: _Draft, spec: texts.Kind, rng: random.Random, issue: JiraIssue,
                  dev: str) -> list[JiraWorklog]:
        """Time logged while the ticket was being worked on, mostly during office hours."""
        moves = [h for h in issue.histories if any(i.field == "status" for i in h.items)]
        starts = [h.created for h in moves if any(i.to_id == S_DOING for i in h.items)]
        begin = d.created if d.initial == S_DOING else (starts[0] if starts else None)
        if begin is None:
            return []
        end = moves[-1].created if self.cats[issue.status_id] == DONE else self.now
        team = [self.ids[k] for k in d.prof.devs]
        on_call = d.p == 0 and d.prof.tier == "critique"
        worklogs = []
        for _ in range(rng.randint(*spec.worklogs) + (1 if d.p == 0 else 0)):
            at = begin + (end - begin) * rng.random()
            if not on_call and end - begin > timedelta(hours=4):
                # Spread over the next office half-day, not all at 9:00 on Monday.
                snapped = self.clock.add(at, rng.uniform(0, 210))
                at = snapped if snapped < end else at
            r = rng.random()
            if r < 0.1:
                author, quarters, comment = self.ids["camille"], rng.randint(1, 2), rng.choice(
                    texts.PM_COMMENTS)
            else:
                author = dev if r < 0.85 else rng.choice(team)
                quarters = rng.randint(*spec.quarters)
                comment = rng.choice(texts.WORKLOG_COMMENTS[d.kind])
            at = _sec(at)
            seconds = quarters * 900
            if at + timedelta(seconds=seconds) > self.now:
                continue
            # Nobody logs more than a working day: a teammate takes over, else it waits.
            day = at.astimezone(PARIS).date()
            free = [a for a in [author, *team] if self.booked[a, day] + seconds <= 8 * 3600]
            if not free:
                continue
            author = free[0]
            self.booked[author, day] += seconds
            logged = at + timedelta(seconds=seconds, minutes=rng.uniform(0, 90))
            logged = _sec(min(self.now, logged))
            worklogs.append(JiraWorklog("", issue.id, author, at, seconds, comment, logged, logged))
        return sorted(worklogs, key=lambda wl: wl.created or wl.started)

    def _number_events(self) -> None:
        """Changelog and worklog ids grow with time, as Jira's sequences do."""
        events: list[tuple[datetime, int, int, JiraHistory | JiraWorklog]] = []
        for issue in self.ds.issues:
            events += [(h.created, 0, len(events) + n, h) for n, h in enumerate(issue.histories)]
            events += [(wl.created or wl.started, 1, len(events) + n, wl)
                       for n, wl in enumerate(issue.worklogs)]
        for *_, obj in sorted(events, key=lambda e: e[:3]):
            obj.id = self.ds.new_id()


class _Trail:
    """A ticket's status changelog as it is being written."""

    def __init__(self, name: Callable[[str, datetime], str], status: str, created: datetime):
        self.status, self.last, self.name = status, created, name
        self.hist: list[JiraHistory] = []
        self.visited = {status}

    def move(self, at: datetime, to: str, author: str,
             extra: Sequence[ChangeItem] = ()) -> datetime:
        at = max(_sec(at), self.last + timedelta(minutes=1))  # strictly ordered changelog
        item = ChangeItem("status", self.status, self.name(self.status, at), to, self.name(to, at))
        self.hist.append(JiraHistory("", at, author, [item, *extra]))
        self.status, self.last = to, at
        self.visited.add(to)
        return at


def _sec(at: datetime) -> datetime:
    # Jira keeps milliseconds at most; whole seconds survive any round trip.
    return at.replace(microsecond=0)


def build_sample_agency(now: datetime, *, seed: int = 2026) -> SampleAgency:
    """The sample agency: three clients, six full months of tickets plus the current one."""
    return _Builder(now, seed).build()


# -- bulk data for benchmarks ---------------------------------------------------------
# The statuses every bulk issue walks through, after "À faire".
_BULK_CYCLE = [S_DOING, S_RECETTE, S_DONE, S_REOPENED, S_DOING, S_WAITING, S_DOING, S_DONE]
# One plain title per kind of ticket, so classification benchmarks see every rule.
_BULK_TITLES = [(texts.TITLES[kind]["*"][0], spec.types[0][0], spec.label)
                for kind, spec in texts.KINDS.items()]


def build_bulk_dataset(
    n_issues: int, *, projects: Sequence[str] = ("BLK1", "BLK2", "BLK3", "BLK4"),
    now: datetime, seed: int = 1, transitions_per_issue: int = 8, worklogs_per_issue: int = 3,
    changelog_over_cap_ratio: float = 0.02, worklog_over_cap_ratio: float = 0.02,
    inline_changelog_cap: int = 40, inline_worklog_cap: int = 20,
) -> JiraDataset:
    """`n_issues` plain issues over 12 months; a share has more changelog/worklogs than inlined."""
    now = _require_aware(now)
    rng = random.Random(seed)
    ds = JiraDataset(user_time_zone=TIMEZONE, statuses=sample_statuses())
    cats = {st.id: st.category for st in ds.statuses}
    people = texts.AGENCY_PEOPLE.values()
    ds.users = [JiraUser(f"{n + 1:024x}", user, display, f"{local}@{AGENCY_DOMAIN}", visible)
                for n, (display, user, local, visible) in enumerate(people)]
    authors = [u.account_id for u in ds.users]
    next_id = ds.next_id
    for key in projects:
        next_id += 1
        ds.projects.append(JiraProject(str(next_id), key, f"Projet de charge {key}"))

    over_hist = set(rng.sample(range(n_issues), round(n_issues * changelog_over_cap_ratio)))
    over_wl = set(rng.sample(range(n_issues), round(n_issues * worklog_over_cap_ratio)))
    hist_range = (inline_changelog_cap + 5, inline_changelog_cap + 20)
    wl_range = (inline_worklog_cap + 2, inline_worklog_cap + 15)
    # Keep the overall means at the requested values despite the heavy issues.
    mean_hist = _normal_mean(transitions_per_issue, len(over_hist), n_issues, hist_range)
    mean_wl = _normal_mean(worklogs_per_issue, len(over_wl), n_issues, wl_range)

    walk = [S_TODO] + [_BULK_CYCLE[k % len(_BULK_CYCLE)] for k in range(hist_range[1] + 1)]
    # Status change items only depend on (from, to): share them, it halves the
    # changelog's memory (nothing mutates change items).
    shared: dict[tuple[str, str], ChangeItem] = {}
    year, closed_before = timedelta(days=365), now - timedelta(days=45)
    starts = sorted(now - year + (year - timedelta(days=1)) * rng.random() for _ in range(n_issues))
    counters = dict.fromkeys(projects, 0)
    issues = ds.issues
    for i, created in enumerate(starts):
        created = _sec(created)
        project = projects[rng.randrange(len(projects))]
        counters[project] += 1
        title, issue_type, label = _BULK_TITLES[i % len(_BULK_TITLES)]
        next_id += 1
        issue = JiraIssue(
            str(next_id), f"{project}-{counters[project]}", project, f"{title} ({i})",
            issue_type, S_TODO, created, created, labels=[label] if label else [],
            priority=MODERN_PRIORITIES[i % 5], assignee_id=authors[i % len(authors)],
        )
        life = min(timedelta(days=30), now - created)
        k = rng.randint(*hist_range) if i in over_hist else _around(rng, mean_hist,
                                                                    inline_changelog_cap)
        if k:
            path = walk[:k + 1]
            if created < closed_before:  # old issues end closed
                if path[-2] == S_DONE and i % 20:
                    path[-2] = S_RECETTE if path[-3] != S_RECETTE else S_DOING
                path[-1] = S_DONE if path[-2] != S_DONE else S_CANCELLED  # Terminé → Annulé
            step = timedelta(seconds=int(life.total_seconds()) // (k + 1))
            for j in range(k):
                pair = (path[j], path[j + 1])
                item = shared.get(pair) or shared.setdefault(pair, ChangeItem(
                    "status", pair[0], _STATUS_NAME[pair[0]], pair[1], _STATUS_NAME[pair[1]]))
                next_id += 1
                at = created + step * (j + 1)
                issue.histories.append(JiraHistory(str(next_id), at,
                                                   authors[(i + j) % len(authors)], [item]))
                if pair[1] == S_DONE:
                    issue.resolution_date = at
            issue.status_id = path[-1]
            if cats[issue.status_id] != DONE:
                issue.resolution_date = None
            issue.updated = issue.histories[-1].created
        w = rng.randint(*wl_range) if i in over_wl else _around(rng, mean_wl, inline_worklog_cap)
        for fraction in sorted(rng.random() for _ in range(w)):
            seconds = 900 * rng.randint(1, 16)
            started = _sec(created + (life - timedelta(hours=4)) * fraction)
            if started < created:
                started = created
            logged = started + timedelta(seconds=seconds)
            next_id += 1
            author = authors[rng.randrange(len(authors))]
            issue.worklogs.append(JiraWorklog(str(next_id), issue.id, author, started, seconds,
                                              "Intervention", logged, logged))
            issue.updated = max(issue.updated, logged)
        issues.append(issue)
    ds.next_id = next_id
    return ds


_STATUS_NAME = {sid: name for sid, name, _ in _STATUS_TABLE}


def _normal_mean(target: float, n_heavy: int, n: int, heavy: tuple[int, int]) -> float:
    if n <= n_heavy:
        return 0.0
    return max(0.0, (target * n - n_heavy * sum(heavy) / 2) / (n - n_heavy))


def _around(rng: random.Random, mean: float, cap: int) -> int:
    """An integer averaging `mean`, spread a little, never above `cap`."""
    base = int(mean) + (1 if rng.random() < mean - int(mean) else 0)
    spread = max(0, min(int(mean), 3, cap - int(mean) - 1))
    return min(cap, max(0, base + rng.randint(-spread, spread)))

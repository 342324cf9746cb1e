"""Rule-based, explainable classification into the TMA categories of DOMAIN.md §1.

Rules are tried in order and the first that matches wins: the agency's rules from the
config first, then the built-in ones below. A rule holds when every condition it gives
holds; a list condition (labels, issue types, components, projects) holds when any of its
values matches, case-insensitively. Built-in rules match title *words*: a keyword must
start at a word boundary and, unless it ends with `*`, end at one; both the accented and
the plain spelling match. Agency rules match `title` / `description` with a regular
expression (searched, as Python's `re` does).

Every ticket gets a category (or `non_classe`), the rule that decided it (e.g.
`label:bug`, `title:mise à jour`, or the agency rule's name) and a scope:
`hors_perimetre` needs a quote; `evolutif_run` needs one too when the plan has no Run hours
or the ticket takes more than `run_ticket_max_hours`; unmatched tickets are `unclassified`.

The whole batch is classified column-wise: list conditions compare integer codes, and all
built-in keywords are found in one Aho-Corasick pass over the concatenated titles, so a
million tickets cost about a second.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import ahocorasick
import numpy as np
import numpy.typing as npt
import pandas as pd

CATEGORY_LABELS_FR = {
    "correctif": "Correctif",
    "preventif": "Préventif",
    "securite": "Sécurité",
    "supervision": "Supervision",
    "evolutif_run": "Évolutif (Run)",
    "hors_perimetre": "Hors périmètre",
    "non_classe": "Non classé",
}
CATEGORY_LABELS_EN = {
    "correctif": "Corrective",
    "preventif": "Preventive",
    "securite": "Security",
    "supervision": "Monitoring",
    "evolutif_run": "Light evolution (Run)",
    "hors_perimetre": "Out of scope",
    "non_classe": "Unclassified",
}
UNCLASSIFIED = "non_classe"
INCLUDED, QUOTE_REQUIRED, SCOPE_UNCLASSIFIED = "included", "quote_required", "unclassified"


@dataclass(frozen=True)
class Rule:
    """One classification rule; `name` is what `category_rule` shows for agency rules."""

    category: str
    name: str | None = None
    labels: tuple[str, ...] | None = None
    issue_types: tuple[str, ...] | None = None
    components: tuple[str, ...] | None = None
    projects: tuple[str, ...] | None = None
    title: str | None = None  # regex
    description: str | None = None  # regex
    title_words: tuple[str, ...] | None = None  # built-in keywords
    epic: str | None = None
    min_hours: float | None = None
    max_hours: float | None = None
    builtin: bool = False

    def conditions(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for key in ("issue_types", "labels", "components", "projects", "epic", "title",
                    "description", "title_words", "min_hours", "max_hours"):
            value = getattr(self, key)
            if value is not None:
                out.append((key, value))
        return out


def _words(*items: str) -> tuple[str, ...]:
    return tuple(items)


# The built-in rules, in order. Explicit tags (labels) first, then the words that name
# out-of-scope, security and monitoring work (a robot's "Alerte uptime" is filed as an
# Incident but is supervision), then issue types, then the remaining title words.
BUILTIN_RULES: tuple[Rule, ...] = (
    Rule("hors_perimetre", labels=("hors-perimetre", "hors-périmètre", "hors_perimetre",
                                   "devis", "out-of-scope", "quote"), builtin=True),
    Rule("securite", labels=("securite", "sécurité", "security", "cve", "vulnerability"),
         builtin=True),
    Rule("supervision", labels=("supervision", "monitoring", "uptime", "alerting"),
         builtin=True),
    Rule("preventif", labels=("preventif", "préventif", "maintenance", "mise-a-jour",
                              "mise-à-jour", "maj", "update", "updates", "upgrade",
                              "dependencies", "dépendances", "sauvegarde", "backup"),
         builtin=True),
    Rule("evolutif_run", labels=("evolutif", "évolutif", "run", "evolution", "évolution",
                                 "amélioration", "improvement"), builtin=True),
    Rule("correctif", labels=("bug", "correctif", "incident", "anomalie", "hotfix", "fix"),
         builtin=True),
    Rule("hors_perimetre", title_words=_words(
        "nouvelle page", "nouvelles pages", "nouvelle section", "nouvelle rubrique", "refonte",
        "intégration api", "intégration d'une api", "intégration de l'api",
        "nouvelle intégration", "nouveau module", "nouvelle fonctionnalité", "espace client",
        "espace membre", "création d'un espace", "version anglaise", "site multilingue",
        "nouvelle langue", "new page", "redesign", "api integration", "new integration",
        "new module", "new feature"), builtin=True),
    Rule("securite", title_words=_words(
        "cve", "faille*", "vulnérabilit*", "vulnerabilit*", "npm audit", "composer audit",
        "wpscan", "sécurité", "security", "xss", "csrf", "injection sql", "sql injection",
        "malware", "piratage", "piraté*", "hack*", "brute force", "revue des accès",
        "revue des droits", "droits d'accès", "phishing", "2fa", "rotation des clés",
        "clé api", "clés api", "mot de passe compromis"), builtin=True),
    Rule("supervision", title_words=_words(
        "monitoring", "supervision", "uptime", "alerte*", "alert*", "logs", "lighthouse",
        "sonde*", "sentry", "espace disque", "temps de réponse", "core web vitals",
        "pagespeed", "contrôle des sauvegardes", "sauvegardes automatiques",
        "vérification du renouvellement"), builtin=True),
    Rule("correctif", issue_types=("bug", "incident", "anomalie", "défaut", "defect", "bogue",
                                   "problem", "problème"), builtin=True),
    Rule("correctif", title_words=_words(
        "bug*", "erreur*", "error*", "cassé*", "ne fonctionne plus", "ne fonctionne pas",
        "ne marche plus", "ne marche pas", "ne s'affiche", "n'apparaît plus", "plantage",
        "plante", "crash*", "broken", "panne", "500", "404", "502", "503",
        "dysfonctionnement*", "régression*", "décalage", "déformé*", "hotfix", "fix", "corriger",
        "correction"), builtin=True),
    Rule("preventif", title_words=_words(
        "mise à jour", "mises à jour", "maj", "update*", "upgrade*", "plugin*", "php*",
        "dépendance*", "dependenc*", "montée de version", "montée en version",
        "renouvellement", "certificat ssl", "test de restauration", "restauration",
        "patch*"), builtin=True),
    Rule("evolutif_run", issue_types=("improvement", "amélioration", "évolution", "evolution",
                                      "story", "new feature", "nouvelle fonctionnalité",
                                      "feature"), builtin=True),
    Rule("evolutif_run", title_words=_words(
        "ajout*", "ajouter", "modifier", "modification*", "changer", "changement*",
        "remplacer", "libellé*", "wording", "texte*", "traduction*", "couleur*", "champ*",
        "bouton*", "déplacer", "renommer", "mentions légales", "add", "change", "rename"),
        builtin=True),
)


def _named(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    out = []
    for rule in rules:
        kind = rule.conditions()[0][0].replace("title_words", "title")
        out.append(replace(rule, name=f"builtin:{rule.category}:{kind}"))
    return tuple(out)


BUILTIN_RULES = _named(BUILTIN_RULES)


def rules_from_config(settings: Any) -> tuple[Rule, ...]:
    """The agency's `[[classification.rules]]`, then the built-in rules."""
    out: list[Rule] = []
    section = getattr(settings, "classification", None)
    for index, r in enumerate(getattr(section, "rules", ()) or ()):
        out.append(Rule(
            category=r.category, name=r.name or f"rules[{index}]", labels=r.labels,
            issue_types=r.issue_types, components=r.components, projects=r.projects,
            title=r.title, description=r.description, epic=r.epic,
            min_hours=r.min_hours, max_hours=r.max_hours))
    return tuple(out) + BUILTIN_RULES


# -- columns ------------------------------------------------------------------------------


@dataclass
class TicketColumns:
    """What classification looks at, for n tickets."""

    titles: Sequence[str]
    issue_types: Sequence[str | None]
    labels: Sequence[Sequence[str]]
    components: Sequence[Sequence[str]]
    projects: Sequence[str]
    hours: npt.NDArray[np.float64]  # time spent, or the estimate when larger
    descriptions: Sequence[str] | None = None
    epics: Sequence[str | None] | None = None

    @property
    def n(self) -> int:
        return len(self.titles)


@dataclass
class Classification:
    category: npt.NDArray[np.object_]
    rule: npt.NDArray[np.object_]
    scope: npt.NDArray[np.object_]
    rule_index: npt.NDArray[np.int64]  # -1: none


def _fold(text: str) -> str:
    return text.casefold()


def _plain(text: str) -> str:
    """Without accents (é → e), for the plain spelling of a keyword."""
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if unicodedata.category(c) != "Mn")


@dataclass
class _Codes:
    """Factorized, casefolded values of a list column: (ticket, code) pairs and the names."""

    ticket: npt.NDArray[np.int64]
    code: npt.NDArray[np.int64]
    names: list[str]
    lookup: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of_lists(cls, lists: Sequence[Sequence[str]]) -> _Codes:
        lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        flat = list(itertools.chain.from_iterable(lists))
        ticket = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
        return cls._build(ticket, flat)

    @classmethod
    def of_values(cls, values: Sequence[str | None]) -> _Codes:
        keep = [i for i, v in enumerate(values) if v]
        flat = [values[i] for i in keep]  # type: ignore[misc]
        return cls._build(np.asarray(keep, dtype=np.int64), flat)

    @classmethod
    def _build(cls, ticket: npt.NDArray[np.int64], flat: list[str]) -> _Codes:
        """Codes of the casefolded values; `names` keep each value's first spelling."""
        if not flat:
            return cls(ticket, np.zeros(0, dtype=np.int64), [], {})
        raw_codes, raw = pd.factorize(pd.Series(flat, dtype=object), sort=False)
        folded = [_fold(str(u)) for u in raw]
        lookup: dict[str, int] = {}
        names: list[str] = []
        remap = np.empty(len(raw), dtype=np.int64)
        for i, key in enumerate(folded):
            if key not in lookup:
                lookup[key] = len(names)
                names.append(str(raw[i]))
            remap[i] = lookup[key]
        return cls(ticket, remap[np.asarray(raw_codes, dtype=np.int64)], names, lookup)

    def hits(self, values: Sequence[str], n: int) -> tuple[npt.NDArray[np.bool_],
                                                          npt.NDArray[np.int64]]:
        """(mask over tickets, index of the first matching entry per ticket or -1)."""
        wanted = [self.lookup[v] for v in {_fold(x) for x in values} if v in self.lookup]
        mask = np.zeros(n, dtype=bool)
        first = np.full(n, -1, dtype=np.int64)
        if not wanted:
            return mask, first
        rows = np.flatnonzero(np.isin(self.code, np.asarray(wanted, dtype=np.int64)))
        # Rows are in ticket order: the first row per ticket is the first match.
        first[self.ticket[rows[::-1]]] = rows[::-1]
        mask[self.ticket[rows]] = True
        return mask, first


_ALNUM: npt.NDArray[np.bool_] | None = None


def _alnum_table() -> npt.NDArray[np.bool_]:
    """isalnum() of every Basic Multilingual Plane character, as a lookup table."""
    global _ALNUM
    if _ALNUM is None:
        _ALNUM = np.fromiter((chr(c).isalnum() for c in range(0x10000)), dtype=bool,
                             count=0x10000)
    return _ALNUM


def _is_alnum_at(text: str, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """text[p].isalnum() for each position (False outside the text)."""
    inside = (positions >= 0) & (positions < len(text))
    picked = "".join([text[p] for p in positions[inside].tolist()])
    codes = np.frombuffer(picked.encode("utf-32-le"), dtype=np.uint32)
    out = np.zeros(positions.size, dtype=bool)
    table = _alnum_table()
    out[inside] = np.where(codes < 0x10000, table[np.minimum(codes, 0xFFFF)], False)
    return out


@dataclass
class KeywordHits:
    """For one rule: the tickets whose title holds one of its keywords, and which one."""

    tickets: npt.NDArray[np.int64]
    words: npt.NDArray[np.int64]  # index into _Keywords.words


class _Keywords:
    """All built-in keywords, found in one pass over the casefolded, concatenated titles.

    The automaton reports every occurrence (overlapping ones included); word boundaries
    are then checked on whole arrays, and the earliest (then longest) keyword of each rule
    in each title is kept to name the rule that decided.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.automaton = ahocorasick.Automaton()
        self.words: list[str] = []
        spellings: dict[str, list[tuple[int, int, bool]]] = {}
        for index, rule in enumerate(rules):
            for word in rule.title_words or ():
                prefix = word.endswith("*")
                base = _fold(word.rstrip("*"))
                self.words.append(word.rstrip("*"))
                for spelling in {base, _plain(base), base.replace("'", "’")}:
                    spellings.setdefault(spelling, []).append(
                        (index, len(self.words) - 1, prefix))
        # Flat target table: spelling id -> rows [offset, offset + count).
        self.length = np.zeros(len(spellings), dtype=np.int64)
        self.offset = np.zeros(len(spellings), dtype=np.int64)
        self.count = np.zeros(len(spellings), dtype=np.int64)
        rule_ids: list[int] = []
        word_ids: list[int] = []
        prefixes: list[bool] = []
        for sid, (spelling, targets) in enumerate(spellings.items()):
            self.automaton.add_word(spelling, sid)
            self.length[sid] = len(spelling)
            self.offset[sid] = len(rule_ids)
            self.count[sid] = len(targets)
            for rule_index, word_index, prefix in targets:
                rule_ids.append(rule_index)
                word_ids.append(word_index)
                prefixes.append(prefix)
        self.t_rule = np.asarray(rule_ids, dtype=np.int64)
        self.t_word = np.asarray(word_ids, dtype=np.int64)
        self.t_prefix = np.asarray(prefixes, dtype=bool)
        self.empty = not spellings
        if not self.empty:
            self.automaton.make_automaton()

    def find(self, titles: Sequence[str]) -> dict[int, KeywordHits]:
        """rule index → the tickets it matches by title words."""
        if self.empty or not titles:
            return {}
        text = "\n".join(titles).casefold()
        # casefold() can lengthen a title (ß → ss): then measure the folded titles.
        if len(text) != sum(map(len, titles)) + len(titles) - 1:
            folded = [t.casefold() for t in titles]
            text = "\n".join(folded)
            lengths = np.fromiter(map(len, folded), dtype=np.int64, count=len(folded))
        else:
            lengths = np.fromiter(map(len, titles), dtype=np.int64, count=len(titles))
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        found = list(self.automaton.iter(text))
        if not found:
            return {}
        ends = np.fromiter((f[0] for f in found), dtype=np.int64, count=len(found))
        sids = np.fromiter((f[1] for f in found), dtype=np.int64, count=len(found))
        del found
        begins = ends - self.length[sids] + 1
        opened = ~_is_alnum_at(text, begins - 1)
        ends, sids, begins = ends[opened], sids[opened], begins[opened]
        closed = ~_is_alnum_at(text, ends + 1)
        owners = np.searchsorted(starts, ends, side="right") - 1
        # One row per (occurrence, rule target).
        reps = self.count[sids]
        rows = np.repeat(self.offset[sids], reps) + (
            np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps))
        occ = np.repeat(np.arange(sids.size), reps)
        keep = self.t_prefix[rows] | closed[occ]
        rows, occ = rows[keep], occ[keep]
        rule = self.t_rule[rows]
        owner = owners[occ]
        begin = begins[occ]
        length = self.length[sids[occ]]
        order = np.lexsort((-length, begin, owner, rule))
        rule, owner, words = rule[order], owner[order], self.t_word[rows[order]]
        first = np.ones(rule.size, dtype=bool)
        first[1:] = (rule[1:] != rule[:-1]) | (owner[1:] != owner[:-1])
        rule, owner, words = rule[first], owner[first], words[first]
        out: dict[int, KeywordHits] = {}
        if rule.size == 0:
            return out
        bounds = np.flatnonzero(np.r_[True, rule[1:] != rule[:-1], True])
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            out[int(rule[a])] = KeywordHits(owner[a:b], words[a:b])
        return out


def classify(columns: TicketColumns, rules: Sequence[Rule], *,
             run_hours_allowance: float | None = None,
             run_ticket_max_hours: float = 1.0) -> Classification:
    """Category, deciding rule and scope for every ticket.

    `run_hours_allowance` is the plan's monthly Run hours (0: none — Run work needs a quote;
    None: the contract has no such notion, e.g. prepaid hours).
    """
    n = columns.n
    rule_index = np.full(n, -1, dtype=np.int64)
    reason = np.full(n, None, dtype=object)
    sources = {"labels": lambda: _Codes.of_lists(columns.labels),
               "components": lambda: _Codes.of_lists(columns.components),
               "issue_types": lambda: _Codes.of_values(columns.issue_types),
               "projects": lambda: _Codes.of_values(columns.projects),
               "epic": lambda: _Codes.of_values(columns.epics or [None] * n)}
    built: dict[str, _Codes] = {}

    def codes_for(key: str) -> _Codes:  # only the columns some rule looks at
        if key not in built:
            built[key] = sources[key]()
        return built[key]

    matcher = _Keywords(rules)
    keywords = matcher.find(columns.titles)
    title_reasons = np.asarray([f"title:{w}" for w in matcher.words], dtype=object)
    hours = np.asarray(columns.hours, dtype=np.float64)

    kinds = {"labels": "label", "components": "component", "issue_types": "issue_type",
             "projects": "project", "epic": "epic"}
    for index, rule in enumerate(rules):
        open_ = rule_index < 0
        if not open_.any():
            break
        mask = open_.copy()
        decisive: Any = None  # how to name the condition that decided, per ticket
        for key, value in rule.conditions():
            if key in kinds:
                codes = codes_for(key)
                hit, first = codes.hits([value] if key == "epic" else value, n)
                mask &= hit
                if decisive is None:
                    decisive = (kinds[key], codes, first)
            elif key == "title_words":
                hits = keywords.get(index)
                hit = np.zeros(n, dtype=bool)
                word_of = np.full(n, -1, dtype=np.int64)
                if hits is not None:
                    hit[hits.tickets] = True
                    word_of[hits.tickets] = hits.words
                mask &= hit
                if decisive is None:
                    decisive = ("title", word_of)
            elif key == "min_hours":
                mask &= hours >= value
            elif key == "max_hours":
                mask &= hours <= value
            elif key in ("title", "description"):
                pattern = re.compile(value)
                texts = columns.titles if key == "title" else (columns.descriptions or [""] * n)
                candidates = np.flatnonzero(mask)
                keep = np.fromiter((pattern.search(texts[i] or "") is not None
                                    for i in candidates), dtype=bool, count=candidates.size)
                mask[:] = False
                mask[candidates[keep]] = True
        chosen = np.flatnonzero(mask)
        if chosen.size == 0:
            continue
        rule_index[chosen] = index
        if not rule.builtin or decisive is None:
            reason[chosen] = rule.name or f"rules[{index}]"
        elif decisive[0] == "title":
            reason[chosen] = title_reasons[decisive[1][chosen]]
        else:
            kind, codes, first = decisive
            named = np.asarray([f"{kind}:{name}" for name in codes.names], dtype=object)
            reason[chosen] = named[codes.code[first[chosen]]]

    categories = np.asarray([r.category for r in rules] + [UNCLASSIFIED], dtype=object)
    category = categories[rule_index]  # -1 picks the last entry: non_classe
    scope = np.full(n, INCLUDED, dtype=object)
    scope[category == "hors_perimetre"] = QUOTE_REQUIRED
    run = category == "evolutif_run"
    too_long = run & (hours > run_ticket_max_hours)
    no_run_hours = run & (run_hours_allowance is not None and run_hours_allowance <= 0)
    scope[too_long | no_run_hours] = QUOTE_REQUIRED
    scope[category == UNCLASSIFIED] = SCOPE_UNCLASSIFIED
    return Classification(category=category, rule=reason, scope=scope, rule_index=rule_index)


def explain(columns: TicketColumns, i: int, rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """For ticket i, each rule tried in order with whether it matched and why, up to the
    winner: what `tmabot tickets --explain` prints."""
    one = TicketColumns(
        titles=[columns.titles[i]], issue_types=[columns.issue_types[i]],
        labels=[columns.labels[i]], components=[columns.components[i]],
        projects=[columns.projects[i]], hours=np.asarray([columns.hours[i]]),
        descriptions=[columns.descriptions[i]] if columns.descriptions else None,
        epics=[columns.epics[i]] if columns.epics else None)
    steps: list[dict[str, Any]] = []
    for index, rule in enumerate(rules):
        result = classify(one, [rule])
        matched = bool(result.rule_index[0] == 0)
        why = _why(rule, one) if matched else _why_not(rule, one)
        steps.append({"rule": rule.name or f"rules[{index}]", "category": rule.category,
                      "matched": matched, "why": why})
        if matched:
            break
    return steps


def _describe(key: str, value: Any) -> str:
    if key in ("title", "description"):
        return f"{key} ~ /{value}/"
    if key == "title_words":
        shown = ", ".join(value[:6]) + (", …" if len(value) > 6 else "")
        return f"title words ({shown})"
    if key in ("min_hours", "max_hours"):
        return f"{key.replace('_', ' ')} {value:g}"
    if isinstance(value, tuple):
        return f"{key.replace('_', ' ')} in ({', '.join(value)})"
    return f"{key} = {value}"


def _why(rule: Rule, one: TicketColumns) -> str:
    parts = []
    result = classify(one, [rule])
    for key, value in rule.conditions():
        parts.append(_describe(key, value))
    decided = result.rule[0]
    return "; ".join(parts) + (f" → {decided}" if rule.builtin and decided else "")


def _why_not(rule: Rule, one: TicketColumns) -> str:
    failing = []
    for key, value in rule.conditions():
        single = Rule(rule.category, name="probe", builtin=False, **{key: value})
        if classify(one, [single]).rule_index[0] != 0:
            failing.append(_describe(key, value))
    return "no match: " + "; ".join(failing) if failing else "no match"

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
        lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        flat = [v for x in lists for v in x]
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


class _Keywords:
    """All built-in keywords, found in one pass over the casefolded, concatenated titles."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.automaton = ahocorasick.Automaton()
        entries: dict[str, list[tuple[int, str, bool]]] = {}
        for index, rule in enumerate(rules):
            for word in rule.title_words or ():
                prefix = word.endswith("*")
                base = _fold(word.rstrip("*"))
                for spelling in {base, _plain(base), base.replace("'", "’")}:
                    entries.setdefault(spelling, []).append((index, word.rstrip("*"), prefix))
        for spelling, targets in entries.items():
            self.automaton.add_word(spelling, (len(spelling), tuple(targets)))
        self.empty = not entries
        if not self.empty:
            self.automaton.make_automaton()

    def find(self, titles: Sequence[str], n_rules: int) -> dict[int, dict[int, str]]:
        """rule index → {ticket: the keyword that matched first}."""
        found: dict[int, dict[int, str]] = {}
        if self.empty or not titles:
            return found
        text = "\n".join(titles).casefold()
        # casefold() can lengthen a title (ß → ss): fall back to per-title offsets then.
        if len(text) != sum(map(len, titles)) + len(titles) - 1:
            folded = [t.casefold() for t in titles]
            text = "\n".join(folded)
            lengths = np.fromiter(map(len, folded), dtype=np.int64, count=len(folded))
        else:
            lengths = np.fromiter(map(len, titles), dtype=np.int64, count=len(titles))
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        ends: list[int] = []
        payload: list[tuple[int, tuple[tuple[int, str, bool], ...]]] = []
        isalnum = str.isalnum
        size = len(text)
        for end, item in self.automaton.iter(text):
            length, _targets = item
            begin = end - length + 1
            if begin > 0 and isalnum(text[begin - 1]):
                continue
            ends.append(end)
            payload.append(item)
        if not ends:
            return found
        best: dict[int, dict[int, tuple[tuple[int, int], str]]] = {}
        owners = np.searchsorted(starts, np.asarray(ends, dtype=np.int64), side="right") - 1
        for end, (length, targets), owner in zip(ends, payload, owners.tolist(), strict=True):
            after = end + 1
            closed = after >= size or not isalnum(text[after])
            begin = end - length + 1
            for rule_index, word, prefix in targets:
                if prefix or closed:
                    per_rule = best.setdefault(rule_index, {})
                    key = (begin, -length)
                    held = per_rule.get(owner)
                    if held is None or key < held[0]:
                        per_rule[owner] = (key, word)
        for rule_index, per_rule in best.items():
            found[rule_index] = {ticket: word for ticket, (_key, word) in per_rule.items()}
        return found


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
    labels = _Codes.of_lists(columns.labels)
    components = _Codes.of_lists(columns.components)
    types = _Codes.of_values(columns.issue_types)
    projects = _Codes.of_values(columns.projects)
    epics = _Codes.of_values(columns.epics or [None] * n)
    keywords = _Keywords(rules).find(columns.titles, len(rules))
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
                codes = {"labels": labels, "components": components, "issue_types": types,
                         "projects": projects, "epic": epics}[key]
                hit, first = codes.hits([value] if key == "epic" else value, n)
                mask &= hit
                if decisive is None:
                    decisive = (kinds[key], codes, first)
            elif key == "title_words":
                per_ticket = keywords.get(index, {})
                hit = np.zeros(n, dtype=bool)
                if per_ticket:
                    idx = np.fromiter(per_ticket.keys(), dtype=np.int64, count=len(per_ticket))
                    hit[idx] = True
                mask &= hit
                if decisive is None:
                    decisive = ("title", per_ticket)
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
            words = decisive[1]
            reason[chosen] = [f"title:{words[i]}" for i in chosen.tolist()]
        else:
            kind, codes, first = decisive
            names = codes.names
            reason[chosen] = [f"{kind}:{names[c]}" for c in codes.code[first[chosen]].tolist()]

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

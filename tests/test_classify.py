"""Classification: built-in rules, agency rules first, scope, explanations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from tmabot.classify import (
    BUILTIN_RULES,
    Rule,
    TicketColumns,
    classify,
    explain,
    rules_from_config,
)
from tmabot.config import load_config_text
from tmabot.emulators.sample import build_sample_agency


def cols(*tickets: dict[str, Any]) -> TicketColumns:
    return TicketColumns(
        titles=[t.get("title", "") for t in tickets],
        issue_types=[t.get("type", "Task") for t in tickets],
        labels=[tuple(t.get("labels", ())) for t in tickets],
        components=[tuple(t.get("components", ())) for t in tickets],
        projects=[t.get("project", "ACME") for t in tickets],
        hours=np.asarray([t.get("hours", 0.0) for t in tickets], dtype=np.float64),
        descriptions=[t.get("description", "") for t in tickets],
        epics=[t.get("epic") for t in tickets])


def one(rules: Any = BUILTIN_RULES, allowance: float | None = 2.0, **ticket: Any,
        ) -> tuple[str, str | None, str]:
    r = classify(cols(ticket), rules, run_hours_allowance=allowance)
    return str(r.category[0]), r.rule[0], str(r.scope[0])


@pytest.mark.parametrize("ticket,category,rule", [
    ({"title": "Formulaire de contact cassé", "type": "Bug"}, "correctif", "issue_type:Bug"),
    ({"title": "Le site est lent", "labels": ["bug"]}, "correctif", "label:bug"),
    ({"title": "Mise à jour WordPress 6.6 → 6.7"}, "preventif", "title:mise à jour"),
    ({"title": "Mise a jour des plugins"}, "preventif", "title:mise à jour"),
    ({"title": "Passage à PHP 8.3"}, "preventif", "title:php"),
    ({"title": "Upgrade Symfony dependencies"}, "preventif", "title:upgrade"),
    ({"title": "Faille XSS sur la recherche"}, "securite", "title:faille"),
    ({"title": "CVE-2026-1234 sur WooCommerce"}, "securite", "title:cve"),
    ({"title": "Rapport WPScan de novembre"}, "securite", "title:wpscan"),
    ({"title": "npm audit : 3 vulnérabilités hautes"}, "securite", "title:npm audit"),
    ({"title": "Correctif de securite Drupal"}, "securite", "title:sécurité"),
    ({"title": "Alerte uptime : site indisponible 7 min", "type": "Incident"},
     "supervision", "title:alerte"),
    ({"title": "Suivi Lighthouse mobile"}, "supervision", "title:lighthouse"),
    ({"title": "Nouvelle page « Nos engagements »", "type": "Story"},
     "hors_perimetre", "title:nouvelle page"),
    ({"title": "Refonte graphique de l'accueil"}, "hors_perimetre", "title:refonte"),
    ({"title": "Intégration API Colissimo"}, "hors_perimetre", "title:intégration api"),
    ({"title": "Ajout d'un champ téléphone", "type": "Task"}, "evolutif_run", "title:ajout"),
    ({"title": "Modifier le wording du bouton", "type": "Story"},
     "evolutif_run", "issue_type:Story"),
    ({"title": "Question sur la facture"}, "non_classe", None),
])
def test_builtin_rules(ticket: dict[str, Any], category: str, rule: str | None) -> None:
    got_category, got_rule, _scope = one(**ticket)
    assert (got_category, got_rule) == (category, rule)


@pytest.mark.parametrize("title,category", [
    ("Mise à jour des blogs", "preventif"),  # "logs" does not match inside "blogs"
    ("Nouveaux blogs invités", "non_classe"),
    ("Bug majeur sur le panier", "correctif"),  # "maj" does not match inside "majeur"
    ("Configurer l'alerting Grafana", "supervision"),  # "alert*" is a prefix
    ("STRASSE ohne Fehler", "non_classe"),  # casefold lengthens ß: offsets still right
    ("Straße: erreur 500 beim Checkout", "correctif"),
    ("SÉCURITÉ : revue des accès", "securite"),
    ("Ajout d’un champ", "evolutif_run"),  # typographic apostrophe
])
def test_keyword_boundaries_case_and_accents(title: str, category: str) -> None:
    assert one(title=title)[0] == category


def test_keywords_in_neighbouring_titles_do_not_leak() -> None:
    r = classify(cols({"title": "Site en pan"}, {"title": "ne sur mobile"},
                      {"title": "Rien à signaler"}, {"title": "erreur"}), BUILTIN_RULES)
    assert list(r.category) == ["non_classe", "non_classe", "non_classe", "correctif"]


def test_labels_beat_issue_types_and_security_beats_correctif() -> None:
    assert one(title="Faille XSS", type="Bug")[0] == "securite"
    assert one(title="Alerte espace disque", type="Incident", labels=["supervision"])[:2] \
        == ("supervision", "label:supervision")
    assert one(title="Quelque chose", type="bug")[1] == "issue_type:bug"


def test_agency_rules_come_first_and_match_on_every_condition() -> None:
    settings = load_config_text('''
[agency]
name = "A"
[[classification.rules]]
category = "evolutif_run"
name = "run-label"
labels = ["run"]
max_hours = 1
[[classification.rules]]
category = "hors_perimetre"
title = "(?i)refonte|nouveau tunnel"
projects = ["BIG"]
[[classification.rules]]
category = "supervision"
components = ["Monitoring"]
issue_types = ["Incident"]
[[classification.rules]]
category = "securite"
description = "(?i)pentest"
[[classification.rules]]
category = "preventif"
epic = "ACME-1"
min_hours = 2
''', env={})
    rules = rules_from_config(settings)
    assert rules[-len(BUILTIN_RULES):] == BUILTIN_RULES
    assert one(rules, title="Corriger le bug", labels=["Run"], hours=0.5)[:2] \
        == ("evolutif_run", "run-label")
    # max_hours fails: the built-in rules decide.
    assert one(rules, title="Corriger le bug", labels=["run"], hours=1.5)[0] == "evolutif_run"
    assert one(rules, title="Corriger le bug", labels=["run"], hours=1.5)[1] == "label:run"
    assert one(rules, title="Nouveau tunnel de paiement", project="BIG")[:2] \
        == ("hors_perimetre", "rules[1]")
    assert one(rules, title="Nouveau tunnel de paiement", project="ACME")[0] == "non_classe"
    assert one(rules, title="Panne", type="Incident", components=["monitoring"])[:2] \
        == ("supervision", "rules[2]")
    assert one(rules, title="Panne", type="Bug", components=["monitoring"])[0] == "correctif"
    assert one(rules, title="Audit", description="Rapport du PENTEST annuel")[:2] \
        == ("securite", "rules[3]")
    assert one(rules, title="Divers", epic="ACME-1", hours=3)[:2] == ("preventif", "rules[4]")
    assert one(rules, title="Divers", epic="ACME-1", hours=1)[0] == "non_classe"


def test_scope() -> None:
    assert one(title="Refonte du header")[2] == "quote_required"
    assert one(title="Ajout d'un champ", hours=0.5)[2] == "included"
    assert one(title="Ajout d'un champ", hours=1.5)[2] == "quote_required"  # over 1 h
    assert one(title="Ajout d'un champ", hours=0.5, allowance=0)[2] == "quote_required"
    assert one(title="Ajout d'un champ", hours=0.5, allowance=None)[2] == "included"
    assert one(title="Question")[2] == "unclassified"
    assert one(title="Erreur 500", hours=12)[2] == "included"
    r = classify(cols({"title": "Ajout d'un champ", "hours": 1.5}), BUILTIN_RULES,
                 run_hours_allowance=2, run_ticket_max_hours=2.0)
    assert r.scope[0] == "included"


def test_explain_lists_the_rules_tried_up_to_the_winner() -> None:
    c = cols({"title": "Ajout d'un champ", "type": "Task", "labels": ["client"]})
    steps = explain(c, 0, BUILTIN_RULES)
    assert steps[-1]["matched"] and steps[-1]["category"] == "evolutif_run"
    assert "title:ajout" in steps[-1]["why"]
    assert all(not s["matched"] for s in steps[:-1])
    assert steps[0]["why"].startswith("no match: labels in (")
    assert len(steps) == len(BUILTIN_RULES)  # the winner is the last built-in rule
    unmatched = explain(cols({"title": "Question"}), 0, BUILTIN_RULES)
    assert len(unmatched) == len(BUILTIN_RULES) and not unmatched[-1]["matched"]


def test_sample_agency_is_classified_as_its_generator_meant() -> None:
    agency = build_sample_agency(datetime(2026, 11, 25, 10, tzinfo=UTC))
    issues = agency.dataset.issues
    c = cols(*({"title": i.summary, "type": i.issue_type, "labels": i.labels,
                "components": i.components} for i in issues))
    r = classify(c, BUILTIN_RULES, run_hours_allowance=2.0)
    known = [(k, agency.categories[i.key]) for k, i in enumerate(issues)
             if agency.categories.get(i.key)]
    right = sum(1 for k, truth in known if r.category[k] == truth)
    assert right / len(known) >= 0.97, right / len(known)
    ambiguous = [k for k, i in enumerate(issues) if agency.categories.get(i.key) is None]
    assert ambiguous and all(r.category[k] == "non_classe" for k in ambiguous)


def test_an_empty_batch_and_a_rule_list_without_keywords() -> None:
    r = classify(cols(), BUILTIN_RULES)
    assert r.category.size == 0
    only = (Rule("correctif", labels=("bug",)),)
    assert one(only, title="erreur", labels=["BUG"])[0] == "correctif"

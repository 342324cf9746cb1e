"""Tables behind the sample agency: people, clients, kinds of tickets and their French texts."""

from __future__ import annotations

from dataclasses import dataclass

# Sites come in three families; "*" lines fit every site. Titles are what a
# French agency's Jira really looks like: mostly French, a few English ones
# written by developers, some without any keyword a rule could latch on to.
WORDPRESS, SYLIUS, NEXTJS = "wordpress", "sylius", "nextjs"

TITLES: dict[str, dict[str, list[str]]] = {
    "correctif_urgent": {
        "*": [
            "Erreur 500 sur la page panier",
            "Formulaire de contact n'envoie plus les mails",
            "Site inaccessible depuis ce matin",
            "Page blanche après la dernière mise en production",
            "Erreur 503 sur l'ensemble du site",
            "Certificat SSL expiré : alerte dans le navigateur",
        ],
        WORDPRESS: [
            "Erreur critique WordPress sur la page d'accueil",
            "Les commandes click & collect ne remontent plus dans WooCommerce",
            "Impossible de se connecter à l'administration WordPress",
            "Contact Form 7 : les messages n'arrivent plus",
        ],
        SYLIUS: [
            "Tunnel de commande bloqué à l'étape livraison",
            "Erreur 500 à la validation du panier",
            "Les paiements Stripe restent « en attente »",
            "Le back-office Sylius ne charge plus les commandes",
        ],
        NEXTJS: [
            "Réservation impossible : erreur 502 sur l'API",
            "Les créneaux disponibles ne s'affichent plus",
            "Paiement de l'acompte en échec",
            "E-mails de confirmation de réservation non envoyés",
            "Checkout crashes on Safari iOS",
        ],
    },
    "correctif": {
        "*": [
            "Affichage incorrect du menu sur mobile",
            "Lien cassé dans le pied de page",
            "Image du bandeau déformée sur tablette",
            "Le bouton « Envoyer » est décalé sur iPhone",
            "Erreur 404 sur l'ancienne page Mentions légales",
            "Le sitemap.xml renvoie une erreur",
            "Accents mal affichés dans les e-mails",
            "Recherche interne : aucun résultat avec des accents",
            "Bug d'affichage de la bannière cookies",
        ],
        WORDPRESS: [
            "Les horaires d'ouverture ne s'affichent plus",
            "La galerie photos des gâteaux ne charge plus",
            "Le widget Google Maps affiche une erreur",
            "Doublons dans les e-mails de commande WooCommerce",
            "Le slider Elementor ne défile plus",
        ],
        SYLIUS: [
            "Frais de port mal calculés pour la Corse",
            "Le code promo RENTREE ne s'applique pas",
            "Les couvertures de livres ne s'affichent pas dans le catalogue",
            "Export CSV des commandes : colonnes décalées",
            "Stock négatif sur certains ouvrages",
        ],
        NEXTJS: [
            "Le calendrier affiche les dates en anglais",
            "Décalage d'une heure sur les créneaux après le changement d'heure",
            "Le filtre par ville ne fonctionne plus",
            "Fix hydration error on booking page",
            "Le PDF de confirmation indique un mauvais montant",
        ],
    },
    "preventif": {
        "*": ["Passage PHP 8.2 → 8.3", "Nettoyage des tables de sessions expirées"],
        WORDPRESS: [
            "Mise à jour WordPress 6.6 → 6.7",
            "Mise à jour des plugins (WooCommerce 9.3)",
            "Mise à jour des plugins (Yoast SEO, WP Rocket)",
            "Mise à jour Elementor 3.24 → 3.25",
            "Mise à jour WordPress 6.7 → 6.7.1",
            "Remplacement du plugin abandonné « WP Google Maps »",
        ],
        SYLIUS: [
            "Mise à jour Sylius 1.13 → 1.14",
            "Mise à jour Symfony 6.4 (versions correctives)",
            "Mise à jour des dépendances Composer",
            "Mise à jour MySQL 8.0 → 8.4 sur staging",
        ],
        NEXTJS: [
            "Mise à jour des dépendances npm",
            "Mise à jour Next.js 14.2 → 15.1",
            "Passage Node.js 18 → 20 LTS",
            "Mise à jour React 18 → 19",
            "Bump API dependencies (composer update)",
        ],
    },
    "securite_patch": {
        "*": ["Rotation des clés API après le départ d'un prestataire"],
        WORDPRESS: [
            "Correctif faille XSS plugin Contact Form 7",
            "Mise à jour de sécurité WooCommerce",
            "Correctif de sécurité WordPress 6.5.2 (CVE-2024-4439)",
            "Blocage d'une attaque par force brute sur wp-login",
        ],
        SYLIUS: [
            "Correctif de sécurité Symfony (CVE-2024-50340)",
            "Mise à jour de sécurité Sylius 1.13.x",
            "Patch vulnérabilité Twig (échappement)",
        ],
        NEXTJS: [
            "Correctif CVE-2025-29927 (contournement du middleware Next.js)",
            "Patch vulnérabilité axios (SSRF)",
            "Security fix: bump jsonwebtoken",
        ],
    },
    "securite_audit": {
        "*": [
            "Revue des accès administrateurs",
            "Vérification des en-têtes de sécurité (CSP, HSTS)",
        ],
        WORDPRESS: ["Scan WPScan mensuel", "Suppression des comptes administrateurs inutilisés"],
        SYLIUS: ["Audit composer audit mensuel", "Revue des accès au back-office"],
        NEXTJS: ["Audit npm audit mensuel", "Revue des accès SSH et base de données"],
    },
    "supervision_alerte": {
        "*": [
            "Alerte uptime : site indisponible {minutes} min",
            "Alerte : temps de réponse supérieur à 5 s",
            "Alerte espace disque serveur à 90 %",
            "Pic d'erreurs 5xx détecté par le monitoring",
        ],
        NEXTJS: [
            "Alerte uptime : API de réservation indisponible {minutes} min",
            "Sentry : pic d'erreurs sur /reservation",
        ],
    },
    "supervision": {
        "*": [
            "Analyse des logs d'erreurs",
            "Suivi Lighthouse mobile",
            "Vérification du renouvellement automatique du certificat SSL",
            "Contrôle des sauvegardes automatiques",
        ],
        NEXTJS: ["Revue des erreurs Sentry de la semaine", "Suivi des Core Web Vitals"],
    },
    "evolutif_run": {
        "*": [
            "Ajouter un champ téléphone au formulaire",
            "Modifier le libellé du bouton",
            "Changer l'ordre des liens du menu",
            "Remplacer le logo dans le pied de page",
            "Ajouter un lien vers la page Instagram",
            "Mettre à jour les mentions légales",
            "Modifier le texte du bandeau d'information",
        ],
        WORDPRESS: [
            "Mettre à jour les horaires d'ouverture pour les fêtes",
            "Ajouter la galette des rois à la carte",
        ],
        SYLIUS: [
            "Ajouter un champ « numéro de TVA » à l'inscription",
            "Afficher la mention « Expédié sous 48 h »",
        ],
        NEXTJS: [
            "Ajouter le filtre « Animaux acceptés »",
            "Modifier le texte de l'e-mail de confirmation",
        ],
    },
    "hors_perimetre": {
        "*": [
            "Nouvelle page « Nos engagements »",
            "Refonte partielle de la page d'accueil",
            "Création d'un espace client",
            "Version anglaise du site",
        ],
        WORDPRESS: [
            "Module de commande de gâteaux personnalisés",
            "Nouvelle page « Nos artisans »",
        ],
        SYLIUS: [
            "Intégration API transporteur Colissimo",
            "Paiement en 3 fois sans frais",
            "Connecteur avec le logiciel de caisse",
        ],
        NEXTJS: [
            "Intégration API Google Calendar pour les hôtes",
            "Intégration Stripe Connect pour les propriétaires",
        ],
    },
    # Nothing a rule engine can hold on to: no label, no keyword, type Task.
    "ambigu": {
        "*": [
            "Suite à notre échange téléphonique",
            "Retour client à traiter",
            "Demande diverse",
            "Petit souci ?",
            "Question sur la facture",
            "À voir avec Thomas",
            "Voir mail de ce matin",
            "Point d'étape",
        ],
    },
    "restauration": {
        "*": [
            "Test de restauration de sauvegarde",
            "Test de restauration de la base de données",
        ],
        NEXTJS: ["Restore test: database backup"],
    },
}

DESCRIPTIONS: dict[str, list[str]] = {
    "correctif_urgent": [
        "Signalé par {reporter} : bloquant pour les clients, à traiter en priorité.",
        "Constaté en production à {heure}. Aucun contournement possible.",
        "Plusieurs clients nous ont appelés. Merci de regarder au plus vite !",
    ],
    "correctif": [
        "Constaté sur {site}, reproduit sur Chrome et Safari.",
        "Signalé par {reporter}. Capture d'écran jointe.",
        "Pas bloquant mais visible par les visiteurs.",
    ],
    "preventif": [
        "Mise à jour à passer d'abord sur staging, puis en production après recette.",
        "Maintenance préventive planifiée ce mois-ci.",
        "Vérifier les notes de version avant de lancer la mise à jour.",
    ],
    "securite_patch": [
        "Vulnérabilité publiée cette semaine : appliquer le correctif sous 72 h.",
        "Alerte de sécurité reçue, version corrigée disponible.",
    ],
    "securite_audit": [
        "Contrôle de sécurité récurrent prévu au contrat.",
        "Lister les résultats et ouvrir un ticket par vulnérabilité.",
    ],
    "supervision_alerte": [
        "Alerte automatique du monitoring. Vérifier la cause et documenter.",
        "Déclenché par la sonde externe, retour à la normale à vérifier.",
    ],
    "supervision": [
        "Suivi récurrent : consigner les constats dans le rapport mensuel.",
        "Relever les points d'attention pour le mois prochain.",
    ],
    "evolutif_run": [
        "Petite évolution demandée par {reporter}.",
        "Modification légère, moins d'une heure estimée.",
    ],
    "hors_perimetre": [
        "Nouvelle demande de {reporter} : chiffrage à faire avant réalisation.",
        "Hors contrat de maintenance, devis à envoyer.",
    ],
    "ambigu": [
        "Voir échange avec {reporter}.",
        "cf. mail",
    ],
    "restauration": [
        "Restaurer la dernière sauvegarde sur un environnement isolé et vérifier les données.",
        "Test trimestriel : restauration complète, contrôle des commandes et des médias.",
    ],
}

# Worklog comments by phase of a ticket.
WORKLOG_COMMENTS: dict[str, list[str]] = {
    "correctif_urgent": ["Analyse et correctif à chaud", "Diagnostic en production",
                         "Correctif déployé, surveillance", "Rollback puis correctif"],
    "correctif": ["Analyse et reproduction", "Correctif et tests", "Déploiement en production",
                  "Tests de non-régression"],
    "preventif": ["Mise à jour sur staging", "Tests sur staging", "Mise en production",
                  "Lecture des notes de version"],
    "securite_patch": ["Application du correctif", "Vérification de la vulnérabilité",
                       "Déploiement du patch"],
    "securite_audit": ["Audit et rapport", "Revue des comptes", "Analyse des résultats"],
    "supervision_alerte": ["Analyse de l'alerte", "Redémarrage du service", "Analyse des logs"],
    "supervision": ["Analyse des logs", "Relevé des indicateurs", "Synthèse pour le rapport"],
    "evolutif_run": ["Modification et mise en ligne", "Intégration", "Ajustements"],
    "hors_perimetre": ["Chiffrage", "Rédaction du devis", "Maquette", "Développement",
                       "Intégration"],
    "ambigu": ["Échange avec le client", "Analyse"],
    "restauration": ["Restauration de la sauvegarde", "Vérification des données restaurées"],
}
PM_COMMENTS = ["Échange avec le client", "Point téléphonique", "Qualification de la demande"]

SUBTASK_TITLES = ["Recette de la mise à jour sur staging", "Vérification après mise en production"]

# One quoted project per client that gets split into an epic and stories.
EPICS: dict[str, tuple[str, list[str]]] = {
    WORDPRESS: ("Module de commande de gâteaux personnalisés",
                ["Gâteaux personnalisés : formulaire de commande",
                 "Gâteaux personnalisés : paiement de l'acompte"]),
    SYLIUS: ("Intégration API transporteur Colissimo",
             ["Colissimo : calcul des frais de port", "Colissimo : génération des étiquettes",
              "Colissimo : suivi des colis dans l'espace client"]),
    NEXTJS: ("Nouveau tunnel de réservation multi-séjours",
             ["Multi-séjours : panier de réservations", "Multi-séjours : paiement groupé"]),
}

MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre"]


# -- people ---------------------------------------------------------------------
# key: (display name, username, email local part or full address, email visible)
AGENCY_PEOPLE = {
    "camille": ("Camille Rousseau", "crousseau", "camille.rousseau", True),  # chef de projet
    "thomas": ("Thomas Girard", "tgirard", "thomas.girard", True),
    "ines": ("Inès Benali", "ibenali", "ines.benali", True),
    "hugo": ("Hugo Lefèvre", "hlefevre", "hugo.lefevre", False),  # hides his email
    "lea": ("Léa Fontaine", "lfontaine", "lea.fontaine", True),
    "karim": ("Karim Haddad", "khaddad", "karim.haddad", True),  # ops, on call
}
AUTOMATION_ID = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"  # Jira Automation's real id


# -- kinds of tickets -------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """How a kind of ticket is born, lives and is worked on."""

    category: str | None  # DOMAIN.md §1 category; None = nothing a rule can use
    label: str | None
    types: tuple[tuple[str, float], ...]
    prio: tuple[float, float, float, float, float]  # weights of P0, P1, P2, P3, none
    worklogs: tuple[int, int]
    quarters: tuple[int, int]  # worklog duration range in quarter hours
    origin: str  # client | agency | robot
    staging: float  # chance to go through staging when the client has one
    work: tuple[int, int]  # business minutes from first response to delivery


# Worklog durations are in quarter hours: most TMA work is 15 min to 2 h.
KINDS: dict[str, Kind] = {
    "correctif_urgent": Kind("correctif", "bug", (("Bug", 0.6), ("Incident", 0.4)),
                             (0.25, 0.6, 0.15, 0, 0), (1, 3), (2, 8), "client", 0.2, (30, 600)),
    "correctif": Kind("correctif", "bug", (("Bug", 0.85), ("Task", 0.15)),
                      (0, 0.08, 0.6, 0.28, 0.04), (1, 2), (1, 6), "client", 0.6, (120, 2400)),
    "preventif": Kind("preventif", "maj", (("Task", 1),),
                      (0, 0, 0.45, 0.5, 0.05), (1, 2), (1, 6), "agency", 0.9, (60, 960)),
    "securite_patch": Kind("securite", "securite", (("Task", 0.6), ("Bug", 0.4)),
                           (0.1, 0.55, 0.35, 0, 0), (1, 2), (1, 4), "agency", 0.5, (30, 480)),
    "securite_audit": Kind("securite", "securite", (("Task", 1),),
                           (0, 0, 0.4, 0.55, 0.05), (1, 1), (1, 3), "agency", 0, (30, 480)),
    "supervision_alerte": Kind("supervision", "supervision", (("Incident", 0.8), ("Task", 0.2)),
                               (0.3, 0.4, 0.3, 0, 0), (1, 2), (1, 3), "robot", 0, (15, 240)),
    "supervision": Kind("supervision", "supervision", (("Task", 1),),
                        (0, 0, 0.3, 0.65, 0.05), (1, 1), (1, 2), "agency", 0, (30, 480)),
    "evolutif_run": Kind("evolutif_run", "run", (("Story", 0.5), ("Task", 0.5)),
                         (0, 0, 0.3, 0.65, 0.05), (1, 2), (1, 4), "client", 0.6, (60, 1440)),
    "hors_perimetre": Kind("hors_perimetre", "devis", (("Story", 1),),
                           (0, 0, 0.35, 0.6, 0.05), (2, 5), (4, 14), "client", 0.8, (1440, 9600)),
    "ambigu": Kind(None, None, (("Task", 1),),
                   (0, 0, 0.4, 0.3, 0.3), (0, 1), (1, 2), "client", 0, (30, 1440)),
    "restauration": Kind("preventif", "sauvegarde", (("Task", 1),),
                         (0, 0, 0.3, 0.7, 0), (1, 2), (2, 6), "agency", 0, (30, 480)),
}

# -- clients --------------------------------------------------------------------
ALL_MONTHS = tuple(range(7))  # six full months plus the current one


@dataclass(frozen=True)
class Profile:
    """One client of the agency: its contract, its site, its habits."""

    id: str
    name: str
    key: str
    tier: str
    model: str
    fee: str
    rate: str
    site: str
    family: str
    domain: str
    reporter: tuple[str, str, str]  # display name, username, email
    recipients: tuple[str, ...]
    slack: str
    started_months_before: int  # contract start, relative to the sample's first month
    per_month: float  # tickets per month on top of the recurring ones
    weights: dict[str, float]
    devs: tuple[str, ...]
    staging: str | None  # status name; the essentiel plan has no staging environment
    legacy_priorities: bool
    components: tuple[str, ...]
    off_hours: float  # extra share of tickets outside office hours
    recurring: tuple[tuple[str, str, tuple[int, ...]], ...]  # kind, title, month indexes


PROFILES = (
    Profile(
        "boulangerie-lemoine", "Boulangerie-Pâtisserie Lemoine", "BLM", "essentiel", "forfait",
        "290.00", "70.00", "WordPress / WooCommerce", WORDPRESS, "boulangerie-lemoine.fr",
        ("Élodie Lemoine", "elemoine", "elodie@boulangerie-lemoine.fr"),
        ("elodie@boulangerie-lemoine.fr",), "C07BLMQ2T4K", 26, 14.0,
        {"correctif_urgent": 6, "correctif": 30, "preventif": 4, "securite_patch": 6,
         "securite_audit": 2, "supervision_alerte": 10, "supervision": 4, "evolutif_run": 20,
         "hors_perimetre": 7, "ambigu": 9},
        ("ines", "hugo"), None, False, ("Site vitrine", "Boutique WooCommerce"), 0.0,
        (("securite_audit", "Scan WPScan mensuel ({mois})", ALL_MONTHS),
         ("preventif", "Mise à jour WordPress et plugins ({mois})", (1, 4)),
         # last restore test > 3 months before now: checklist C3 shows "due"
         ("restauration", "Test de restauration de sauvegarde", (0, 2))),
    ),
    Profile(
        "librairie-des-ecluses", "Librairie des Écluses", "LIB", "business", "credit_temps",
        "0.00", "85.00", "Symfony / Sylius", SYLIUS, "librairie-des-ecluses.fr",
        ("Julien Marchand", "jmarchand", "j.marchand@librairie-des-ecluses.fr"),
        ("j.marchand@librairie-des-ecluses.fr", "compta@librairie-des-ecluses.fr"),
        "C06LIBR8ZP3", 0, 22.0,
        {"correctif_urgent": 6, "correctif": 28, "preventif": 8, "securite_patch": 6,
         "securite_audit": 2, "supervision_alerte": 8, "supervision": 5, "evolutif_run": 20,
         "hors_perimetre": 8, "ambigu": 6},
        ("thomas", "ines", "lea"), "Recette", True,
        ("Catalogue", "Tunnel de commande", "Back-office", "Paiement"), 0.03,
        (("securite_audit", "Audit composer audit mensuel ({mois})", ALL_MONTHS),
         ("preventif", "Mises à jour trimestrielles Sylius / Symfony", (0, 3, 6)),
         ("supervision", "Suivi Lighthouse mobile ({mois})", ALL_MONTHS),
         ("restauration", "Test de restauration de sauvegarde", (0, 2, 4, 6))),
    ),
    Profile(
        "azur-evasion", "Azur Évasion Réservations", "AZR", "critique", "sla",
        "2400.00", "95.00", "Next.js + API Symfony", NEXTJS, "azur-evasion.com",
        ("Sophie Nguyen", "snguyen", "sophie.nguyen@azur-evasion.com"),
        ("sophie.nguyen@azur-evasion.com", "dsi@azur-evasion.com"), "C05AZRW1N9X", 14, 33.0,
        {"correctif_urgent": 9, "correctif": 28, "preventif": 6, "securite_patch": 7,
         "securite_audit": 2, "supervision_alerte": 14, "supervision": 8, "evolutif_run": 14,
         "hors_perimetre": 5, "ambigu": 5},
        ("lea", "hugo", "thomas", "karim"), "In staging", False,
        ("Front Next.js", "API réservations", "Paiement", "Infra"), 0.08,
        (("securite_audit", "Audit npm audit mensuel ({mois})", ALL_MONTHS),
         ("preventif", "Mise à jour des dépendances npm ({mois})", ALL_MONTHS),
         ("supervision", "Analyse des logs d'erreurs ({mois})", ALL_MONTHS),
         ("restauration", "Test de restauration de sauvegarde ({mois})", ALL_MONTHS),
         ("securite_audit", "Revue des accès administrateurs", (1, 4))),
    ),
)


# Open tickets just before `now`, close to or past their SLA, for nudges to find:
# (kind, priority, created minutes before now, office minutes?, initial status,
#  script of (minutes after the previous step, office minutes?, status), title)
HOT_TICKETS: dict[str, list[tuple[str, int, int, bool, str, list[tuple[int, bool, str]], str]]] = {
    "AZR": [
        ("correctif_urgent", 0, 95, False, "À faire", [],
         "Réservation impossible : erreur 502 sur l'API"),
        ("supervision_alerte", 0, 410, False, "À faire", [(9, False, "En cours")],
         "Alerte uptime : API de réservation indisponible 14 min"),
        ("correctif", 1, 600, True, "Backlog", [(25, True, "À faire")],
         "Le filtre par ville ne fonctionne plus"),
    ],
    "LIB": [
        ("correctif_urgent", 1, 400, True, "À faire", [],
         "Tunnel de commande bloqué à l'étape livraison"),
        ("correctif_urgent", 1, 720, True, "À faire", [(45, True, "En cours"),
                                                    (90, True, "En attente client")],
         "Les paiements Stripe restent « en attente »"),
        ("correctif", 2, 1950, True, "À faire", [(150, True, "En cours")],
         "Export CSV des commandes : colonnes décalées"),
    ],
    "BLM": [
        ("correctif_urgent", 1, 560, True, "À faire", [],
         "Formulaire de contact n'envoie plus les mails"),
        ("correctif_urgent", 0, 300, True, "À faire", [(120, True, "En cours")],
         "Erreur critique WordPress sur la page d'accueil"),
    ],
}

"""Synthetic matchmaking datasets in the exchange format (``shared/dataset-format.md``).

The generator is the project's demo, test and benchmark data and the data the
ranking model is trained and evaluated on, so it simulates a platform rather
than sampling rows independently. Everything is deterministic for a given
:class:`GeneratorConfig` (one ``numpy`` seed sequence; the pair scores are
computed from weights on a 1/32 grid so BLAS summation order cannot change
them).

What is simulated
-----------------
* Companies (Berlin) arrive week by week (a share registered during the two
  years before the history starts). Sectors come from about 40 sector profiles
  weighted like Berlin's economy (software far ahead); each sector code is
  drawn together with an offering *concept* (e.g. "cybersecurity") whose
  synonyms, German or English (about 50/50), make up the description.
  Employees are log-normal (median 10, ~2 % with 250+), age grows with size,
  export experience is an ordered logit of size, age and sector.
* Leads arrive week by week in the partner cities (never suspended ones). A
  lead has its own sector (a hospital, a city administration, a food
  distributor) and *wants* one or two company divisions drawn from an
  affinity map (hospital 86 -> medical instruments 32 / electromedical 26 /
  software 62; construction 41/42 -> engineering 71 / installation 43; ...).
  Wanted concepts appear in its English description, wanted codes only
  sometimes in its sector list. Budgets are log-normal by kind; tenders always
  have a deadline, others 45 % of the time, 2-16 weeks after publication.
* Latent utility of a (company, lead) pair, kept internal: direct sector match
  (class 1, group 0.75, division 0.5), complementary affinity, concept overlap
  (what the text says), target city, a common language, size / export / age
  against the lead kind (tenders need capacity, investors prefer young
  firms, distributors prefer exporters), the kinds the company says it seeks,
  lead quality and Gaussian pair noise; interest decays with the lead's age.
* Interactions: every week each non-dormant registered company opens the
  platform with a probability set by its gamma-distributed activity (higher
  in its first weeks) and sees the 10 open leads a logging policy ranks
  highest. The default policy only knows primary/any division overlap, target
  city and recency, plus noise, so it misses complementary matches; two others
  (``logging_policy``) rank by popularity (the leads with the highest mean
  utility, one list for everyone) or by the concepts the descriptions share,
  so that an evaluation can show what logs of another policy do to the
  ranker. Views follow
  an examination model, P(view) = attention * position^-0.75 * (0.2 + 0.8 r)
  with r = sigmoid(1.5 * (utility - 2.5)); after a view come declined or
  interested -> contacted -> introduced -> deal with falling probabilities and
  delays of hours to weeks. Independently, companies discover leads on their
  own (search, events): views with a null position, sampled in proportion to
  exp(utility / 0.5), about a quarter of all positive interactions. A lead the
  company has viewed is not listed again.
* Missions go to active partner cities with a themed sector focus; companies
  apply (most relevant first), the agency invites by a division heuristic,
  the best candidates up to capacity participate once the mission starts.

Invariants: no interaction before the company registered or the lead was
published, none after the end of the deadline day (Berlin time) or after the
simulated history ends; a pair's events are in funnel order.

Not modelled: competition between companies for a lead (leads never close
early), seasonality and holidays, companies changing their profile, repeated
funnels for one pair, lead owners' side of the conversation, a mission's
influence on later lead interactions.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from partnermatch.cities.data import BERLIN_PARTNER_CITIES, PartnerCity
from partnermatch.sectors.nace import load_nace_rev2

__all__ = ["GeneratorConfig", "generate"]

Array = npt.NDArray[Any]
Progress = Callable[[str, int, int], None]

BERLIN = ZoneInfo("Europe/Berlin")
DAY = 86_400
WEEK = 7 * DAY

LEAD_KINDS = ("buyer", "distributor", "investor", "research_partner", "tender", "joint_venture")
BUYER, DISTRIBUTOR, INVESTOR, RESEARCH, TENDER, JOINT_VENTURE = range(6)
EXPORT_LEVELS = ("none", "some", "extensive")
EVENT_KINDS = ("impression", "view", "interested", "declined", "contacted", "introduced", "deal")
IMPRESSION, VIEW, INTERESTED, DECLINED, CONTACTED, INTRODUCED, DEAL = range(7)
PARTICIPANT_STATUSES = ("applied", "invited", "participated", "declined")


LOGGING_POLICIES = ("rules", "popularity", "text")
# The popularity policy's score, as standard deviations of a lead's mean utility: a spread like the
# rules' (0 to about 2), so that the recency bonus and the noise weigh about as much under each policy.
POPULARITY_SPREAD = 0.6


@dataclass(frozen=True)
class GeneratorConfig:
    companies: int = 2000
    leads: int = 1000
    seed: int = 0
    weeks: int = 52
    start: date = date(2025, 1, 6)
    missions: int | None = None
    """Number of trade missions; None: ``max(3, leads // 100)`` (50 a year at 5,000 leads: enough missions
    after the protocol's cutoff for the mission evaluation to rest on more than one or two)."""
    activity: float = 1.0
    """Scales platform sessions and organic discovery. 1.0 gives about 25 interactions
    per company over 52 weeks (about 500,000 for 20,000 companies and 10,000 leads)."""
    dormant_share: float = 0.25
    """Companies that register and never come back."""
    preexisting_share: float = 0.3
    """Companies registered during the two years before ``start``."""
    list_size: int = 10
    logging_policy: str = "rules"
    """What ranked the logged lists (one of :data:`LOGGING_POLICIES`): ``rules`` (the default), sector
    and city rules; ``popularity``, the same list for everyone, the leads most companies like; ``text``,
    the concepts the company's and the lead's descriptions share. The ranker learns from logs of a
    policy it cannot choose, and its position-bias correction sees different exposure under each."""

    def __post_init__(self) -> None:
        for name in ("companies", "leads", "weeks", "list_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.logging_policy not in LOGGING_POLICIES:
            raise ValueError(f"logging_policy must be one of {', '.join(LOGGING_POLICIES)}")
        if self.missions is not None and self.missions < 0:
            raise ValueError("missions must not be negative")
        if not self.activity >= 0:
            raise ValueError("activity must not be negative")
        for name in ("dormant_share", "preexisting_share"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1)")

    @property
    def mission_count(self) -> int:
        return self.missions if self.missions is not None else max(3, self.leads // 100)


# ---------------------------------------------------------------------------
# Vocabulary. Every code below is checked against NACE Rev. 2 before use.


class Concept(NamedTuple):
    en: tuple[str, ...]
    de: tuple[str, ...]
    classes: tuple[str, ...] = ()
    """Classes the concept belongs to; empty: any class of the division."""


class Sector(NamedTuple):
    weight: float
    """Relative frequency among Berlin companies (0: only foreign leads have it)."""
    classes: tuple[str, ...]
    role_en: str
    role_de: str
    name_words: tuple[str, ...]
    org_nouns: tuple[str, ...]
    concepts: tuple[Concept, ...]


# fmt: off
C = Concept
SECTORS: dict[str, Sector] = {
    "10": Sector(
        3.0, ("10.89", "10.71", "10.82", "10.39", "10.13"), "food manufacturer", "Lebensmittelhersteller",
        ("Feinkost", "Backwaren", "Manufaktur", "Lebensmittel"), ("Foods", "Food Group", "Agro"),
        (
            C(("organic food products", "organic groceries", "bio food"),
              ("Bio-Lebensmittel", "ökologische Lebensmittel", "Bio-Produkte"), ("10.89", "10.39")),
            C(("bakery products", "baked goods", "bread and pastries"),
              ("Backwaren", "Brot und Feingebäck", "Bäckereiprodukte"), ("10.71",)),
            C(("chocolate and confectionery", "sweets", "premium chocolate"),
              ("Schokolade und Süßwaren", "Confiserie", "Süßwaren"), ("10.82",)),
            C(("plant-based foods", "vegan meat alternatives", "alternative proteins"),
              ("pflanzliche Lebensmittel", "vegane Fleischalternativen", "alternative Proteine"),
              ("10.89", "10.13")),
        ),
    ),
    "11": Sector(
        1.5, ("11.05", "11.07", "11.01", "11.02"), "beverage producer", "Getränkehersteller",
        ("Brauerei", "Getränke", "Destille"), ("Beverages", "Drinks"),
        (
            C(("craft beer", "beer", "brewery products"),
              ("Craft-Bier", "Bier", "Brauereierzeugnisse"), ("11.05",)),
            C(("soft drinks", "lemonades", "non-alcoholic beverages"),
              ("Erfrischungsgetränke", "Limonaden", "alkoholfreie Getränke"), ("11.07",)),
            C(("spirits", "gin and liqueurs", "distilled beverages"),
              ("Spirituosen", "Gin und Liköre", "Destillate"), ("11.01",)),
            C(("wine", "wines and sparkling wines", "premium wines"),
              ("Wein", "Weine und Sekt", "Qualitätsweine"), ("11.02",)),
        ),
    ),
    "14": Sector(
        1.2, ("14.13", "14.19", "14.14"), "fashion label", "Modelabel", ("Mode", "Textil", "Atelier"),
        ("Fashion", "Apparel"),
        (
            C(("fashion", "apparel", "clothing collections"),
              ("Mode", "Bekleidung", "Kollektionen"), ("14.13", "14.19")),
            C(("sustainable textiles", "eco-friendly clothing", "recycled fabrics"),
              ("nachhaltige Textilien", "Öko-Mode", "recycelte Stoffe"), ("14.19", "14.14")),
        ),
    ),
    "20": Sector(
        1.0, ("20.42", "20.59", "20.30"), "chemicals and cosmetics manufacturer",
        "Chemie- und Kosmetikhersteller", ("Chemie", "Kosmetik", "Naturkosmetik"), ("Chemicals", "Cosmetics"),
        (
            C(("natural cosmetics", "skincare products", "cosmetics"),
              ("Naturkosmetik", "Hautpflegeprodukte", "Kosmetik"), ("20.42",)),
            C(("specialty chemicals", "coatings", "industrial chemicals"),
              ("Spezialchemikalien", "Beschichtungen", "Industriechemikalien"), ("20.59", "20.30")),
        ),
    ),
    "21": Sector(
        1.2, ("21.20", "21.10"), "pharmaceutical company", "Pharmaunternehmen", ("Pharma", "Arzneimittel"),
        ("Pharma", "Pharmaceuticals", "Life Sciences"),
        (
            C(("pharmaceuticals", "generic drugs", "medicines"),
              ("Arzneimittel", "Generika", "Medikamente"), ("21.20",)),
            C(("diagnostic reagents", "in-vitro diagnostics", "lab reagents"),
              ("Diagnostika", "In-vitro-Diagnostik", "Laborreagenzien"), ("21.20",)),
            C(("active pharmaceutical ingredients", "APIs", "pharmaceutical raw materials"),
              ("pharmazeutische Wirkstoffe", "Wirkstoffe", "pharmazeutische Rohstoffe"), ("21.10",)),
        ),
    ),
    "22": Sector(
        0.8, ("22.22", "22.29", "22.19"), "plastics processor", "Kunststoffverarbeiter",
        ("Kunststofftechnik", "Verpackung"), ("Packaging", "Plastics"),
        (
            C(("packaging solutions", "plastic packaging", "sustainable packaging"),
              ("Verpackungslösungen", "Kunststoffverpackungen", "nachhaltige Verpackungen"), ("22.22",)),
            C(("injection-moulded parts", "plastic components", "technical plastics"),
              ("Spritzgussteile", "Kunststoffteile", "technische Kunststoffe"), ("22.29", "22.19")),
        ),
    ),
    "25": Sector(
        1.3, ("25.62", "25.11", "25.73", "25.99"), "metalworking company", "Metallbauunternehmen",
        ("Metallbau", "Präzisionstechnik", "Stahlbau"), ("Metal Works", "Steel"),
        (
            C(("precision machining", "CNC machining", "metal components"),
              ("Präzisionsbearbeitung", "CNC-Fertigung", "Metallbauteile"), ("25.62", "25.99")),
            C(("steel structures", "metal constructions", "steel frameworks"),
              ("Stahlbau", "Metallkonstruktionen", "Stahltragwerke"), ("25.11",)),
            C(("tools", "precision tools", "cutting tools"),
              ("Werkzeuge", "Präzisionswerkzeuge", "Schneidwerkzeuge"), ("25.73",)),
        ),
    ),
    "26": Sector(
        2.2, ("26.51", "26.60", "26.70", "26.11", "26.30", "26.20"), "electronics manufacturer",
        "Elektronikhersteller", ("Elektronik", "Messtechnik", "Optik", "Sensorik"),
        ("Electronics", "Instruments", "Technologies"),
        (
            C(("sensors and measurement technology", "measuring instruments", "sensor systems"),
              ("Sensorik und Messtechnik", "Messgeräte", "Sensorsysteme"), ("26.51",)),
            C(("photonics", "optical systems", "laser technology"),
              ("Photonik", "optische Systeme", "Lasertechnik"), ("26.70",)),
            C(("medical imaging devices", "electromedical equipment", "patient monitoring systems"),
              ("medizinische Bildgebung", "elektromedizinische Geräte", "Patientenmonitoring"), ("26.60",)),
            C(("IoT devices", "embedded electronics", "connected hardware"),
              ("IoT-Geräte", "Embedded-Elektronik", "vernetzte Hardware"), ("26.11", "26.30")),
            C(("industrial computers", "computer hardware", "rugged tablets"),
              ("Industrie-PCs", "Computerhardware", "robuste Tablets"), ("26.20",)),
        ),
    ),
    "27": Sector(
        1.3, ("27.12", "27.20", "27.11", "27.90"), "electrical equipment manufacturer",
        "Hersteller elektrischer Ausrüstung", ("Elektrotechnik", "Energietechnik", "Batterietechnik"),
        ("Electric", "Power Systems"),
        (
            C(("battery storage systems", "energy storage", "battery technology"),
              ("Batteriespeicher", "Energiespeicher", "Batterietechnik"), ("27.20",)),
            C(("power electronics", "switchgear", "grid components"),
              ("Leistungselektronik", "Schaltanlagen", "Netzkomponenten"), ("27.12", "27.11")),
            C(("EV charging stations", "charging infrastructure", "e-mobility charging"),
              ("Ladesäulen", "Ladeinfrastruktur", "E-Mobilitäts-Ladetechnik"), ("27.90",)),
        ),
    ),
    "28": Sector(
        1.8, ("28.29", "28.99", "28.25", "28.11", "28.41", "28.93"), "machine builder",
        "Maschinenbauunternehmen", ("Maschinenbau", "Anlagenbau", "Automation"),
        ("Machinery", "Industrial", "Engineering Works"),
        (
            C(("industrial automation", "robotics", "automated production lines"),
              ("Industrieautomation", "Robotik", "automatisierte Fertigungslinien"),
              ("28.29", "28.99", "28.41")),
            C(("HVAC equipment", "heat pumps", "ventilation systems"),
              ("Klimatechnik", "Wärmepumpen", "Lüftungsanlagen"), ("28.25",)),
            C(("food processing machinery", "packaging machines", "bottling lines"),
              ("Lebensmittelmaschinen", "Verpackungsmaschinen", "Abfüllanlagen"), ("28.93",)),
            C(("turbines and engines", "wind turbine components", "power generation equipment"),
              ("Turbinen und Motoren", "Windkraftkomponenten", "Kraftwerkstechnik"), ("28.11",)),
        ),
    ),
    "29": Sector(
        0.8, ("29.32", "29.10", "29.31"), "automotive supplier", "Automobilzulieferer",
        ("Fahrzeugtechnik", "Automotive"), ("Motors", "Automotive"),
        (
            C(("automotive parts", "vehicle components", "car parts"),
              ("Kfz-Teile", "Fahrzeugkomponenten", "Autoteile"), ("29.32", "29.31")),
            C(("electric vehicles", "e-mobility solutions", "electric buses"),
              ("Elektrofahrzeuge", "E-Mobilität", "Elektrobusse"), ("29.10",)),
        ),
    ),
    "30": Sector(
        0.7, ("30.20", "30.30", "30.92"), "transport equipment manufacturer", "Fahrzeugbauer",
        ("Bahntechnik", "Raumfahrttechnik", "Fahrradbau"), ("Rail", "Aerospace", "Mobility"),
        (
            C(("rail vehicles", "rolling stock", "railway technology"),
              ("Schienenfahrzeuge", "Rollmaterial", "Bahntechnik"), ("30.20",)),
            C(("aerospace components", "satellite technology", "aviation parts"),
              ("Luft- und Raumfahrtkomponenten", "Satellitentechnik", "Luftfahrtteile"), ("30.30",)),
            C(("bicycles and e-bikes", "cargo bikes", "e-bikes"),
              ("Fahrräder und E-Bikes", "Lastenräder", "E-Bikes"), ("30.92",)),
        ),
    ),
    "32": Sector(
        1.4, ("32.50", "32.40", "32.12", "32.30"), "manufacturer", "Hersteller",
        ("Medizintechnik", "Manufaktur", "Spielwaren"), ("Products", "Manufacturing"),
        (
            C(("medical instruments", "surgical instruments", "medical devices"),
              ("medizinische Instrumente", "chirurgische Instrumente", "Medizinprodukte"), ("32.50",)),
            C(("dental products", "dental implants", "orthodontic supplies"),
              ("Dentalprodukte", "Zahnimplantate", "Kieferorthopädie-Bedarf"), ("32.50",)),
            C(("toys and games", "educational toys", "board games"),
              ("Spielwaren", "Lernspielzeug", "Brettspiele"), ("32.40",)),
            C(("jewellery", "designer jewellery", "watches and accessories"),
              ("Schmuck", "Designerschmuck", "Uhren und Accessoires"), ("32.12",)),
            C(("sports equipment", "fitness equipment", "outdoor gear"),
              ("Sportgeräte", "Fitnessgeräte", "Outdoor-Ausrüstung"), ("32.30",)),
        ),
    ),
    "33": Sector(
        0.6, ("33.12", "33.20", "33.14"), "industrial service provider", "Industriedienstleister",
        ("Industrieservice", "Anlagenservice"), ("Services", "Technical Services"),
        (
            C(("maintenance and repair services", "industrial servicing", "plant maintenance"),
              ("Wartung und Instandhaltung", "Industrieservice", "Anlageninstandhaltung"),
              ("33.12", "33.14")),
            C(("installation of industrial machinery", "plant installation", "machine assembly"),
              ("Montage von Industriemaschinen", "Anlagenmontage", "Maschinenmontage"), ("33.20",)),
        ),
    ),
    "35": Sector(
        1.3, ("35.11", "35.14", "35.30", "35.13"), "energy company", "Energieunternehmen",
        ("Energie", "Solar", "Wind", "Energiesysteme"), ("Energy", "Power", "Renewables", "Utilities"),
        (
            C(("solar power", "photovoltaic systems", "solar parks"),
              ("Solarenergie", "Photovoltaikanlagen", "Solarparks"), ("35.11",)),
            C(("wind energy", "wind farms", "onshore wind projects"),
              ("Windenergie", "Windparks", "Windkraftprojekte"), ("35.11",)),
            C(("district heating", "combined heat and power", "heat networks"),
              ("Fernwärme", "Kraft-Wärme-Kopplung", "Wärmenetze"), ("35.30",)),
            C(("energy trading", "power purchase agreements", "green electricity supply"),
              ("Energiehandel", "Stromlieferverträge", "Ökostromversorgung"), ("35.14",)),
            C(("smart grids", "power distribution", "grid operation"),
              ("intelligente Stromnetze", "Stromverteilung", "Netzbetrieb"), ("35.13",)),
        ),
    ),
    "36": Sector(
        0.3, ("36.00",), "water technology company", "Wassertechnikunternehmen", ("Wassertechnik", "Aqua"),
        ("Water", "Aqua", "Utilities"),
        (
            C(("water treatment", "drinking water supply", "water purification"),
              ("Wasseraufbereitung", "Trinkwasserversorgung", "Wasserreinigung")),
        ),
    ),
    "37": Sector(
        0.3, ("37.00",), "wastewater specialist", "Abwasserspezialist", ("Umwelttechnik", "Abwassertechnik"),
        ("Water Services", "Environmental"),
        (
            C(("wastewater treatment", "sewage systems", "effluent treatment"),
              ("Abwasserbehandlung", "Kanalisationssysteme", "Klärtechnik")),
        ),
    ),
    "38": Sector(
        0.6, ("38.32", "38.21", "38.11"), "recycling company", "Recyclingunternehmen",
        ("Recycling", "Entsorgung", "Umweltservice"),
        ("Recycling", "Environmental Services", "Waste Management"),
        (
            C(("recycling", "circular economy solutions", "material recovery"),
              ("Recycling", "Kreislaufwirtschaft", "Wertstoffrückgewinnung"), ("38.32", "38.21")),
            C(("waste management", "waste collection", "municipal waste services"),
              ("Abfallwirtschaft", "Abfallsammlung", "kommunale Entsorgung"), ("38.11",)),
        ),
    ),
    "41": Sector(
        0.9, ("41.20", "41.10"), "construction company", "Bauunternehmen", ("Bau", "Projektbau", "Wohnbau"),
        ("Developments", "Construction", "Real Estate"),
        (
            C(("building construction", "residential construction", "turnkey buildings"),
              ("Hochbau", "Wohnungsbau", "schlüsselfertiges Bauen"), ("41.20",)),
            C(("real estate development", "property development", "urban development projects"),
              ("Projektentwicklung", "Immobilienentwicklung", "Stadtentwicklungsprojekte"), ("41.10",)),
        ),
    ),
    "42": Sector(
        0.6, ("42.11", "42.12", "42.22", "42.21", "42.91"), "civil engineering contractor",
        "Tiefbauunternehmen", ("Tiefbau", "Infrastrukturbau", "Gleisbau"), ("Infrastructure", "Civil Works"),
        (
            C(("infrastructure construction", "roads and bridges", "civil works"),
              ("Infrastrukturbau", "Straßen- und Brückenbau", "Tiefbau"), ("42.11", "42.91")),
            C(("railway construction", "track works", "tram infrastructure"),
              ("Gleisbau", "Bahnbau", "Straßenbahninfrastruktur"), ("42.12",)),
            C(("utility networks", "pipelines and cables", "grid construction"),
              ("Versorgungsnetze", "Leitungsbau", "Netzausbau"), ("42.21", "42.22")),
        ),
    ),
    "43": Sector(
        1.1, ("43.21", "43.22", "43.29", "43.99"), "building services contractor",
        "Gebäudetechnikunternehmen", ("Haustechnik", "Elektrotechnik", "Gebäudetechnik"),
        ("Building Services", "Installations"),
        (
            C(("electrical installation", "building electrics", "smart building installation"),
              ("Elektroinstallation", "Gebäudeelektrik", "Smart-Building-Installation"), ("43.21",)),
            C(("heating and plumbing installation", "building services", "HVAC installation"),
              ("Heizungs- und Sanitärinstallation", "Gebäudetechnik", "Klimainstallation"), ("43.22",)),
            C(("interior fit-out", "facade systems", "insulation works"),
              ("Innenausbau", "Fassadensysteme", "Dämmarbeiten"), ("43.29", "43.99")),
        ),
    ),
    "46": Sector(
        1.3, ("46.90", "46.39", "46.46", "46.51", "46.69", "46.42"), "trading company", "Handelsunternehmen",
        ("Handel", "Import-Export", "Handelshaus"), ("Trading", "Distribution", "Import"),
        (
            C(("import and export trading", "wholesale distribution", "sourcing services"),
              ("Import und Export", "Großhandel", "Beschaffungsdienstleistungen"), ("46.90",)),
            C(("food wholesale", "food distribution", "delicatessen wholesale"),
              ("Lebensmittelgroßhandel", "Lebensmittelvertrieb", "Feinkostgroßhandel"), ("46.39",)),
            C(("medical supplies wholesale", "pharmaceutical distribution", "hospital supplies"),
              ("Medizinbedarf-Großhandel", "Pharmagroßhandel", "Klinikbedarf"), ("46.46",)),
            C(("IT hardware distribution", "electronics wholesale", "computer equipment supply"),
              ("IT-Distribution", "Elektronikgroßhandel", "Computerzubehör"), ("46.51",)),
            C(("machinery trading", "industrial equipment supply", "spare parts distribution"),
              ("Maschinenhandel", "Industriebedarf", "Ersatzteilvertrieb"), ("46.69",)),
        ),
    ),
    "47": Sector(
        0.8, ("47.91", "47.71", "47.19"), "retailer", "Händler", ("Onlinehandel", "Store", "Versand"),
        ("Retail", "Stores", "Commerce"),
        (
            C(("e-commerce", "online retail", "online shop"),
              ("E-Commerce", "Onlinehandel", "Onlineshop"), ("47.91",)),
            C(("fashion retail", "concept stores", "clothing stores"),
              ("Modehandel", "Concept Stores", "Bekleidungsgeschäfte"), ("47.71", "47.19")),
        ),
    ),
    "49": Sector(
        0.6, ("49.41", "49.31", "49.39"), "transport company", "Transportunternehmen",
        ("Transporte", "Spedition", "Verkehrsbetrieb"), ("Transport", "Transit", "Freight"),
        (
            C(("road freight", "trucking services", "freight transport"),
              ("Straßengüterverkehr", "Speditionsleistungen", "Gütertransport"), ("49.41",)),
            C(("public transport services", "urban mobility", "bus operations"),
              ("ÖPNV-Leistungen", "urbane Mobilität", "Busverkehr"), ("49.31", "49.39")),
        ),
    ),
    "52": Sector(
        0.8, ("52.10", "52.29", "52.24"), "logistics provider", "Logistikdienstleister",
        ("Logistik", "Lagerlogistik"), ("Logistics", "Supply Chain"),
        (
            C(("logistics services", "warehousing", "supply chain management"),
              ("Logistikdienstleistungen", "Lagerhaltung", "Lieferkettenmanagement"), ("52.10", "52.29")),
            C(("cargo handling", "port logistics", "freight forwarding"),
              ("Frachtumschlag", "Hafenlogistik", "Frachtvermittlung"), ("52.24", "52.29")),
        ),
    ),
    "55": Sector(
        0.5, ("55.10", "55.20"), "hospitality company", "Hotelbetrieb", ("Hotel", "Hospitality"),
        ("Hotels", "Hospitality", "Resorts"),
        (
            C(("hotels", "hospitality services", "serviced apartments"),
              ("Hotellerie", "Gastgewerbe", "Serviced Apartments")),
        ),
    ),
    "58": Sector(
        0.9, ("58.29", "58.21", "58.11", "58.14"), "publisher", "Verlag", ("Verlag", "Games", "Medien"),
        ("Publishing", "Media"),
        (
            C(("video games", "game development", "mobile games"),
              ("Videospiele", "Spieleentwicklung", "Mobile Games"), ("58.21",)),
            C(("publishing", "books and magazines", "digital publishing"),
              ("Verlagswesen", "Bücher und Zeitschriften", "digitales Publizieren"), ("58.11", "58.14")),
            C(("software products", "SaaS", "licensed software"),
              ("Softwareprodukte", "SaaS", "Lizenzsoftware"), ("58.29",)),
        ),
    ),
    "59": Sector(
        1.1, ("59.11", "59.12", "59.20"), "media production company", "Medienproduktionsunternehmen",
        ("Film", "Studios", "Produktion"), ("Studios", "Films", "Media"),
        (
            C(("film production", "video production", "documentaries"),
              ("Filmproduktion", "Videoproduktion", "Dokumentarfilme"), ("59.11",)),
            C(("post-production", "visual effects", "animation"),
              ("Postproduktion", "visuelle Effekte", "Animation"), ("59.12",)),
            C(("music production", "sound recording", "audio production"),
              ("Musikproduktion", "Tonaufnahmen", "Audioproduktion"), ("59.20",)),
        ),
    ),
    "61": Sector(
        0.4, ("61.20", "61.10", "61.90"), "telecommunications provider", "Telekommunikationsanbieter",
        ("Telekom", "Netzwerke"), ("Telecom", "Networks"),
        (
            C(("telecommunications", "5G networks", "network services"),
              ("Telekommunikation", "5G-Netze", "Netzdienstleistungen"), ("61.10", "61.20")),
            C(("satellite communications", "IoT connectivity", "private networks"),
              ("Satellitenkommunikation", "IoT-Konnektivität", "Campusnetze"), ("61.90",)),
        ),
    ),
    "62": Sector(
        7.0, ("62.01", "62.02", "62.09", "62.03"), "software company", "Softwareunternehmen",
        ("Software", "IT-Systeme", "Digital", "Informatik"), ("Tech", "Digital", "Software"),
        (
            C(("software development", "custom software", "digital solutions"),
              ("Softwareentwicklung", "Individualsoftware", "digitale Lösungen"), ("62.01",)),
            C(("IT services", "IT consulting", "managed IT services"),
              ("IT-Dienstleistungen", "IT-Beratung", "IT-Betreuung"), ("62.02", "62.03")),
            C(("cybersecurity", "IT security", "information security"),
              ("Cybersicherheit", "IT-Sicherheit", "Informationssicherheit"), ("62.02", "62.09")),
            C(("artificial intelligence", "machine learning", "AI solutions"),
              ("künstliche Intelligenz", "maschinelles Lernen", "KI-Lösungen"), ("62.01",)),
            C(("digital health software", "hospital information systems", "e-health applications"),
              ("Digital-Health-Software", "Krankenhausinformationssysteme", "E-Health-Anwendungen"),
              ("62.01",)),
            C(("fintech solutions", "payment software", "banking software"),
              ("Fintech-Lösungen", "Zahlungssoftware", "Banksoftware"), ("62.01",)),
            C(("e-government solutions", "smart city platforms", "public sector software"),
              ("E-Government-Lösungen", "Smart-City-Plattformen", "Verwaltungssoftware"), ("62.01", "62.02")),
        ),
    ),
    "63": Sector(
        1.8, ("63.11", "63.12", "63.99"), "data and platform company", "Daten- und Plattformunternehmen",
        ("Data", "Cloud", "Plattform"), ("Data", "Cloud", "Online"),
        (
            C(("cloud hosting", "data centre services", "cloud infrastructure"),
              ("Cloud-Hosting", "Rechenzentrumsdienste", "Cloud-Infrastruktur"), ("63.11",)),
            C(("data analytics", "big data", "business intelligence"),
              ("Datenanalyse", "Big Data", "Business Intelligence"), ("63.11", "63.99")),
            C(("online platforms", "marketplaces", "web portals"),
              ("Online-Plattformen", "Marktplätze", "Webportale"), ("63.12",)),
        ),
    ),
    "70": Sector(
        2.2, ("70.22", "70.21"), "consultancy", "Beratungsunternehmen", ("Consulting", "Beratung", "Partner"),
        ("Consulting", "Advisory", "Partners"),
        (
            C(("management consulting", "business consulting", "strategy advice"),
              ("Unternehmensberatung", "Managementberatung", "Strategieberatung"), ("70.22",)),
            C(("market entry services", "internationalisation consulting", "export consulting"),
              ("Markteintrittsberatung", "Internationalisierungsberatung", "Exportberatung"), ("70.22",)),
            C(("public relations", "corporate communications", "media relations"),
              ("Öffentlichkeitsarbeit", "Unternehmenskommunikation", "Pressearbeit"), ("70.21",)),
        ),
    ),
    "71": Sector(
        2.2, ("71.12", "71.11", "71.20"), "engineering and architecture firm",
        "Ingenieur- und Architekturbüro", ("Ingenieure", "Architekten", "Planung"),
        ("Engineering", "Architects", "Design Group"),
        (
            C(("architecture", "architectural design", "urban planning"),
              ("Architektur", "Architekturplanung", "Stadtplanung"), ("71.11",)),
            C(("engineering services", "technical planning", "project engineering"),
              ("Ingenieurdienstleistungen", "technische Planung", "Projektierung"), ("71.12",)),
            C(("testing and certification", "technical inspection", "quality testing"),
              ("Prüfung und Zertifizierung", "technische Prüfung", "Qualitätsprüfung"), ("71.20",)),
        ),
    ),
    "72": Sector(
        1.8, ("72.19", "72.11", "72.20"), "research company", "Forschungsunternehmen",
        ("Biotech", "Forschung", "Labs"), ("Research", "Institute", "Labs"),
        (
            C(("biotechnology", "life sciences research", "biotech R&D"),
              ("Biotechnologie", "Life-Sciences-Forschung", "biotechnologische Forschung"), ("72.11",)),
            C(("applied research", "R&D services", "technology development"),
              ("angewandte Forschung", "F&E-Dienstleistungen", "Technologieentwicklung"), ("72.19",)),
            C(("clinical research", "clinical trials", "contract research"),
              ("klinische Forschung", "klinische Studien", "Auftragsforschung"), ("72.19",)),
            C(("social science research", "policy studies", "evaluation studies"),
              ("sozialwissenschaftliche Forschung", "Politikberatung", "Evaluationsstudien"), ("72.20",)),
        ),
    ),
    "73": Sector(
        1.4, ("73.11", "73.12", "73.20"), "marketing agency", "Marketingagentur",
        ("Agentur", "Kommunikation", "Media"), ("Marketing", "Media", "Communications"),
        (
            C(("digital marketing", "advertising", "brand communication"),
              ("digitales Marketing", "Werbung", "Markenkommunikation"), ("73.11", "73.12")),
            C(("market research", "consumer insights", "opinion polling"),
              ("Marktforschung", "Verbraucherforschung", "Meinungsforschung"), ("73.20",)),
        ),
    ),
    "74": Sector(
        0.9, ("74.10",), "design studio", "Designstudio", ("Design", "Studio"), ("Design", "Studio"),
        (
            C(("industrial design", "product design", "UX design"),
              ("Industriedesign", "Produktdesign", "UX-Design")),
        ),
    ),
    "82": Sector(
        0.5, ("82.30", "82.99"), "event agency", "Eventagentur", ("Events", "Messebau"),
        ("Events", "Exhibitions"),
        (
            C(("event management", "trade show services", "conference organisation"),
              ("Eventmanagement", "Messedienstleistungen", "Konferenzorganisation"), ("82.30",)),
            C(("business support services", "call centre services", "back-office services"),
              ("Unternehmensdienstleistungen", "Callcenter-Dienstleistungen", "Backoffice-Services"),
              ("82.99",)),
        ),
    ),
    "85": Sector(
        0.7, ("85.59", "85.60", "85.42"), "education provider", "Bildungsanbieter",
        ("Akademie", "Bildung", "Campus"), ("Academy", "Education", "University"),
        (
            C(("vocational training", "professional training", "corporate education"),
              ("Berufsausbildung", "Weiterbildung", "Unternehmensschulungen"), ("85.59",)),
            C(("e-learning", "edtech", "online courses"),
              ("E-Learning", "Bildungstechnologie", "Onlinekurse"), ("85.59", "85.60")),
            C(("higher education", "university programmes", "academic training"),
              ("Hochschulbildung", "Studienprogramme", "akademische Ausbildung"), ("85.42",)),
        ),
    ),
    "86": Sector(
        0.6, ("86.10", "86.90", "86.21", "86.22"), "healthcare provider", "Gesundheitsdienstleister",
        ("Klinik", "Gesundheit", "Praxis"), ("Hospital Group", "Medical Centre", "Health Network"),
        (
            C(("healthcare services", "clinical services", "hospital management"),
              ("Gesundheitsdienstleistungen", "klinische Versorgung", "Krankenhausmanagement"), ("86.10",)),
            C(("telemedicine", "remote care", "telehealth services"),
              ("Telemedizin", "Fernbehandlung", "Telehealth-Dienste"), ("86.90", "86.21")),
            C(("outpatient care", "medical practices", "dental care"),
              ("ambulante Versorgung", "Arztpraxen", "Zahnmedizin"), ("86.21", "86.22")),
        ),
    ),
    "90": Sector(
        0.4, ("90.01", "90.03", "90.02"), "arts company", "Kulturunternehmen", ("Kultur", "Kunst", "Bühne"),
        ("Arts", "Culture"),
        (
            C(("performing arts", "cultural events", "art productions"),
              ("darstellende Kunst", "Kulturveranstaltungen", "Kunstproduktionen")),
        ),
    ),
    "84": Sector(
        0.0, ("84.11", "84.12", "84.13"), "public administration", "Verwaltung", (),
        ("Municipal Services", "Public Services"),
        (),
    ),
}
del C

# Lead sector (division or group) -> company divisions it wants, with strength.
AFFINITY: dict[str, dict[str, float]] = {
    "86": {"32": 1.0, "26": 0.9, "62": 0.7, "21": 0.6, "72": 0.4, "46": 0.3, "86": 0.4, "71": 0.2, "43": 0.2},
    "84": {"62": 0.9, "63": 0.7, "71": 0.6, "70": 0.5, "42": 0.4, "35": 0.3, "85": 0.3},
    "41": {"71": 1.0, "43": 0.9, "41": 0.6, "25": 0.4, "28": 0.3, "22": 0.2, "27": 0.2},
    "42": {"71": 1.0, "43": 0.7, "42": 0.7, "25": 0.5, "30": 0.3, "27": 0.3},
    "35": {"27": 1.0, "35": 0.9, "28": 0.8, "71": 0.5, "43": 0.5, "62": 0.3, "26": 0.3},
    "36": {"28": 0.8, "71": 0.8, "36": 0.8, "37": 0.7, "26": 0.5, "42": 0.4},
    "37": {"37": 0.9, "28": 0.8, "71": 0.8, "36": 0.6, "42": 0.4},
    "38": {"38": 0.8, "28": 0.8, "71": 0.5, "22": 0.4, "62": 0.2},
    "46.3": {"10": 1.0, "11": 1.0, "46": 0.3},
    "46.4": {"14": 0.8, "20": 0.8, "21": 0.8, "32": 0.8, "46": 0.3},
    "46.5": {"26": 1.0, "62": 0.6, "61": 0.4, "46": 0.3},
    "46.6": {"28": 1.0, "27": 0.8, "25": 0.6, "29": 0.4, "46": 0.3},
    "47": {"10": 0.7, "11": 0.6, "14": 0.8, "32": 0.6, "20": 0.6, "47": 0.4, "63": 0.3, "73": 0.3},
    "10": {"28": 0.9, "22": 0.7, "10": 0.7, "11": 0.3, "72": 0.3, "62": 0.2},
    "11": {"28": 0.9, "22": 0.6, "11": 0.7, "10": 0.3},
    "21": {"72": 0.9, "21": 0.8, "26": 0.4, "46": 0.4, "62": 0.2},
    "26": {"26": 0.9, "62": 0.5, "72": 0.4, "25": 0.4, "22": 0.3},
    "27": {"27": 0.9, "25": 0.5, "26": 0.5, "28": 0.4, "62": 0.3},
    "28": {"28": 0.9, "25": 0.6, "27": 0.5, "62": 0.4, "33": 0.4, "26": 0.3},
    "29": {"29": 0.9, "22": 0.6, "25": 0.6, "27": 0.6, "26": 0.5, "62": 0.4, "72": 0.3},
    "30": {"30": 0.9, "27": 0.6, "25": 0.5, "62": 0.4, "71": 0.4, "26": 0.3},
    "49": {"62": 0.7, "29": 0.7, "52": 0.6, "49": 0.5, "30": 0.5, "27": 0.4},
    "52": {"52": 0.7, "62": 0.7, "28": 0.6, "49": 0.5, "63": 0.4},
    "55": {"10": 0.6, "11": 0.6, "62": 0.5, "73": 0.5, "74": 0.4, "43": 0.3},
    "61": {"26": 0.9, "62": 0.7, "63": 0.7, "61": 0.6, "42": 0.3},
    "62": {"62": 1.0, "63": 0.8, "70": 0.4, "73": 0.3, "74": 0.3},
    "63": {"63": 0.9, "62": 0.9, "73": 0.3},
    "71": {"71": 0.9, "43": 0.5, "41": 0.3, "62": 0.3},
    "72": {"72": 1.0, "21": 0.7, "26": 0.6, "86": 0.4, "62": 0.4, "85": 0.3},
    "85": {"85": 0.8, "62": 0.7, "58": 0.6, "63": 0.4, "59": 0.3},
    "58": {"58": 0.9, "62": 0.6, "59": 0.4, "74": 0.3},
    "59": {"59": 1.0, "90": 0.5, "73": 0.5, "58": 0.4, "74": 0.3},
    "73": {"73": 0.9, "63": 0.5, "59": 0.5, "74": 0.5},
    "70": {"70": 0.8, "62": 0.5, "73": 0.4},
    "90": {"90": 0.9, "59": 0.6, "82": 0.6, "74": 0.4},
}

LEAD_KEYS: tuple[tuple[tuple[str, float], ...], ...] = (
    # buyer
    (("86", 3), ("10", 1.5), ("29", 1.5), ("55", 1.5), ("47", 1.5), ("41", 1.5), ("35", 1.5), ("62", 1.5),
     ("61", 1), ("28", 1), ("30", 1), ("21", 1), ("49", 1), ("52", 1), ("26", 1), ("11", 0.5), ("72", 0.5)),
    # distributor
    (("46.3", 3), ("46.4", 3), ("46.5", 2), ("46.6", 2), ("47", 2)),
    # investor: the sectors it invests in
    (("62", 3), ("63", 2), ("72", 2), ("35", 2), ("21", 1), ("26", 1), ("29", 1), ("10", 1), ("27", 1),
     ("86", 1), ("58", 0.5), ("85", 0.5)),
    # research_partner
    (("72", 4), ("21", 2), ("86", 2), ("26", 1.5), ("35", 1), ("29", 1), ("62", 1), ("85", 1)),
    # tender
    (("84", 3), ("42", 3), ("41", 2), ("86", 2), ("35", 1.5), ("49", 1.5), ("36", 1), ("37", 1), ("38", 1),
     ("85", 1), ("61", 0.5)),
    # joint_venture
    (("28", 2), ("27", 1.5), ("26", 1.5), ("62", 1.5), ("10", 1), ("29", 1), ("35", 1), ("71", 1),
     ("21", 0.5), ("59", 0.5), ("30", 0.5)),
)
LEAD_KIND_SHARE = (0.27, 0.19, 0.12, 0.12, 0.19, 0.11)
# How often a lead kind lists a wanted code besides its own sector.
EXTRA_CODE_PROB = (0.3, 0.5, 0.4, 0.25, 0.3, 0.3)

TENDER_PROJECTS: dict[str, tuple[str, ...]] = {
    "84": (
        "the digitalisation of municipal services", "a smart city programme",
        "the modernisation of the city administration",
    ),
    "42": ("a new tram line", "road and bridge rehabilitation", "a flood protection scheme"),
    "41": ("a new public school building", "a social housing programme", "a new exhibition centre"),
    "86": ("a new hospital wing", "the modernisation of public hospitals", "regional health centres"),
    "36": ("the municipal water network", "a new water treatment plant"),
    "37": ("the municipal sewage network", "a new wastewater treatment plant"),
    "38": ("municipal waste management", "a new recycling centre"),
    "35": ("the municipal energy transition", "retrofitting public buildings", "a district heating upgrade"),
    "49": ("the public bus fleet", "urban mobility services"),
    "85": ("public schools", "vocational training centres"),
    "61": ("city-wide broadband", "public Wi-Fi"),
}

MISSION_THEMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Digital economy", ("62", "63", "58.29")),
    ("Health and medtech", ("86", "32.50", "26.60")),
    ("Energy transition", ("35", "27", "28.11")),
    ("Smart city and infrastructure", ("42", "71", "62")),
    ("Construction and building technology", ("41", "43", "71")),
    ("Food and beverages", ("10", "11", "28.93")),
    ("Mobility and logistics", ("29", "30.20", "52")),
    ("Creative industries", ("59", "73", "74.10")),
    ("Life sciences", ("72.11", "21", "86")),
    ("Industry 4.0", ("28", "26.51", "62")),
    ("Circular economy", ("38", "37", "22")),
    ("Fashion and design", ("14", "74.10", "47.91")),
)

# fmt: on


class CityFlavour(NamedTuple):
    weight: float
    """Share of leads and missions (and of company target-city picks)."""
    name_de: str
    words: tuple[str, ...]
    patterns: tuple[str, ...]
    """Organisation name patterns with {w} (a local word) and {n} (a sector noun)."""
    public_body: str
    phrase: str | None
    """A line in a local language, for leads with local flavour."""


# fmt: off
CITY_FLAVOURS: dict[str, CityFlavour] = {
    "los-angeles": CityFlavour(
        0.09, "Los Angeles",
        ("Pacific", "Sunset", "Golden State", "Harbor", "Valley", "Westside", "Mission", "Angeles"),
        ("{w} {n} Inc.", "{w} {n} LLC", "{w} {n} Corp."), "City of Los Angeles",
        "Buscamos socios de Alemania.",
    ),
    "paris": CityFlavour(
        0.09, "Paris",
        ("Lumière", "Rive Gauche", "Montparnasse", "Batignolles", "Dubois", "Lefèvre", "Moreau", "Bercy"),
        ("{w} {n} SAS", "Groupe {w} {n}", "{w} {n} SA"), "Ville de Paris",
        "Nous recherchons des partenaires allemands.",
    ),
    "madrid": CityFlavour(
        0.07, "Madrid",
        ("Castellana", "Retiro", "Salamanca", "García", "Fernández", "Iberia", "Manzanares", "Chamberí"),
        ("{w} {n} S.L.", "Grupo {w} {n}", "{w} {n} S.A."), "Ayuntamiento de Madrid",
        "Buscamos socios en Alemania.",
    ),
    "istanbul": CityFlavour(
        0.08, "Istanbul",
        ("Boğaziçi", "Anadolu", "Marmara", "Yılmaz", "Demir", "Galata", "Kadıköy", "Levent"),  # noqa: RUF001
        ("{w} {n} A.Ş.", "{w} {n} Ltd. Şti."), "İstanbul Büyükşehir Belediyesi",
        "Almanya'dan iş ortakları arıyoruz.",  # noqa: RUF001
    ),
    "warsaw": CityFlavour(
        0.09, "Warschau", ("Wisła", "Mazowsze", "Kowalski", "Nowak", "Praga", "Mokotów", "Wola", "Polonia"),
        ("{w} {n} Sp. z o.o.", "{w} {n} S.A."), "Urząd m.st. Warszawy", "Poszukujemy partnerów z Niemiec.",
    ),
    # Suspended: no leads or missions, only the odd company still lists it as a target.
    "moscow": CityFlavour(0.005, "Moskau", (), (), "", None),
    "brussels": CityFlavour(
        0.06, "Brüssel",
        ("Atomium", "Sablon", "Janssens", "Peeters", "Dupont", "Ixelles", "Schuman", "Flandria"),
        ("{w} {n} SA", "{w} {n} NV", "{w} {n} SRL"), "Région de Bruxelles-Capitale",
        "Wij zoeken Duitse partners.",
    ),
    "budapest": CityFlavour(
        0.05, "Budapest", ("Duna", "Pannon", "Nagy", "Kovács", "Buda", "Lánchíd", "Margit", "Tisza"),
        ("{w} {n} Kft.", "{w} {n} Zrt."), "Budapest Főváros Önkormányzata", "Német partnereket keresünk.",
    ),
    "tashkent": CityFlavour(
        0.03, "Taschkent",
        ("Turon", "Samarkand", "Chorsu", "Navruz", "Yunusobod", "Ipak Yoli", "Amir", "Registan"),
        ("{w} {n} LLC", "{w} {n} JSC"), "Toshkent shahar hokimligi", "Germaniyadan hamkorlar izlayapmiz.",
    ),
    "mexico-city": CityFlavour(
        0.05, "Mexiko-Stadt",
        ("Azteca", "Reforma", "Hernández", "López", "Coyoacán", "Polanco", "Anáhuac", "Insurgentes"),
        ("{w} {n} S.A. de C.V.", "Grupo {w} {n}"), "Gobierno de la Ciudad de México",
        "Buscamos socios alemanes.",
    ),
    "jakarta": CityFlavour(
        0.04, "Jakarta",
        ("Nusantara", "Merdeka", "Santoso", "Wijaya", "Garuda", "Sudirman", "Kemang", "Menteng"),
        ("PT {w} {n}", "PT {w} {n} Tbk"), "Pemerintah Provinsi DKI Jakarta",
        "Kami mencari mitra dari Jerman.",
    ),
    "beijing": CityFlavour(
        0.08, "Peking",
        ("Zhongguancun", "Huaxin", "Jingcheng", "Chang'an", "Haidian", "Zhonghe", "Tianhe", "Yanjing"),
        ("{w} {n} Co., Ltd.", "Beijing {w} {n} Co., Ltd."), "Beijing Municipal Government", "我们正在寻找德国合作伙伴",
    ),
    "tokyo": CityFlavour(
        0.07, "Tokio",
        ("Sakura", "Fuji", "Nihonbashi", "Tanaka", "Suzuki", "Shinagawa", "Marunouchi", "Asahi"),
        ("{w} {n} K.K.", "{w} {n} Co., Ltd."), "Tokyo Metropolitan Government", "ドイツのパートナー企業を探しています",
    ),
    "buenos-aires": CityFlavour(
        0.03, "Buenos Aires",
        ("Río de la Plata", "Palermo", "Recoleta", "González", "Rodríguez", "Pampa", "Belgrano", "Austral"),
        ("{w} {n} S.A.", "{w} {n} S.R.L."), "Gobierno de la Ciudad de Buenos Aires",
        "Buscamos socios en Alemania.",
    ),
    "prague": CityFlavour(
        0.06, "Prag", ("Vltava", "Bohemia", "Novák", "Svoboda", "Karlín", "Vyšehrad", "Moravia", "Letná"),
        ("{w} {n} s.r.o.", "{w} {n} a.s."), "Hlavní město Praha", "Hledáme partnery z Německa.",
    ),
    "windhoek": CityFlavour(
        0.02, "Windhoek", ("Namib", "Khomas", "Kalahari", "Etosha", "Shikongo", "Nangolo", "Erongo", "Auas"),
        ("{w} {n} (Pty) Ltd",), "City of Windhoek", "Ons soek vennote uit Duitsland.",
    ),
    "london": CityFlavour(
        0.1, "London",
        ("Thames", "Camden", "Whitechapel", "Smith", "Taylor", "Albion", "Canary", "Southbank"),
        ("{w} {n} Ltd", "{w} {n} plc", "{w} {n} LLP"), "Greater London Authority", None,
    ),
}

SURNAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger",
    "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Herrmann", "König", "Walter", "Kaiser",
    "Fuchs", "Peters", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Vogel", "Friedrich", "Keller", "Günther",
    "Berger", "Winkler", "Lorenz", "Baumann", "Albrecht", "Ludwig", "Böhm", "Winter", "Kraus", "Schumacher",
    "Vogt", "Stein", "Jäger", "Otto", "Sommer", "Seidel", "Brandt", "Haas", "Graf", "Dietrich", "Kuhn",
    "Engel", "Horn", "Busch", "Bergmann", "Voigt", "Arnold", "Pfeiffer", "Yılmaz", "Nowak", "Kaya", "Nguyen",  # noqa: RUF001
)
PLACES = (
    "Spree", "Havel", "Kiez", "Tempelhof", "Adlershof", "Kreuzberg", "Mitte", "Prenzlauer", "Wedding",
    "Neukölln", "Friedrichshain", "Charlottenburg", "Moabit", "Spandau", "Köpenick", "Pankow", "Treptow",
    "Siemensstadt", "Schöneweide", "Wannsee", "Müggelsee", "Brandenburger", "Alex", "Tiergarten",
)
COINED_HEADS = (
    "Nuvo", "Kiez", "Quanta", "Lumo", "Viva", "Flux", "Brix", "Zeno", "Velo", "Aero", "Nexo", "Solva",
    "Tekto", "Bio", "Cura", "Orbi", "Grün", "Klar", "Helio", "Mira",
)
COINED_TAILS = (
    "ly", "io", "ify", " Labs", " Tech", "nova", "sense", "works", "hub", "mind",
)
EXTRA_LANGUAGES = (
    "fr", "es", "it", "pl", "tr", "ru", "zh", "ar", "pt", "nl", "ja", "uk",
)
# fmt: on
WEEKDAY_WEIGHTS = np.array([0.21, 0.22, 0.21, 0.2, 0.14, 0.015, 0.005])

# Fit of company size (micro, small, medium, large), export experience and age
# (< 5, 5-15, > 15 years) to the lead kind, added to the latent utility.
FIT_SIZE = np.array(
    [
        [-0.2, 0.1, 0.3, 0.2],
        [-0.2, 0.2, 0.3, 0.0],
        [0.4, 0.2, -0.4, -1.0],
        [0.1, 0.2, 0.1, 0.0],
        [-0.9, -0.2, 0.4, 0.5],
        [-0.6, 0.0, 0.3, 0.4],
    ]
)
FIT_EXPORT = np.array(
    [
        [-0.1, 0.1, 0.2],
        [-0.4, 0.2, 0.4],
        [0.0, 0.0, -0.1],
        [0.0, 0.0, 0.0],
        [-0.3, 0.1, 0.3],
        [-0.3, 0.1, 0.3],
    ]
)
FIT_AGE = np.array(
    [
        [-0.1, 0.0, 0.1],
        [0.0, 0.0, 0.1],
        [0.6, 0.0, -0.6],
        [0.0, 0.0, 0.0],
        [-0.3, 0.0, 0.2],
        [-0.1, 0.0, 0.1],
    ]
)
SEEK_BONUS = 0.5

# Latent utility weights and the link to probabilities.
W_DIRECT, W_COMPLEMENT, W_TEXT, W_CITY, W_NO_TARGETS = 1.6, 1.4, 0.9, 0.7, 0.25
W_LOCAL_LANGUAGE, W_NO_LANGUAGE = 0.25, -0.6
PAIR_NOISE, LEAD_QUALITY, TASTE_SD, TASTE_RANK = 0.5, 0.35, 0.35, 8
AGE_PENALTY_PER_WEEK = 0.06
R_SLOPE, R_CENTRE = 1.5, 2.5

SESSION_RATE = 0.07
"""Sessions per company-week at activity 1 (times the company's own activity)."""
ORGANIC_RATE = 0.017
"""Organic discoveries per company-week at activity 1."""
ORGANIC_TEMPERATURE = 0.5
POSITION_EXPONENT = 0.75

GRID = 32.0
"""Pair-score inputs are rounded to multiples of 1/GRID so float32 sums are exact."""


# ---------------------------------------------------------------------------
# Tables derived once


class _Tables(NamedTuple):
    group_classes: dict[str, tuple[str, ...]]
    concepts: tuple[tuple[str, Concept], ...]
    """(division, concept) for every concept id."""
    concept_ids: dict[str, tuple[int, ...]]
    """Division -> its concept ids."""
    company_divisions: tuple[str, ...]
    company_division_weights: Array
    cities: tuple[PartnerCity, ...]
    lead_cities: tuple[int, ...]
    """Indices of active cities."""


@cache
def _tables() -> _Tables:
    entries = load_nace_rev2()
    codes = {e.code for e in entries if e.level in ("division", "group", "class")}
    group_classes: dict[str, list[str]] = {}
    for e in entries:
        if e.level == "class":
            group_classes.setdefault(e.code[:4], []).append(e.code)
    used: list[str] = []
    for div, sector in SECTORS.items():
        used += [div, *sector.classes]
        for concept in sector.concepts:
            used += concept.classes
            if not set(concept.classes) <= set(sector.classes):
                raise RuntimeError(f"concept classes of {div} not among its classes")
    for key, row in AFFINITY.items():
        used += [key, *row]
        if any(div not in SECTORS or not SECTORS[div].concepts for div in row):
            raise RuntimeError(f"affinity of {key} names a division without concepts")
    for keys in LEAD_KEYS:
        used += [key for key, _ in keys]
    for _, theme in MISSION_THEMES:
        used += theme
    unknown = sorted({code for code in used if code not in codes})
    if unknown:
        raise RuntimeError(f"codes missing from NACE Rev. 2: {unknown}")
    for keys in LEAD_KEYS:
        for key, _ in keys:
            if len(key) == 2 and key not in SECTORS:
                raise RuntimeError(f"lead sector {key} has no profile")
    concepts = tuple((div, c) for div, s in SECTORS.items() for c in s.concepts)
    concept_ids: dict[str, list[int]] = {}
    for i, (div, _) in enumerate(concepts):
        concept_ids.setdefault(div, []).append(i)
    divisions = tuple(d for d, s in SECTORS.items() if s.weight > 0)
    weights = np.array([SECTORS[d].weight for d in divisions])
    cities = BERLIN_PARTNER_CITIES
    if {c.id for c in cities} != set(CITY_FLAVOURS):
        raise RuntimeError("CITY_FLAVOURS does not match the partner city list")
    return _Tables(
        group_classes={g: tuple(cs) for g, cs in group_classes.items()},
        concepts=concepts,
        concept_ids={d: tuple(ids) for d, ids in concept_ids.items()},
        company_divisions=divisions,
        company_division_weights=weights / weights.sum(),
        cities=cities,
        lead_cities=tuple(i for i, c in enumerate(cities) if c.status == "active"),
    )


# ---------------------------------------------------------------------------
# Time


class _Clock:
    """Berlin wall-clock days and fast vectorised formatting of epoch seconds."""

    def __init__(self, first: date, days: int) -> None:
        self.first = first
        self.midnight = np.array(
            [
                int(datetime.combine(first + timedelta(days=i), datetime.min.time(), BERLIN).timestamp())
                for i in range(days + 1)
            ],
            dtype=np.int64,
        )
        # Europe/Berlin changes offset only on the hour, so an hourly table is exact.
        self.hour0 = int(self.midnight[0]) - DAY
        hours = (int(self.midnight[-1]) + DAY - self.hour0) // 3600 + 1
        offsets = [
            BERLIN.utcoffset(datetime.fromtimestamp(self.hour0 + 3600 * h, BERLIN)) for h in range(hours)
        ]
        self.offsets = np.array([o.total_seconds() if o else 0 for o in offsets], dtype=np.int64)

    def day_index(self, d: date) -> int:
        return (d - self.first).days

    def date_str(self, day: int) -> str:
        return (self.first + timedelta(days=day)).isoformat()

    def day_of(self, ts: Array) -> Array:
        return np.searchsorted(self.midnight, ts, side="right") - 1

    def format(self, ts: Array) -> list[str]:
        ts = np.asarray(ts, dtype=np.int64)
        if ts.size == 0:
            return []
        off = self.offsets[(ts - self.hour0) // 3600]
        local = np.datetime_as_string((ts + off).astype("datetime64[s]"), unit="s")
        out: list[str] = []
        suffixes = {int(o): _offset_str(int(o)) for o in np.unique(off)}
        for s, o in zip(local.tolist(), off.tolist(), strict=True):
            out.append(s + suffixes[o])
        return out


def _offset_str(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    h, m = divmod(abs(seconds) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


def _times_on_days(
    rng: np.random.Generator, clock: _Clock, days: Array, lo_hour: float, hi_hour: float
) -> Array:
    secs = rng.uniform(lo_hour * 3600, hi_hour * 3600, size=len(days)).astype(np.int64)
    return clock.midnight[days] + secs


def _year(ts: Array) -> Array:
    return 1970 + ts.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64)


def _weekdays(rng: np.random.Generator, n: int) -> Array:
    return rng.choice(7, size=n, p=WEEKDAY_WEIGHTS)


# ---------------------------------------------------------------------------
# Entities


@dataclass
class _Companies:
    ids: list[str]
    names: list[str]
    sectors: list[list[str]]
    concepts: list[list[int]]
    employees: Array
    founded: Array
    export: Array
    languages: list[list[str]]
    targets: list[list[int]]
    seeks: list[list[int]]
    descriptions: list[str]
    registered: Array
    activity: Array
    attention: Array
    size: Array = field(init=False)
    age_bucket: Array = field(init=False)

    def __post_init__(self) -> None:
        self.size = np.digitize(self.employees, [10, 50, 250])
        self.age_bucket = np.digitize(_year(self.registered) - self.founded, [5, 16])


@dataclass
class _Leads:
    ids: list[str]
    titles: list[str]
    kinds: Array
    organizations: list[str]
    cities: Array
    sectors: list[list[str]]
    wants: list[dict[str, float]]
    concepts: list[list[int]]
    descriptions: list[str]
    languages: list[list[str]]
    budgets: list[int | None]
    published: Array
    deadline_days: Array
    """Day index of the deadline, -1 for none."""
    quality: Array
    open_until: Array = field(init=False)
    """Epoch seconds when the lead closes (exclusive)."""


@dataclass
class _Missions:
    ids: list[str]
    titles: list[str]
    cities: list[int]
    sectors: list[list[str]]
    starts_on: list[int]
    ends_on: list[int]
    capacity: list[int]
    announced: Array


def _pick_code(
    rnd: random.Random, t: _Tables, key: str, concept: Concept | None, levels: tuple[float, float, float]
) -> str:
    """A code under ``key`` at class, group or division level (weights ``levels``)."""
    if len(key) == 4:
        cls = rnd.choice(t.group_classes[key])
        return cls if rnd.random() < levels[0] / (levels[0] + levels[1]) else key
    classes = concept.classes if concept and concept.classes else SECTORS[key].classes
    # The first listed class is the most typical one of the division.
    cls = classes[0] if len(classes) == 1 or rnd.random() < 0.4 else rnd.choice(classes)
    x = rnd.random()
    if x < levels[0]:
        return cls
    if x < levels[0] + levels[1]:
        return cls[:4]
    return key


def _add_code(codes: list[str], code: str) -> bool:
    if len(codes) >= 5 or any(c.startswith(code) or code.startswith(c) for c in codes):
        return False
    codes.append(code)
    return True


def _sample_without_replacement(rnd: random.Random, weights: list[float], k: int) -> list[int]:
    w = list(weights)
    picked: list[int] = []
    for _ in range(min(k, len(w))):
        i = rnd.choices(range(len(w)), weights=w)[0]
        picked.append(i)
        w[i] = 0.0
    return sorted(picked)


def _join(items: Sequence[str], and_word: str) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {and_word} " + items[-1]


def _weighted(rnd: random.Random, items: Sequence[tuple[str, float]]) -> str:
    return rnd.choices([k for k, _ in items], weights=[w for _, w in items])[0]


SEEK_EN = (
    "customers",
    "distribution partners",
    "investors",
    "research partners",
    "public contracts",
    "joint venture partners",
)
SEEK_DE = (
    "Kunden",
    "Vertriebspartner",
    "Investoren",
    "Forschungspartner",
    "öffentliche Aufträge",
    "Joint-Venture-Partner",
)


def _seek_weights(div: str, young: bool) -> list[float]:
    d = int(div)
    if 10 <= d <= 33:
        w = [3.0, 3.0, 0.5, 0.7, 0.5, 1.0]
    elif 41 <= d <= 43:
        w = [1.0, 0.2, 0.2, 0.2, 3.0, 1.0]
    elif d in (35, 36, 37, 38):
        w = [1.5, 0.3, 2.0, 0.5, 2.0, 2.0]
    elif d in (46, 47):
        w = [2.0, 3.0, 0.3, 0.1, 0.5, 0.5]
    elif d in (72, 21, 85):
        w = [1.0, 0.5, 2.0, 3.0, 0.5, 1.0]
    else:
        w = [2.5, 0.5, 1.0, 0.5, 1.5, 1.0]
    if young:
        w[INVESTOR] += 3.0
    return w


def _company_name(rnd: random.Random, div: str, employees: int, age: int) -> str:
    words = SECTORS[div].name_words
    if employees >= 250:
        form = rnd.choices(("AG", "SE", "GmbH"), weights=(0.35, 0.05, 0.6))[0]
    elif age < 4 and employees < 10 and rnd.random() < 0.3:
        form = "UG (haftungsbeschränkt)"
    else:
        form = rnd.choices(
            ("GmbH", "GmbH & Co. KG", "KG", "e.K.", "OHG"), weights=(0.8, 0.1, 0.03, 0.04, 0.03)
        )[0]
    x = rnd.random()
    if age < 8 and x < 0.35:
        return f"{rnd.choice(COINED_HEADS)}{rnd.choice(COINED_TAILS)} {form}"
    if x < 0.6:
        return f"{rnd.choice(SURNAMES)} {rnd.choice(words)} {form}"
    if x < 0.8:
        return f"{rnd.choice(PLACES)} {rnd.choice(words)} {form}"
    if x < 0.9:
        return f"{rnd.choice(SURNAMES)} & {rnd.choice(SURNAMES)} {form}"
    return f"{rnd.choice(words)} {rnd.choice(PLACES)} {form}"


def _company_description(
    rnd: random.Random,
    t: _Tables,
    german: bool,
    div: str,
    concepts: list[int],
    employees: int,
    founded: int,
    export: int,
    targets: list[int],
    seeks: list[int],
) -> str:
    sector = SECTORS[div]
    lang = 1 if german else 0
    offers = [rnd.choice(t.concepts[c][1][lang]) for c in concepts]
    cities = [t.cities[i].name if not german else CITY_FLAVOURS[t.cities[i].id].name_de for i in targets]
    parts: list[str] = []
    if german:
        offer = _join(offers, "und")
        parts.append(
            rnd.choice(
                (
                    f"Berliner {sector.role_de}. Schwerpunkte: {offer}.",
                    f"{sector.role_de} aus Berlin. Wir bieten {offer}.",
                    f"Aus Berlin: {sector.role_de} für {offer}.",
                )
            )
        )
        parts.append(
            rnd.choice(
                (
                    f"Gegründet {founded}, {employees} Mitarbeitende.",
                    f"Team mit {employees} Beschäftigten, seit {founded} am Markt.",
                )
            )
        )
        parts.append(
            (
                "Wir suchen erste internationale Kunden.",
                "Erste Auslandsprojekte abgeschlossen.",
                f"Export in über {rnd.randint(5, 40)} Länder.",
            )[export]
        )
        where = f"in {_join(cities, 'und')}" if cities else "weltweit"
        parts.append(f"Wir suchen {_join([SEEK_DE[s] for s in seeks], 'und')} {where}.")
    else:
        offer = _join(offers, "and")
        parts.append(
            rnd.choice(
                (
                    f"Berlin-based {sector.role_en} offering {offer}.",
                    f"We are a {sector.role_en} from Berlin specialising in {offer}.",
                    f"{sector.role_en[0].upper()}{sector.role_en[1:]} in Berlin: {offer}.",
                )
            )
        )
        parts.append(
            rnd.choice(
                (
                    f"Founded in {founded}, {employees} employees.",
                    f"A team of {employees}, in business since {founded}.",
                )
            )
        )
        parts.append(
            (
                "Looking for our first international customers.",
                "First projects abroad completed.",
                f"We export to more than {rnd.randint(5, 40)} countries.",
            )[export]
        )
        where = f"in {_join(cities, 'and')}" if cities else "internationally"
        parts.append(f"We are looking for {_join([SEEK_EN[s] for s in seeks], 'and')} {where}.")
    return " ".join(parts)


def _make_companies(
    cfg: GeneratorConfig, t: _Tables, clock: _Clock, seq: np.random.SeedSequence
) -> _Companies:
    n = cfg.companies
    rng = np.random.default_rng(seq)
    rnd = random.Random(int(seq.generate_state(1)[0]))
    start_day = clock.day_index(cfg.start)

    # Registration: a backlog over the two years before start (more of it recent),
    # then arrivals that grow over the simulated history.
    pre = rng.random(n) < cfg.preexisting_share
    days = np.empty(n, dtype=np.int64)
    n_pre = int(pre.sum())
    days[pre] = start_day - 1 - np.floor(728 * (1 - np.sqrt(rng.random(n_pre)))).astype(np.int64)
    week_w = 1 + 0.5 * np.arange(cfg.weeks) / cfg.weeks
    weeks = rng.choice(cfg.weeks, size=n - n_pre, p=week_w / week_w.sum())
    days[~pre] = start_day + 7 * weeks + _weekdays(rng, n - n_pre)
    registered = np.sort(_times_on_days(rng, clock, days, 8, 19))
    reg_year = _year(registered)

    employees = np.clip(np.rint(np.exp(rng.normal(math.log(10), 1.6, n))), 1, 60_000).astype(np.int64)
    age = np.clip(np.floor(np.exp(rng.normal(math.log(7) + 0.25 * np.log(employees / 10), 0.85))), 0, 150)
    founded = (reg_year - age).astype(np.int64)

    dorm = rng.random(n) < cfg.dormant_share
    activity = np.where(dorm, 0.0, rng.gamma(0.7, 1 / 0.7, n))
    attention = rng.beta(4, 4, n)

    div_idx = rng.choice(len(t.company_divisions), size=n, p=t.company_division_weights)
    manufacturing = np.array([10 <= int(t.company_divisions[i]) <= 33 for i in div_idx])
    latent = 0.55 * np.log(employees) + 0.4 * np.log1p(age) + 0.6 * manufacturing + rng.logistic(0, 0.8, n)
    export = np.digitize(latent, [2.6, 4.3])

    city_w = np.array([CITY_FLAVOURS[c.id].weight for c in t.cities])
    city_w /= city_w.sum()
    n_targets = rng.choice(5, size=n, p=[0.22, 0.32, 0.24, 0.14, 0.08])
    n_targets = np.minimum(4, n_targets + ((export == 2) & (rng.random(n) < 0.5)))

    ids = [f"c{i + 1:06d}" for i in range(n)]
    names: list[str] = []
    sectors: list[list[str]] = []
    concepts: list[list[int]] = []
    languages: list[list[str]] = []
    targets: list[list[int]] = []
    seeks: list[list[int]] = []
    descriptions: list[str] = []
    n_extra_p = [0.35, 0.30, 0.20, 0.10, 0.05]
    division_w = t.company_division_weights.tolist()
    city_wl = city_w.tolist()
    for i in range(n):
        div = t.company_divisions[div_idx[i]]
        emp, a, exp_i = int(employees[i]), int(age[i]), int(export[i])
        cids = t.concept_ids[div]
        primary = rnd.choice(cids)
        codes = [_pick_code(rnd, t, div, t.concepts[primary][1], (0.65, 0.2, 0.15))]
        chosen = [primary]
        if len(cids) > 1 and rnd.random() < 0.4:
            chosen.append(rnd.choice([c for c in cids if c != primary]))
        n_extra = rnd.choices(range(5), weights=n_extra_p)[0]
        for _ in range(n_extra):
            x = rnd.random()
            if x < 0.45:
                other = div
            elif x < 0.85 and div in AFFINITY:
                other = _weighted(rnd, [(d, w) for d, w in AFFINITY[div].items() if d != div] or [(div, 1.0)])
            else:
                other = rnd.choices(t.company_divisions, weights=division_w)[0]
            cid = rnd.choice(t.concept_ids[other])
            if _add_code(codes, _pick_code(rnd, t, other, t.concepts[cid][1], (0.65, 0.2, 0.15))) and (
                cid not in chosen and len(chosen) < 4 and (other != div or rnd.random() < 0.3)
            ):
                chosen.append(cid)
        tg = _sample_without_replacement(rnd, city_wl, int(n_targets[i]))
        langs = ["de"] if rnd.random() < 0.97 else []
        p_en = 0.5 + 0.15 * exp_i + 0.15 * (a < 8) + 0.1 * (emp >= 50)
        if rnd.random() < p_en or not langs:
            langs.append("en")
        for c in tg:
            for lang in t.cities[c].languages:
                if lang not in langs and rnd.random() < 0.3:
                    langs.append(lang)
        if rnd.random() < 0.08:
            extra = rnd.choice(EXTRA_LANGUAGES)
            if extra not in langs:
                langs.append(extra)
        kinds = list(range(6))
        sw = _seek_weights(div, a < 5)
        seek = [rnd.choices(kinds, weights=sw)[0]]
        if rnd.random() < 0.4:
            sw[seek[0]] = 0
            seek.append(rnd.choices(kinds, weights=sw)[0])
        german = rnd.random() < 0.56 - 0.15 * (a < 6) + 0.1 * (a > 20)
        names.append(_company_name(rnd, div, emp, a))
        sectors.append(codes)
        concepts.append(chosen)
        languages.append(langs)
        targets.append(tg)
        seeks.append(sorted(seek))
        descriptions.append(
            _company_description(rnd, t, german, div, chosen, emp, int(founded[i]), exp_i, tg, sorted(seek))
        )
    return _Companies(
        ids,
        names,
        sectors,
        concepts,
        employees,
        founded,
        export,
        languages,
        targets,
        seeks,
        descriptions,
        registered,
        activity,
        attention,
    )


def _budget(rng: np.random.Generator, kind: int) -> int | None:
    # (share without budget, median EUR, log sd, floor, cap)
    params = (
        (0.2, 120_000, 1.0, 5_000, 5_000_000),
        (0.6, 80_000, 0.9, 10_000, 3_000_000),
        (0.05, 1_500_000, 0.9, 250_000, 20_000_000),
        (0.5, 300_000, 0.8, 50_000, 2_000_000),
        (0.0, 400_000, 1.3, 20_000, 50_000_000),
        (0.5, 3_000_000, 1.0, 500_000, 30_000_000),
    )[kind]
    if rng.random() < params[0]:
        return None
    value = float(np.clip(params[1] * math.exp(rng.normal(0, params[2])), params[3], params[4]))
    magnitude = 10 ** max(0, int(math.log10(value)) - 1)
    return int(round(value / magnitude) * magnitude)


def _euros(value: int) -> str:
    if value >= 1_000_000:
        return f"EUR {value / 1_000_000:.1f} million".replace(".0 ", " ")
    return f"EUR {value:,}"


LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "tr": "Turkish",
    "pl": "Polish",
    "nl": "Dutch",
    "hu": "Hungarian",
    "uz": "Uzbek",
    "ru": "Russian",
    "id": "Indonesian",
    "zh": "Chinese",
    "ja": "Japanese",
    "cs": "Czech",
    "af": "Afrikaans",
}


def _lead_text(
    rnd: random.Random,
    kind: int,
    key: str,
    org: str,
    city: PartnerCity,
    need: str,
    budget: int | None,
    languages: list[str],
    deadline: str | None,
) -> tuple[str, str]:
    if kind == BUYER:
        title = f"Sourcing request: {need} for {city.name}"
        body = rnd.choice(
            (
                f"{org} is looking for suppliers of {need}.",
                f"Purchasing inquiry: {org} in {city.name} plans to source {need} from Germany.",
            )
        )
    elif kind == DISTRIBUTOR:
        title = f"Distributor seeks {need} ({city.name})"
        body = rnd.choice(
            (
                f"Established distributor {org} wants to add {need} from Germany to its portfolio.",
                f"{org} seeks German manufacturers of {need} for exclusive distribution in {city.name}.",
            )
        )
    elif kind == INVESTOR:
        title = f"Investment opportunity: {need}"
        body = rnd.choice(
            (
                f"{org} invests in companies working on {need}.",
                f"{org}, based in {city.name}, is looking for Berlin start-ups in {need}.",
            )
        )
    elif kind == RESEARCH:
        title = f"Research partnership: {need} ({city.name})"
        body = rnd.choice(
            (
                f"{org} seeks research partners in {need} for a joint project.",
                f"Joint R&D on {need}: {org} is looking for industrial partners from Berlin.",
            )
        )
    elif kind == TENDER:
        project = rnd.choice(TENDER_PROJECTS.get(key[:2], ("a public project",)))
        title = f"Public tender: {need} for {project}, {city.name}"
        body = f"Public tender by {org}: {need} for {project}. International bidders are welcome."
    else:
        title = f"Joint venture: {need} in {city.name}"
        body = rnd.choice(
            (
                f"{org} proposes a joint venture for local production of {need}.",
                f"{org} is looking for a German partner to set up a joint venture in {need}.",
            )
        )
    parts = [body]
    if budget is not None and rnd.random() < 0.6:
        label = "Ticket size" if kind == INVESTOR else "Budget"
        parts.append(f"{label}: approx. {_euros(budget)}.")
    if deadline is not None and rnd.random() < 0.4:
        parts.append(f"Submissions until {deadline}.")
    if rnd.random() < 0.4:
        parts.append(f"Working languages: {_join([LANGUAGE_NAMES.get(x, x) for x in languages], 'and')}.")
    phrase = CITY_FLAVOURS[city.id].phrase
    if phrase and rnd.random() < 0.2:
        parts.append(phrase)
    return title, " ".join(parts)


def _make_leads(cfg: GeneratorConfig, t: _Tables, clock: _Clock, seq: np.random.SeedSequence) -> _Leads:
    m = cfg.leads
    rng = np.random.default_rng(seq)
    rnd = random.Random(int(seq.generate_state(1)[0]))
    start_day = clock.day_index(cfg.start)

    # A small backlog published during the four weeks before start, so the first
    # simulated week already has open leads.
    backlog = rng.random(m) < 0.05
    week_w = 1 + 0.3 * np.arange(cfg.weeks) / cfg.weeks
    weeks = np.where(
        backlog, -1 - rng.integers(0, 4, m), rng.choice(cfg.weeks, size=m, p=week_w / week_w.sum())
    )
    days = start_day + 7 * weeks + _weekdays(rng, m)
    # Sorted, so that consecutive lead indices are publication windows (see _simulate).
    published = np.sort(_times_on_days(rng, clock, days, 7, 18))
    pub_days = clock.day_of(published)

    kinds = rng.choice(6, size=m, p=LEAD_KIND_SHARE)
    lead_city_w = np.array([CITY_FLAVOURS[t.cities[i].id].weight for i in t.lead_cities])
    cities = np.array(t.lead_cities)[
        rng.choice(len(t.lead_cities), size=m, p=lead_city_w / lead_city_w.sum())
    ]
    has_deadline = (kinds == TENDER) | (rng.random(m) < 0.45)
    deadline_days = np.where(has_deadline, pub_days + rng.integers(14, 113, m), -1)
    quality = rng.normal(0, LEAD_QUALITY, m)

    titles: list[str] = []
    orgs: list[str] = []
    sectors: list[list[str]] = []
    wants: list[dict[str, float]] = []
    concepts: list[list[int]] = []
    descriptions: list[str] = []
    languages: list[list[str]] = []
    budgets: list[int | None] = []
    for i in range(m):
        kind = int(kinds[i])
        city = t.cities[int(cities[i])]
        flavour = CITY_FLAVOURS[city.id]
        key = _weighted(rnd, LEAD_KEYS[kind])
        div = key[:2]
        codes = [_pick_code(rnd, t, key, None, (0.55, 0.25, 0.2))]
        row = AFFINITY.get(key) or AFFINITY.get(div) or {div: 1.0}
        want = {d: w * math.exp(rng.normal(0, 0.25)) for d, w in row.items()}
        wanted: list[str] = []
        for _ in range(1 if rnd.random() < 0.55 else 2):
            options = [(d, w) for d, w in want.items() if d not in wanted]
            if options:
                wanted.append(_weighted(rnd, options))
        need_ids: list[int] = []
        for j, d in enumerate(wanted):
            want[d] += 0.3
            for _ in range(2 if j == 0 and rnd.random() < 0.3 else 1):
                cid = rnd.choice(t.concept_ids[d])
                if cid not in need_ids:
                    need_ids.append(cid)
                    if rnd.random() < EXTRA_CODE_PROB[kind]:
                        _add_code(codes, _pick_code(rnd, t, d, t.concepts[cid][1], (0.5, 0.3, 0.2)))
        if rnd.random() < 0.15:
            _add_code(codes, _pick_code(rnd, t, key, None, (0.7, 0.3, 0.0)))
        need = _join([rnd.choice(t.concepts[c][1].en) for c in need_ids], "and")
        langs = list(city.languages)
        if "en" not in langs and rnd.random() < 0.75:
            langs.append("en")
        if "de" not in langs and rnd.random() < 0.08:
            langs.append("de")
        budget = _budget(rng, kind)
        if kind == TENDER and rnd.random() < 0.8:
            org = flavour.public_body
        else:
            nouns = (
                ("Capital", "Ventures", "Investment Partners")
                if kind == INVESTOR
                else (
                    ("Institute of Technology", "Research Centre", "Innovation Lab")
                    if kind == RESEARCH and rnd.random() < 0.5
                    else SECTORS[div].org_nouns
                )
            )
            org = rnd.choice(flavour.patterns).format(w=rnd.choice(flavour.words), n=rnd.choice(nouns))
        dl = int(deadline_days[i])
        title, text = _lead_text(
            rnd, kind, key, org, city, need, budget, langs, clock.date_str(dl) if dl >= 0 else None
        )
        titles.append(title)
        orgs.append(org)
        sectors.append(codes)
        wants.append(want)
        concepts.append(need_ids)
        descriptions.append(text)
        languages.append(langs)
        budgets.append(budget)
    leads = _Leads(
        [f"l{i + 1:06d}" for i in range(m)],
        titles,
        kinds,
        orgs,
        cities,
        sectors,
        wants,
        concepts,
        descriptions,
        languages,
        budgets,
        published,
        deadline_days,
        quality,
    )
    leads.open_until = np.where(
        deadline_days >= 0, clock.midnight[np.maximum(deadline_days, 0) + 1], np.iinfo(np.int64).max
    )
    return leads


# ---------------------------------------------------------------------------
# Latent utility


def _code_features(code_lists: Sequence[Sequence[str]], index: dict[str, int], company_side: bool) -> Array:
    """Sector codes expanded to their division, group and class.

    Company side: division 0.5, group 0.25, class 0.25 (primary code weight 1,
    others 0.75), so its dot product with the binary lead side is 1 for the same
    class, 0.75 for the same group and 0.5 for the same division.
    """
    out = np.zeros((len(code_lists), len(index)), dtype=np.float32)
    increments = (0.5, 0.25, 0.25)
    for row, codes in enumerate(code_lists):
        for k, code in enumerate(codes):
            w = (1.0 if k == 0 else 0.75) if company_side else 1.0
            for level, prefix in enumerate(_prefixes(code)):
                col = index[prefix]
                out[row, col] = max(out[row, col], increments[level] * w if company_side else 1.0)
    return out


def _prefixes(code: str) -> tuple[str, ...]:
    """The division, group and class a code lies in, as far as it goes."""
    return (code[:2], code[:4], code)[: {2: 1, 4: 2, 5: 3}[len(code)]]


def _feature_index(code_lists: Iterable[Sequence[str]]) -> dict[str, int]:
    keys = {p for codes in code_lists for code in codes for p in _prefixes(code)}
    return {k: i for i, k in enumerate(sorted(keys))}


def _quantise(a: Array) -> Array:
    out = np.multiply(a, np.float32(GRID), dtype=np.float32)
    np.rint(out, out=out)
    out /= np.float32(GRID)
    return out


class _PairModel(NamedTuple):
    """Company-side and lead-side matrices whose products give the latent utility and the policy score."""

    company: Array
    lead: Array
    company_policy: Array
    lead_policy: Array


def _division_weights(codes: Sequence[str], divisions: dict[str, int]) -> Array:
    row = np.zeros(len(divisions), dtype=np.float32)
    for k, code in enumerate(codes):
        d = divisions.get(code[:2])
        if d is not None:
            row[d] = max(row[d], 1.0 if k == 0 else 0.75)
    return row


def _one_hot(index: Sequence[int] | Array, width: int) -> Array:
    out = np.zeros((len(index), width), dtype=np.float32)
    out[np.arange(len(index)), index] = 1
    return out


def _language_bonus(comp: _Companies, leads: _Leads) -> tuple[Array, Array]:
    """Language term as company-side bonus per lead language profile and a lead-side one-hot profile.

    Lead languages come in few distinct combinations, which keeps this
    nonlinear term (no common language at all) inside the single matrix product.
    """
    profiles = sorted({tuple(sorted(ls)) for ls in leads.languages})
    profile_of = {p: i for i, p in enumerate(profiles)}
    langs = sorted({x for ls in (*comp.languages, *leads.languages) for x in ls})
    col = {x: i for i, x in enumerate(langs)}
    c_lang = np.zeros((len(comp.languages), len(langs)), dtype=np.float32)
    for i, ls in enumerate(comp.languages):
        c_lang[i, [col[x] for x in ls]] = 1
    p_lang = np.zeros((len(profiles), len(langs)), dtype=np.float32)
    for i, ps in enumerate(profiles):
        p_lang[i, [col[x] for x in ps]] = 1
    local = np.array([x not in ("en", "de") for x in langs])
    shared = c_lang @ p_lang.T
    shared_local = c_lang[:, local] @ p_lang[:, local].T
    bonus = np.where(shared == 0, W_NO_LANGUAGE, np.where(shared_local > 0, W_LOCAL_LANGUAGE, 0.0)).astype(
        np.float32
    )
    lead_profile = _one_hot([profile_of[tuple(sorted(ls))] for ls in leads.languages], len(profiles))
    return bonus, lead_profile


def _pair_model(
    t: _Tables, comp: _Companies, leads: _Leads, rng: np.random.Generator, policy: str = "rules"
) -> _PairModel:
    n, m = len(comp.ids), len(leads.ids)
    index = _feature_index([*comp.sectors, *leads.sectors])
    c_direct = _code_features(comp.sectors, index, company_side=True)
    l_direct = _code_features(leads.sectors, index, company_side=False)
    both = (c_direct.any(axis=0)) & (l_direct.any(axis=0))
    c_direct, l_direct = c_direct[:, both], l_direct[:, both]

    divisions = {d: i for i, d in enumerate(sorted({c[:2] for codes in comp.sectors for c in codes}))}
    c_div = np.stack([_division_weights(codes, divisions) for codes in comp.sectors])
    l_want = np.zeros((m, len(divisions)), dtype=np.float32)
    for j, want in enumerate(leads.wants):
        for d, w in want.items():
            if d in divisions:
                l_want[j, divisions[d]] = min(w, 1.3)

    q = len(t.concepts)
    c_text = np.zeros((n, q), dtype=np.float32)
    for i, cs in enumerate(comp.concepts):
        c_text[i, cs] = 1
    l_text = np.zeros((m, q), dtype=np.float32)
    for j, cs in enumerate(leads.concepts):
        l_text[j, cs] = 1

    nc = len(t.cities)
    c_city = np.zeros((n, nc), dtype=np.float32)
    for i, tg in enumerate(comp.targets):
        c_city[i, tg] = 1
    l_city = _one_hot(leads.cities, nc)
    no_targets = np.array([not tg for tg in comp.targets], dtype=np.float32)

    fit = (FIT_SIZE[:, comp.size].T + FIT_EXPORT[:, comp.export].T + FIT_AGE[:, comp.age_bucket].T).astype(
        np.float32
    )
    for i, seek in enumerate(comp.seeks):
        fit[i, seek] += SEEK_BONUS
    l_kind = _one_hot(leads.kinds, 6)
    lang_bonus, l_profile = _language_bonus(comp, leads)
    # Unobserved taste (low rank): what makes collaborative filtering worth something.
    c_taste = rng.normal(0, 1, (n, TASTE_RANK)).astype(np.float32)
    l_taste = rng.normal(0, TASTE_SD / math.sqrt(TASTE_RANK), (m, TASTE_RANK)).astype(np.float32)

    ones_n, ones_m = np.ones((n, 1), dtype=np.float32), np.ones((m, 1), dtype=np.float32)
    company = np.hstack(
        [
            W_DIRECT * c_direct,
            W_COMPLEMENT * c_div,
            W_TEXT * c_text,
            W_CITY * c_city,
            fit,
            lang_bonus,
            c_taste,
            ones_n,
            W_NO_TARGETS * no_targets[:, None],
        ]
    )
    quality = leads.quality[:, None].astype(np.float32)
    lead = np.hstack([l_direct, l_want, l_text, l_city, l_kind, l_profile, l_taste, quality, ones_m])

    company_policy, lead_policy = _policy(
        policy, comp, leads, (company, lead), divisions, c_div, (c_city, l_city), (c_text, l_text)
    )
    return _PairModel(_quantise(company), _quantise(lead), _quantise(company_policy), _quantise(lead_policy))


def _policy(
    policy: str,
    comp: _Companies,
    leads: _Leads,
    utility: tuple[Array, Array],
    divisions: dict[str, int],
    c_div: Array,
    city: tuple[Array, Array],
    text: tuple[Array, Array],
) -> tuple[Array, Array]:
    """Company-side and lead-side matrices of the logging policy's score (before its recency bonus and
    noise); ``utility``, ``city`` and ``text`` are the company-side and lead-side matrices of each."""
    n, m = len(comp.ids), len(leads.ids)
    if policy == "popularity":
        # What a popularity recommender converges to: the leads with the highest mean utility over all
        # companies, one list for everyone (the pair noise and the taste average out).
        company, lead = utility
        appeal = company.mean(axis=0, dtype=np.float64) @ lead.T.astype(np.float64)
        spread = float(appeal.std()) or 1.0
        popularity = (POPULARITY_SPREAD * (appeal - appeal.mean()) / spread).astype(np.float32)
        return np.ones((n, 1), dtype=np.float32), popularity[:, None]
    if policy == "text":
        # Shared concepts only: what a text-similarity recommender sees. No sector codes, no city.
        return text
    # Rules: primary division among the lead's divisions, any shared division, target city. It knows
    # nothing of complements, text, size or kind.
    c_prim = np.zeros((n, len(divisions)), dtype=np.float32)
    for i, codes in enumerate(comp.sectors):
        c_prim[i, divisions[codes[0][:2]]] = 1
    c_any = (c_div > 0).astype(np.float32)
    l_any = np.zeros((m, len(divisions)), dtype=np.float32)
    for j, codes in enumerate(leads.sectors):
        for code in codes:
            if code[:2] in divisions:
                l_any[j, divisions[code[:2]]] = 1
    c_city, l_city = city
    return np.hstack([c_prim, 0.5 * c_any, 0.625 * c_city]), np.hstack([l_any, l_any, l_city])


# ---------------------------------------------------------------------------
# Interaction simulation


class _Events:
    def __init__(self) -> None:
        self.parts: list[tuple[Array, Array, int, Array, Array]] = []

    def add(self, company: Array, lead: Array, kind: int, at: Array, position: Array | None = None) -> None:
        if len(company):
            pos = np.zeros(len(company), dtype=np.int8) if position is None else position.astype(np.int8)
            self.parts.append(
                (company.astype(np.int32), lead.astype(np.int32), kind, at.astype(np.int64), pos)
            )

    def arrays(self) -> tuple[Array, Array, Array, Array, Array]:
        if not self.parts:
            e = np.zeros(0, dtype=np.int64)
            return e, e, e, e, e
        company = np.concatenate([p[0] for p in self.parts])
        lead = np.concatenate([p[1] for p in self.parts])
        kind = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in self.parts])
        at = np.concatenate([p[3] for p in self.parts])
        pos = np.concatenate([p[4] for p in self.parts])
        order = np.lexsort((kind, lead, company, at))
        return company[order], lead[order], kind[order], at[order], pos[order]


def _relevance(u: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-R_SLOPE * (u - R_CENTRE)))


def _funnel(
    rng: np.random.Generator,
    ev: _Events,
    company: Array,
    lead: Array,
    r: Array,
    t_view: Array,
    end: Array,
    organic: bool,
) -> None:
    """What follows a view: declined, or interested -> contacted -> introduced -> deal."""
    k = len(company)
    if k == 0:
        return
    p_interest = np.clip(0.2 + 0.7 * r, 0, 0.95) if organic else 0.8 * r
    interested = rng.random(k) < p_interest
    declined = ~interested & (rng.random(k) < 0.3)
    t_dec = t_view + rng.integers(20, 3600, k)
    ok = declined & (t_dec < end)
    ev.add(company[ok], lead[ok], DECLINED, t_dec[ok])

    t = t_view + np.rint(np.exp(rng.normal(math.log(6 * 3600), 1.0, k))).astype(np.int64) + 60
    alive = interested & (t < end)
    ev.add(company[alive], lead[alive], INTERESTED, t[alive])
    for kind, (base, slope), (lo_days, hi_days) in (
        (CONTACTED, (0.3, 0.35), (1, 10)),
        (INTRODUCED, (0.2, 0.35), (3, 21)),
        (DEAL, (0.1, 0.3), (7, 45)),
    ):
        t = t + rng.integers(lo_days * DAY, hi_days * DAY, k)
        alive &= (rng.random(k) < base + slope * r) & (t < end)
        ev.add(company[alive], lead[alive], kind, t[alive])


def _simulate(
    cfg: GeneratorConfig,
    clock: _Clock,
    comp: _Companies,
    leads: _Leads,
    model: _PairModel,
    seq: np.random.SeedSequence,
    progress: Progress | None,
) -> _Events:
    n, m = len(comp.ids), len(leads.ids)
    ev = _Events()
    start_day = clock.day_index(cfg.start)
    horizon = int(clock.midnight[start_day + 7 * cfg.weeks])
    open_until = np.minimum(leads.open_until, horizon)
    published = leads.published

    # Leads are sorted by publication time, so chunks of consecutive leads are
    # publication windows. Each company's candidate pool is the policy's best and
    # the truly best lead of every window: cheap (argmax instead of a top-k
    # sort) and it guarantees open candidates in every week.
    chunks = max(1, min(128, m // 2))
    width = -(-m // chunks)
    padded = chunks * width
    block = max(1, min(n, 4_000_000 // padded))
    lead_t = model.lead.T.copy()
    lead_pol_t = model.lead_policy.T.copy()
    # Pair noise is read from a shared random sequence at a random offset per
    # company: a tenth of the cost of drawing b x m fresh variates per block.
    rng = np.random.default_rng(seq.spawn(1)[0])
    size = max(1 << 22, 8 * m)
    pair_noise = sliding_window_view(rng.normal(0, PAIR_NOISE, size + m).astype(np.float32), m)
    policy_noise = sliding_window_view(rng.random(size + m, dtype=np.float32), m)
    neg_inf = np.float32(-np.inf)
    blocks = range(0, n, block)
    block_seqs = seq.spawn(len(blocks))
    for b_i, lo in enumerate(blocks):
        rng = np.random.default_rng(block_seqs[b_i])
        hi = min(n, lo + block)
        b = hi - lo
        u = np.full((b, padded), neg_inf, dtype=np.float32)
        u[:, :m] = model.company[lo:hi] @ lead_t
        u[:, :m] += pair_noise[rng.integers(0, len(pair_noise), b)]
        p = np.full((b, padded), neg_inf, dtype=np.float32)
        p[:, :m] = model.company_policy[lo:hi] @ lead_pol_t
        p[:, :m] += policy_noise[rng.integers(0, len(policy_noise), b)]

        rows = np.arange(b)[:, None]
        cols = np.arange(chunks)[None, :] * width
        pool_p = p.reshape(b, chunks, width).argmax(axis=2) + cols
        u_p = u[rows, pool_p]
        pol_p = p[rows, pool_p]
        u[rows, pool_p] = neg_inf
        pool_t = u.reshape(b, chunks, width).argmax(axis=2) + cols
        u_t = u[rows, pool_t]
        pol_t = p[rows, pool_t]
        del u, p
        pool = np.hstack([pool_p, pool_t])
        u_pool = np.hstack([u_p, u_t]).astype(np.float64)
        pol_pool = np.hstack([pol_p, pol_t]).astype(np.float64)
        valid = np.isfinite(u_pool) & (pool < m)
        pool = np.where(valid, pool, 0)
        pool_pub = np.where(valid, published[pool], np.iinfo(np.int64).max)
        pool_end = np.where(valid, open_until[pool], 0)
        engaged = np.zeros(pool.shape, dtype=bool)
        shown = np.zeros(pool.shape, dtype=np.float64)
        last_shown = np.zeros(pool.shape, dtype=np.int64)
        k_list = min(cfg.list_size, pool.shape[1])

        reg = comp.registered[lo:hi]
        act = comp.activity[lo:hi]
        att = comp.attention[lo:hi]
        for w in range(cfg.weeks):
            week_start = int(clock.midnight[start_day + 7 * w])
            since = np.maximum(0.0, (week_start - reg) / WEEK)
            # New users explore more during their first weeks.
            boost = act * cfg.activity * (1 + 1.5 * np.exp(-since / 2))

            # Sessions with the logged list.
            sess = np.flatnonzero(rng.random(b) < np.minimum(0.9, SESSION_RATE * boost))
            days = start_day + 7 * w + _weekdays(rng, len(sess))
            ts = _times_on_days(rng, clock, days, 7.5, 20)
            keep = ts > reg[sess]
            sess, ts = sess[keep], ts[keep]
            if len(sess):
                tcol = ts[:, None]
                open_ = (pool_pub[sess] < tcol) & (pool_end[sess] > tcol) & ~engaged[sess]
                age = (tcol - pool_pub[sess]) / WEEK
                score = pol_pool[sess] + 0.5 * np.exp(-np.maximum(age, 0) / 3) - 0.4 * shown[sess]
                score += 0.8 * rng.random(score.shape)
                score[~open_] = -np.inf
                top = np.argpartition(-score, k_list - 1, axis=1)[:, :k_list]
                top_score = np.take_along_axis(score, top, axis=1)
                order = np.argsort(-top_score, axis=1, kind="stable")
                top = np.take_along_axis(top, order, axis=1)
                top_score = np.take_along_axis(top_score, order, axis=1)
                r_i, c_i = np.nonzero(np.isfinite(top_score))
                row = sess[r_i]
                slot = top[r_i, c_i]
                lead_i = pool[row, slot]
                position = c_i + 1
                t_imp = ts[r_i]
                ev.add(row + lo, lead_i, IMPRESSION, t_imp, position)
                shown[row, slot] += 1
                last_shown[row, slot] = t_imp
                u_eff = u_pool[row, slot] - AGE_PENALTY_PER_WEEK * (t_imp - pool_pub[row, slot]) / WEEK
                r = _relevance(u_eff)
                p_view = att[row] * position**-POSITION_EXPONENT * (0.2 + 0.8 * r)
                t_view = t_imp + 15 + 40 * position + rng.integers(0, 600, len(row))
                viewed = (rng.random(len(row)) < p_view) & (t_view < pool_end[row, slot])
                engaged[row[viewed], slot[viewed]] = True
                ev.add(row[viewed] + lo, lead_i[viewed], VIEW, t_view[viewed], position[viewed])
                _funnel(
                    rng,
                    ev,
                    row[viewed] + lo,
                    lead_i[viewed],
                    r[viewed],
                    t_view[viewed],
                    pool_end[row[viewed], slot[viewed]],
                    organic=False,
                )

            # Organic discovery (search, events, word of mouth), driven by true utility.
            org = np.flatnonzero(rng.random(b) < np.minimum(0.9, ORGANIC_RATE * boost))
            days = start_day + 7 * w + rng.integers(0, 7, len(org))
            ts = _times_on_days(rng, clock, days, 7, 22)
            keep = ts > reg[org]
            org, ts = org[keep], ts[keep]
            if len(org):
                tcol = ts[:, None]
                # Not a lead the list is going to show later: a pair's impressions precede its view.
                open_ = (
                    (pool_pub[org] < tcol) & (pool_end[org] > tcol) & ~engaged[org] & (last_shown[org] < tcol)
                )
                u_eff_all = u_pool[org] - AGE_PENALTY_PER_WEEK * np.maximum(tcol - pool_pub[org], 0) / WEEK
                g = u_eff_all / ORGANIC_TEMPERATURE + rng.gumbel(size=open_.shape)
                g[~open_] = -np.inf
                slot = g.argmax(axis=1)
                found = np.isfinite(g[np.arange(len(org)), slot])
                row, slot, ts = org[found], slot[found], ts[found]
                lead_i = pool[row, slot]
                r = _relevance(u_eff_all[np.flatnonzero(found), slot])
                engaged[row, slot] = True
                ev.add(row + lo, lead_i, VIEW, ts)
                _funnel(rng, ev, row + lo, lead_i, r, ts, pool_end[row, slot], organic=True)
        if progress:
            progress("interactions", hi, n)
    return ev


# ---------------------------------------------------------------------------
# Missions


def _make_missions(
    cfg: GeneratorConfig, t: _Tables, clock: _Clock, comp: _Companies, seq: np.random.SeedSequence
) -> tuple[_Missions, list[tuple[int, int, int, int]]]:
    """Missions and their participants as (mission, company, status, at) rows, one per pair."""
    k = cfg.mission_count
    rng = np.random.default_rng(seq)
    rnd = random.Random(int(seq.generate_state(1)[0]))
    start_day = clock.day_index(cfg.start)
    horizon = int(clock.midnight[start_day + 7 * cfg.weeks])
    last_day = start_day + max(1, 7 * cfg.weeks - 14)
    days = np.sort(rng.integers(start_day, last_day, k))
    announced = _times_on_days(rng, clock, days, 9, 17)

    city_w = np.array([CITY_FLAVOURS[t.cities[i].id].weight for i in t.lead_cities])
    missions = _Missions([f"m{i + 1:04d}" for i in range(k)], [], [], [], [], [], [], announced)
    for i in range(k):
        label, theme = MISSION_THEMES[int(rng.integers(len(MISSION_THEMES)))]
        city = t.lead_cities[int(rng.choice(len(t.lead_cities), p=city_w / city_w.sum()))]
        codes = [theme[0], *[c for c in theme[1:] if rnd.random() < 0.6]]
        start = int(days[i]) + rnd.randint(42, 140)
        start += (7 - (start + clock.first.weekday())) % 7  # trips start on a Monday
        missions.titles.append(f"{label} delegation to {t.cities[city].name}")
        missions.cities.append(city)
        missions.sectors.append(codes)
        missions.starts_on.append(start)
        missions.ends_on.append(start + rnd.randint(2, 4))
        missions.capacity.append(rnd.randint(8, 25))

    index = _feature_index([*comp.sectors, *missions.sectors])
    direct = (
        _code_features(comp.sectors, index, company_side=True)
        @ _code_features(missions.sectors, index, company_side=False).T
    )
    rows: list[tuple[int, int, int, int]] = []
    size_bonus = np.array([0.0, 0.3, 0.3, -0.3])[comp.size]
    export_bonus = np.array([-0.2, 0.2, 0.2])[comp.export]
    active = comp.activity > 0
    targets_city = np.zeros((len(comp.ids), len(t.cities)), dtype=bool)
    for c, tg in enumerate(comp.targets):
        targets_city[c, tg] = True
    log_act = np.log(np.maximum(comp.activity, 1e-3))
    for i in range(k):
        cap = missions.capacity[i]
        t_a = int(announced[i])
        start_ts = int(clock.midnight[missions.starts_on[i]]) + 9 * 3600
        targets = targets_city[:, missions.cities[i]]
        score = (
            1.5 * np.minimum(direct[:, i], 1.2)
            + 1.0 * targets
            + size_bonus
            + export_bonus
            + 0.4 * log_act
            + rng.normal(0, 0.6, len(comp.ids))
        )
        eligible = active & (comp.registered < t_a)
        candidates = np.flatnonzero(eligible & (score > 1.2))
        n_apply = min(len(candidates), int(rng.poisson(1.2 * cap)))
        applicants = candidates[np.argsort(-score[candidates], kind="stable")[:n_apply]]
        # The agency invites from its own coarse view: a shared division, exporters first.
        heuristic = (direct[:, i] >= 0.5) + 0.5 * (comp.export > 0) + rng.random(len(comp.ids))
        heuristic[applicants] = -np.inf
        heuristic[~(comp.registered < t_a)] = -np.inf
        n_invite = min(int(np.isfinite(heuristic).sum()), round(0.5 * cap))
        invitees = np.argsort(-heuristic, kind="stable")[:n_invite]

        status: dict[int, tuple[int, int]] = {}
        pool: list[int] = []
        last_call = start_ts - 7 * DAY
        for c in applicants.tolist():
            at = min(t_a + int(rng.exponential(7 * DAY)) + 600, last_call)
            if at > t_a and at < horizon:
                status[c] = (0, at)
                pool.append(c)
        for c in invitees.tolist():
            at = t_a + int(rng.integers(DAY // 2, 10 * DAY))
            if at >= horizon or at >= last_call:
                continue
            # Dormant companies never answer an invitation.
            accept = 1 / (1 + math.exp(-(score[c] - 0.5))) if active[c] else 0.0
            reply = at + int(rng.integers(DAY, 10 * DAY))
            if rng.random() < accept:
                status[c] = (1, at)
                pool.append(c)
            elif reply < horizon and active[c]:
                status[c] = (3, reply)
            else:
                status[c] = (1, at)
        if start_ts < horizon and pool:
            ranked = sorted(pool, key=lambda c: -(score[c] + rng.normal(0, 0.3)))
            for c in ranked[:cap]:
                if rng.random() < 0.08:
                    status[c] = (3, max(status[c][1] + 3600, start_ts - int(rng.integers(DAY, 7 * DAY))))
                else:
                    status[c] = (2, start_ts)
        for c, (st, at) in status.items():
            rows.append((i, c, st, at))
    rows.sort(key=lambda r: (r[3], r[0], r[1]))
    return missions, rows


# ---------------------------------------------------------------------------
# Output


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


class _Writer:
    """Writes each file under a temporary name and renames it when complete."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.counts: dict[str, int] = {}

    def write(self, name: str, lines: Iterable[str]) -> None:
        final = self.out_dir / name
        tmp = self.out_dir / f".{name}.tmp"
        count = 0
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line)
                f.write("\n")
                count += 1
        os.replace(tmp, final)
        self.counts[name] = count


def _interaction_lines(comp: _Companies, leads: _Leads, clock: _Clock, ev: _Events) -> Iterator[str]:
    company, lead, kind, at, pos = ev.arrays()
    step = 200_000
    for lo in range(0, len(company), step):
        sl = slice(lo, lo + step)
        times = clock.format(at[sl])
        for c, ld, k, t, p in zip(
            company[sl].tolist(), lead[sl].tolist(), kind[sl].tolist(), times, pos[sl].tolist(), strict=True
        ):
            position = str(p) if p else "null"
            yield (
                f'{{"company_id": "{comp.ids[c]}", "lead_id": "{leads.ids[ld]}", '
                f'"kind": "{EVENT_KINDS[k]}", "at": "{t}", "position": {position}}}'
            )


def _company_lines(t: _Tables, clock: _Clock, comp: _Companies) -> Iterator[str]:
    registered = clock.format(comp.registered)
    for i, company_id in enumerate(comp.ids):
        yield _dump(
            {
                "id": company_id,
                "name": comp.names[i],
                "sectors": comp.sectors[i],
                "employees": int(comp.employees[i]),
                "founded": int(comp.founded[i]),
                "export_experience": EXPORT_LEVELS[comp.export[i]],
                "languages": comp.languages[i],
                "target_cities": [t.cities[c].id for c in comp.targets[i]],
                "description": comp.descriptions[i],
                "registered_at": registered[i],
            }
        )


def _lead_lines(t: _Tables, clock: _Clock, leads: _Leads) -> Iterator[str]:
    published = clock.format(leads.published)
    for j, lead_id in enumerate(leads.ids):
        deadline = int(leads.deadline_days[j])
        yield _dump(
            {
                "id": lead_id,
                "title": leads.titles[j],
                "kind": LEAD_KINDS[leads.kinds[j]],
                "organization": leads.organizations[j],
                "city": t.cities[leads.cities[j]].id,
                "sectors": leads.sectors[j],
                "description": leads.descriptions[j],
                "languages": leads.languages[j],
                "budget_eur": leads.budgets[j],
                "published_at": published[j],
                "deadline": clock.date_str(deadline) if deadline >= 0 else None,
            }
        )


def _mission_lines(t: _Tables, clock: _Clock, missions: _Missions) -> Iterator[str]:
    announced = clock.format(missions.announced)
    for i, mission_id in enumerate(missions.ids):
        yield _dump(
            {
                "id": mission_id,
                "title": missions.titles[i],
                "city": t.cities[missions.cities[i]].id,
                "sectors": missions.sectors[i],
                "starts_on": clock.date_str(missions.starts_on[i]),
                "ends_on": clock.date_str(missions.ends_on[i]),
                "capacity": missions.capacity[i],
                "announced_at": announced[i],
            }
        )


def _participant_lines(
    clock: _Clock, comp: _Companies, missions: _Missions, rows: list[tuple[int, int, int, int]]
) -> Iterator[str]:
    at = clock.format(np.array([r[3] for r in rows], dtype=np.int64))
    for k, (mission, company, status, _) in enumerate(rows):
        yield _dump(
            {
                "mission_id": missions.ids[mission],
                "company_id": comp.ids[company],
                "status": PARTICIPANT_STATUSES[status],
                "at": at[k],
            }
        )


def generate(out_dir: Path, config: GeneratorConfig, progress: Progress | None = None) -> dict[str, int]:
    """Writes the dataset; returns row counts per file.

    ``progress(stage, done, total)`` is called after each stage ("companies",
    "leads", "missions", "written") and after each block of companies during
    "interactions", the long one.
    """
    t = _tables()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Days from the earliest pre-existing registration to the last mission's end.
    clock = _Clock(config.start - timedelta(days=740), 740 + 7 * config.weeks + 160)
    s_companies, s_leads, s_model, s_sim, s_missions = np.random.SeedSequence(config.seed).spawn(5)

    comp = _make_companies(config, t, clock, s_companies)
    if progress:
        progress("companies", config.companies, config.companies)
    leads = _make_leads(config, t, clock, s_leads)
    if progress:
        progress("leads", config.leads, config.leads)
    model = _pair_model(t, comp, leads, np.random.default_rng(s_model), config.logging_policy)
    events = _simulate(config, clock, comp, leads, model, s_sim, progress)
    missions, participants = _make_missions(config, t, clock, comp, s_missions)
    if progress:
        progress("missions", len(missions.ids), len(missions.ids))

    w = _Writer(out_dir)
    w.write(
        "cities.jsonl",
        (
            _dump(
                {
                    "id": c.id,
                    "name": c.name,
                    "country": c.country,
                    "languages": list(c.languages),
                    "status": c.status,
                }
            )
            for c in t.cities
        ),
    )
    w.write("companies.jsonl", _company_lines(t, clock, comp))
    w.write("leads.jsonl", _lead_lines(t, clock, leads))
    w.write("interactions.jsonl", _interaction_lines(comp, leads, clock, events))
    w.write("missions.jsonl", _mission_lines(t, clock, missions))
    w.write("mission_participants.jsonl", _participant_lines(clock, comp, missions, participants))
    if progress:
        progress("written", 1, 1)
    return w.counts

"""Berlin's partner cities as the Senate Chancellery lists them.

Source: https://www.berlin.de/rbmskzl/politik/internationales/staedtepartnerschaften/
(year each partnership began). The partnership with Moscow has been suspended
since 2022. Ids are the lower-case ASCII English names that the dataset format
(shared/dataset-format.md) fixes for the built-in list.
"""

from typing import NamedTuple


class PartnerCity(NamedTuple):
    id: str
    name: str
    country: str
    languages: tuple[str, ...]
    partner_since: int
    status: str = "active"


BERLIN_PARTNER_CITIES: tuple[PartnerCity, ...] = (
    PartnerCity("los-angeles", "Los Angeles", "US", ("en", "es"), 1967),
    PartnerCity("paris", "Paris", "FR", ("fr",), 1987),
    PartnerCity("madrid", "Madrid", "ES", ("es",), 1988),
    PartnerCity("istanbul", "Istanbul", "TR", ("tr",), 1989),
    PartnerCity("warsaw", "Warsaw", "PL", ("pl",), 1991),
    PartnerCity("moscow", "Moscow", "RU", ("ru",), 1991, "suspended"),
    PartnerCity("brussels", "Brussels", "BE", ("fr", "nl"), 1992),
    PartnerCity("budapest", "Budapest", "HU", ("hu",), 1992),
    PartnerCity("tashkent", "Tashkent", "UZ", ("uz", "ru"), 1993),
    PartnerCity("mexico-city", "Mexico City", "MX", ("es",), 1993),
    PartnerCity("jakarta", "Jakarta", "ID", ("id",), 1993),
    PartnerCity("beijing", "Beijing", "CN", ("zh",), 1994),
    PartnerCity("tokyo", "Tokyo", "JP", ("ja",), 1994),
    PartnerCity("buenos-aires", "Buenos Aires", "AR", ("es",), 1994),
    PartnerCity("prague", "Prague", "CZ", ("cs",), 1995),
    PartnerCity("windhoek", "Windhoek", "NA", ("en", "af", "de"), 2000),
    PartnerCity("london", "London", "GB", ("en",), 2000),
)

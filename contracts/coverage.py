"""Coverage: the registered-poor households that industry income reached, per village (and township, county).

The one definition every reader uses: `farmlink coverage` and the pairing office's reports (on the settlement
service's tables), the gateway's office page (on its own projection) and the audit (on the events themselves).

- A household's industry income is every fen paid to it (PaymentMade, all products together).
- A registered-poor household is *covered* when that income is above zero; `with_income` counts the covered,
  `without_income` the others; `paid_fen` is what every household of the place was paid, registered-poor or not.

Here as SQL fragments, for the readers of a projection (any schema holding `households (household_id, county,
township, village, registered_poor)` and `incomes (household_id, product, paid_fen)`), and as a pure fold of
households, for the audit; a test holds the two to the same answer.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

COUNTS = ("registered_poor", "with_income", "without_income", "paid_fen")
"""What coverage counts for a place, in the order every reader shows it."""


def covered(registered_poor: bool, paid_fen: int) -> bool:
    """Whether a household is a registered-poor household that industry income reached."""
    return registered_poor and paid_fen > 0


# ---------------------------------------------------------------- in SQL


def paid_by_household(schema: str) -> str:
    """A query of each household's industry income (`household_id`, `fen`) in `schema`: a CTE's body."""
    return f'SELECT household_id, sum(paid_fen)::bigint AS fen FROM "{schema}".incomes GROUP BY household_id'


def registered_poor_sql(household: str = "h") -> str:
    """The SQL aggregate counting registered-poor households (`household`: the households table's alias)."""
    return f"count(*) FILTER (WHERE {household}.registered_poor)"


def with_income_sql(household: str = "h", fen: str = "paid.fen") -> str:
    """The SQL aggregate counting the covered households (`fen`: the household's income, NULL for none)."""
    return f"count(*) FILTER (WHERE {household}.registered_poor AND coalesce({fen}, 0) > 0)"


def without_income_sql(household: str = "h", fen: str = "paid.fen") -> str:
    """The SQL aggregate counting the registered-poor households that income has not reached."""
    return f"count(*) FILTER (WHERE {household}.registered_poor AND coalesce({fen}, 0) = 0)"


def village_coverage_sql(schema: str, *, with_households: bool = False) -> str:
    """The query of coverage per village in `schema` (county, township, village, [households,] COUNTS), ordered by place."""
    households = "count(*) AS households, " if with_households else ""
    return f"""WITH paid AS ({paid_by_household(schema)})
           SELECT h.county, h.township, h.village, {households}
                  {registered_poor_sql()} AS registered_poor,
                  {with_income_sql()} AS with_income,
                  {without_income_sql()} AS without_income,
                  coalesce(sum(paid.fen), 0)::bigint AS paid_fen
           FROM "{schema}".households h LEFT JOIN paid USING (household_id)
           GROUP BY h.county, h.township, h.village ORDER BY h.county, h.township, h.village"""


# ---------------------------------------------------------------- as a fold


@dataclass(frozen=True)
class Household:
    """One household as coverage sees it: where it is, whether it is registered poor, and its industry income."""

    county: str
    township: str
    village: str
    registered_poor: bool
    paid_fen: int


def village_coverage(households: Iterable[Household]) -> list[dict[str, Any]]:
    """Coverage per village (county, township, village, COUNTS), the villages sorted by county, township, village."""
    villages: dict[tuple[str, str, str], dict[str, Any]] = {}
    for h in households:
        key = (h.county, h.township, h.village)
        place = villages.setdefault(key, {"county": key[0], "township": key[1], "village": key[2], **dict.fromkeys(COUNTS, 0)})
        place["paid_fen"] += h.paid_fen
        if h.registered_poor:
            place["registered_poor"] += 1
            place["with_income" if covered(h.registered_poor, h.paid_fen) else "without_income"] += 1
    return [villages[key] for key in sorted(villages)]


def county_coverage(villages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Coverage per county, summed from its villages' rows, in the order the counties first come."""
    counties: dict[str, dict[str, Any]] = {}
    for village in villages:
        county = counties.setdefault(village["county"], {"county": village["county"], **dict.fromkeys(COUNTS, 0)})
        for name in COUNTS:
            county[name] += village[name]
    return list(counties.values())

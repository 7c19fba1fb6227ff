"""Coverage's SQL (contracts/coverage.py) on the real PostgreSQL gives what its fold gives on the same households:
the one definition that `farmlink coverage`, the pairing office's reports, the gateway's office page and the audit use."""

import uuid

import asyncpg
import pytest

from contracts.coverage import Household, paid_by_household, village_coverage, village_coverage_sql, with_income_sql

pytestmark = pytest.mark.integration

HOUSEHOLDS = [  # household_id, county, township, village, registered_poor
    ("h1", "Yanhe", "Ketian", "南庄", True),
    ("h2", "Yanhe", "Ketian", "南庄", True),
    ("h3", "Yanhe", "Ketian", "南庄", False),
    ("h4", "Yanhe", "Tangba", "Shuitian", True),
    ("h5", "Yuping", "Tianping", "Xinzhai", True),
    ("h6", "Yuping", "Tianping", "Xinzhai", True),
]
INCOMES = [  # household_id, product, paid_fen: two products, a zero, a household not registered poor
    ("h1", "chili", 24_000),
    ("h1", "tea_leaf", 1_000),
    ("h2", "chili", 0),
    ("h3", "chili", 16_000),
    ("h5", "oil_tea_fruit", 500),
]


@pytest.fixture
async def schema(infrastructure):
    name = f"coverage_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(infrastructure.dsn)
    try:
        await conn.execute(f"""CREATE SCHEMA "{name}";
            CREATE TABLE "{name}".households (household_id text PRIMARY KEY, county text, township text, village text,
                                              registered_poor boolean NOT NULL);
            CREATE TABLE "{name}".incomes (household_id text, product text, paid_fen bigint NOT NULL,
                                           PRIMARY KEY (household_id, product))""")
        await conn.executemany(f'INSERT INTO "{name}".households VALUES ($1, $2, $3, $4, $5)', HOUSEHOLDS)
        await conn.executemany(f'INSERT INTO "{name}".incomes VALUES ($1, $2, $3)', INCOMES)
        yield conn, name
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.close()


def _fold() -> list[dict]:
    paid: dict[str, int] = {}
    for household_id, _, fen in INCOMES:
        paid[household_id] = paid.get(household_id, 0) + fen
    return village_coverage(Household(c, t, v, poor, paid.get(h, 0)) for h, c, t, v, poor in HOUSEHOLDS)


def _by_place(rows) -> dict:
    return {(r["county"], r["township"], r["village"]): dict(r) for r in rows}


async def test_the_sql_and_the_fold_give_the_same_coverage_per_village(schema):
    conn, name = schema
    rows = await conn.fetch(village_coverage_sql(name))
    assert _by_place(rows) == _by_place(_fold())
    assert _by_place(rows)[("Yanhe", "Ketian", "南庄")] == {
        "county": "Yanhe",
        "township": "Ketian",
        "village": "南庄",
        "registered_poor": 2,
        "with_income": 1,
        "without_income": 1,
        "paid_fen": 41_000,
    }


async def test_the_office_page_asks_for_the_households_as_well(schema):
    conn, name = schema
    rows = await conn.fetch(village_coverage_sql(name, with_households=True))
    assert [(r["village"], r["households"]) for r in rows] == [("南庄", 3), ("Shuitian", 1), ("Xinzhai", 2)]
    assert [{k: v for k, v in dict(r).items() if k != "households"} for r in rows] == [
        dict(r) for r in await conn.fetch(village_coverage_sql(name))
    ]


async def test_the_fragments_count_the_covered_households_of_any_area(schema):
    conn, name = schema
    covered = await conn.fetchval(f"""WITH paid AS ({paid_by_household(name)})
        SELECT {with_income_sql()} FROM "{name}".households h LEFT JOIN paid USING (household_id) WHERE h.township = 'Ketian'""")
    assert covered == 1

"""`farmlink what-if`: the recorded journal replayed with changed commitment terms, beside what was.

The question a county asks before it renews a floor promise: had Yuping's floor for oil-tea fruit been
460 fen instead of 420, what would each household and each village have earned? The answer comes from
the log alone, through the same pure path the audit re-executes:

1. `Changes.parse` reads the terms (`--floor`, `--cap`, `--per-mu`, `--valid-to`, each KEY=VALUE);
2. `journals_with` resolves each KEY against the journal's `CommitmentMade` facts and puts the changed
   values into copies of those entries (the recorded log is never modified), after checking the
   changed commitment with the input model's own validation (`contracts.inputs.Commitment`);
3. `replay` re-executes every product's journal with the audit's entry point
   (`farmlink.audit.replay.re_execute_products`: `fact_from` -> `Book.process` -> `outcome_event`), so
   each entry is decided under the rules version its journal adopted at its recorded position;
4. `compare` sets the replayed fills beside the recorded `FillMade` events, per household (with its
   cooperative's village, township and county and its registered-poor flag, from `CooperativeRegistered`)
   and per village: fen earned as recorded and as replayed, the difference, and how many fills changed.

KEY is a product of the catalogue (every commitment of that product) or a commitment id (that
commitment alone). A name that is both is taken as the product; `commitment:ID` always means the
commitment. A commitment's own term wins over its product's, whatever their order on the command line.
`--cap KEY=none` and `--per-mu KEY=none` lift the limit (the fields are optional in the contract).

Everything but `load_log` is pure; nothing is ever written: the CLI reads as the auditor's read-only role
in read-only transactions and replays in memory. Money is integer fen throughout; rows are sorted by
county, township, village and household id.

The package: `terms` (the changes and the journals they give), `comparison` (replay and compare) and `output`
(JSON, JSON lines, CSV, tables).
"""

from farmlink.office.whatif.comparison import (
    HouseholdRow,
    Totals,
    VillageRow,
    WhatIf,
    compare,
    load_log,
    places_of,
    recorded_fills,
    replay,
    what_if,
)
from farmlink.office.whatif.output import (
    CHANGE_COLUMNS,
    CSV_COLUMNS,
    FORMAT,
    FORMAT_VERSION,
    HOUSEHOLD_COLUMNS,
    VILLAGE_COLUMNS,
    as_csv,
    as_json,
    as_jsonl,
    print_tables,
    signed,
    totals_line,
)
from farmlink.office.whatif.terms import (
    COMMITMENT_PREFIX,
    EXAMPLE,
    NO_LIMIT,
    TERMS,
    AppliedChange,
    ChangeError,
    Changes,
    Term,
    journals_with,
    parse_term,
)

__all__ = [
    "CHANGE_COLUMNS",
    "COMMITMENT_PREFIX",
    "CSV_COLUMNS",
    "EXAMPLE",
    "FORMAT",
    "FORMAT_VERSION",
    "HOUSEHOLD_COLUMNS",
    "NO_LIMIT",
    "TERMS",
    "VILLAGE_COLUMNS",
    "AppliedChange",
    "ChangeError",
    "Changes",
    "HouseholdRow",
    "Term",
    "Totals",
    "VillageRow",
    "WhatIf",
    "as_csv",
    "as_json",
    "as_jsonl",
    "compare",
    "journals_with",
    "load_log",
    "parse_term",
    "places_of",
    "print_tables",
    "recorded_fills",
    "replay",
    "signed",
    "totals_line",
    "what_if",
]

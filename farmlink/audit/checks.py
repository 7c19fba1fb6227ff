"""The audit's core checks, one family per module: is the log intact (`chains.py`: hash chains, unique event
ids), and do the recorded fills and payments keep the promises of matching-rules.md (`market_invariants.py`,
`settlement_invariants.py`, reading amounts with `amounts.py`)?

Every check is a pure function of the log (and, for the invariants, of the re-execution's
grouping of the matching streams): no I/O, plain dict access on the hot path, so a log of a
million events is checked in one pass per check. Each finding names the exact record.
"""

from __future__ import annotations

from farmlink.audit.chains import check_hash_chains as check_hash_chains, check_unique_event_ids as check_unique_event_ids
from farmlink.audit.market_invariants import check_market_invariants
from farmlink.audit.model import AuditLog, Finding
from farmlink.audit.replay import ReExecution
from farmlink.audit.settlement_invariants import check_settlement_invariants


def check_invariants(log: AuditLog, reexecution: ReExecution) -> list[Finding]:
    """The promises of matching-rules.md, checked on the RECORDED fills and payments against the journal's
    terms, independently of the matcher's Book (re-execution only lends its grouping of the streams):

    no lot, order or commitment (cap) overfilled; per-mu room respected; order fills at their limit
    price, commitment fills at max(floor, market as of their date) with the right basis; revenue to
    the fen and shared out to the households by largest remainder; each payment split the same way
    over the lot's contributions and within the fill's revenue; deliveries within the fill's quantity.
    """
    findings, pairs = check_market_invariants(reexecution.streams)
    return findings + check_settlement_invariants(log, pairs)

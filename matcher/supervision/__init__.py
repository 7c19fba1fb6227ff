"""The supervision ledger's rules (问题清单、整改台账、销号管理), pure: the facts they read (`facts`) and what a round
finds and cures (`rules`).

They live beside the matching engine for the reason it lives here: two readers run the same pure code and must
agree. The pairing service runs them at each supervision round over the facts it kept and records what they
opened and cured; the audit runs them over the log (farmlink/audit/problems.py) and compares. Like the rest of
`matcher`, they import nothing of ours outside it.
"""

"""Digests a third party holds: a log that only grew still extends its digest; an edit before it does
not; the proof for one event leads from its leaf to the digest's root."""

from __future__ import annotations

import dataclasses

import pytest

from farmlink.audit.checks import check_hash_chains
from farmlink.audit.ledger import Digest, audit_path, digest_of, extends, leaf_hash, merkle_root, proof_for, root_from_path, Head
from tests.unit.test_audit_checkpoints import reseal_stream, season

pytestmark = pytest.mark.unit


def verify(log, digest: Digest):
    return extends(log, digest, check_hash_chains(log))


def test_a_log_extends_its_own_digest_and_the_digest_reads_back_from_its_text():
    log = season(2000)
    digest = digest_of(log)
    assert Digest.parse(digest.text()) == digest
    assert digest.events == log.count() and verify(log, digest) == []


def test_new_events_after_the_digest_are_not_a_finding():
    digest = digest_of(season(2000))
    assert verify(season(3000), digest) == []


def test_an_event_edited_before_the_digest_is_found_where_its_chain_breaks():
    digest = digest_of(season(2000))
    log = season(3000)
    rows = log.by_schema["cooperative"]
    index = next(i for i, r in enumerate(rows) if r.event_type == "HarvestRecorded")
    rows[index] = dataclasses.replace(rows[index], payload={**rows[index].payload, "village": "forged"})
    findings = verify(log, digest)
    assert findings and all(f.check == "digest" and f.code == "AUD009" for f in findings)
    assert any(rows[index].place in f.where for f in findings)


def test_an_event_edited_and_resealed_before_the_digest_changes_the_root():
    digest = digest_of(season(2000))
    log = season(3000)
    rows = log.by_schema["cooperative"]
    index = next(i for i, r in enumerate(rows) if r.event_type == "HarvestRecorded")
    rows[index] = dataclasses.replace(rows[index], payload={**rows[index].payload, "village": "forged"})
    reseal_stream(log, "cooperative", rows[index].stream_id)
    [finding] = verify(log, digest)
    assert "Merkle root" in finding.message and "changed, deleted or inserted" in finding.message


def test_an_edit_after_the_digest_is_no_concern_of_the_digest():
    digest = digest_of(season(2000))
    log = season(3000)
    rows = log.by_schema["buyer"]
    index = len(rows) - 1
    rows[index] = dataclasses.replace(rows[index], payload={**rows[index].payload, "buyer_id": "forged"})
    assert verify(log, digest) == []  # the full audit's hash_chain check finds it; the digest vouches for what came before


def test_a_digest_that_is_not_one_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="root"):
        Digest.parse('{"format":"farmlink.audit.digest","version":1,"positions":{},"events":0,"streams":0,"root":"xyz"}')
    with pytest.raises(ValueError, match="not a digest"):
        Digest.parse("hello")


def test_the_proof_of_an_event_leads_from_its_streams_head_to_the_digests_root():
    digest = digest_of(season(2000))
    log = season(3000)
    event = log.by_schema["matching"][10]
    proof = proof_for(log, digest, event.event_id)
    assert proof["matches_digest"] and proof["root"] == digest.root
    links = proof["chain_to_head"]
    assert [link["prev_hash"] for link in links] == [event.hash, *[link["hash"] for link in links[:-1]]]
    assert (links[-1]["hash"] if links else event.hash) == proof["head"]["hash"]
    steps = [(step["side"], step["hash"]) for step in proof["merkle_path"]]
    assert root_from_path(bytes.fromhex(proof["leaf"]), steps).hex() == digest.root


def test_every_leaf_of_an_uneven_tree_proves_the_same_root():
    leaves = [leaf_hash("s", f"stream-{n}", Head(1, n + 1, f"{n:064x}")) for n in range(7)]
    root = merkle_root(leaves)
    assert all(root_from_path(leaf, audit_path(leaves, index)) == root for index, leaf in enumerate(leaves))

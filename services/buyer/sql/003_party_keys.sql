-- Keys of buyers registered before party_keys existed (events/sql/006_party_keys.sql).
INSERT INTO party_keys (party, public_key)
SELECT 'buyer:' || buyer_id, public_key FROM buyers
ON CONFLICT DO NOTHING;

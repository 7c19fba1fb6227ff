-- Keys of cooperatives registered before party_keys existed (events/sql/006_party_keys.sql).
INSERT INTO party_keys (party, public_key)
SELECT 'cooperative:' || cooperative_id, public_key FROM cooperatives WHERE public_key IS NOT NULL
ON CONFLICT DO NOTHING;

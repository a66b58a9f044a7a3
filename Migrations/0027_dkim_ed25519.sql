-- Ed25519 DKIM keys (RFC 8463) beside the RSA ones: a domain may opt in to a second signature.
-- Existing keys are RSA. An Ed25519 key is stored like an RSA key (SecretBox-sealed, here its raw 32 bytes)
-- under its own selector; its public_key is the raw 32-byte public key in base64 (the record's p=).

ALTER TABLE dkim_keys ADD COLUMN algorithm text NOT NULL DEFAULT 'rsa' CHECK (algorithm IN ('rsa', 'ed25519'));

ALTER TABLE dkim_keys DROP CONSTRAINT dkim_keys_bits_check;
ALTER TABLE dkim_keys ADD CONSTRAINT dkim_keys_bits_check
    CHECK ((algorithm = 'rsa' AND bits IN (1024, 2048)) OR (algorithm = 'ed25519' AND bits = 256));

-- One signing key and at most one waiting key per domain and algorithm (the RSA rotation is unchanged;
-- an Ed25519 key is active from the start and signs once its record checks out).
DROP INDEX dkim_keys_one_active;
DROP INDEX dkim_keys_one_pending;
CREATE UNIQUE INDEX dkim_keys_one_active ON dkim_keys (domain_id, algorithm) WHERE state = 'active';
CREATE UNIQUE INDEX dkim_keys_one_pending ON dkim_keys (domain_id, algorithm) WHERE state = 'pending';

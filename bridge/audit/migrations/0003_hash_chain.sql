-- Tamper evidence: every event belongs to a chain (route + "/" + partition) and
-- stores its position and SHA-256(prev_hash || canonical(row)); see chain.go.
-- Rows written before this migration keep NULLs and are reported as unchained
-- by Verify.
ALTER TABLE audit_event
    ADD COLUMN chain     text,
    ADD COLUMN seq       bigint,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash      bytea,
    ADD CONSTRAINT audit_event_chain_seq UNIQUE (chain, seq);

-- The last (seq, hash) of every chain. Append locks a chain's head row for the
-- length of its transaction, so writers of one chain take turns and writers of
-- different chains do not wait for each other. A deleted last row shows up as
-- a head that disagrees with the chain.
CREATE TABLE audit_chain_head (
    chain text   PRIMARY KEY,
    seq   bigint NOT NULL,
    hash  bytea  NOT NULL
);

CREATE INDEX audit_event_occurred_at ON audit_event (occurred_at);

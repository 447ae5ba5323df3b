-- One row per reading and outcome: the receive time and the number of
-- delivery attempts move into the outcome row, which replaces the received,
-- mapped and retried rows of earlier versions (those rows stay as written).
ALTER TABLE audit_event
    ADD COLUMN received_at timestamptz,
    ADD COLUMN attempts    integer NOT NULL DEFAULT 0;

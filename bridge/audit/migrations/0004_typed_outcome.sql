-- Typed outcome fields: the pipeline stage (map, encode, deliver,
-- dead-letter), the destination kind (fhir, mllp) and a short reason code,
-- so that no reader parses them back out of detail or location. Rows written
-- before keep empty values (and the v1 canonical form of their hash).
ALTER TABLE audit_event
    ADD COLUMN stage            text NOT NULL DEFAULT '',
    ADD COLUMN destination_kind text NOT NULL DEFAULT '',
    ADD COLUMN reason           text NOT NULL DEFAULT '';

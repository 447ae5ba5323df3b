-- One row per audit event. Append-only: the bridge never updates or deletes.
CREATE TABLE audit_event (
    id             bigserial PRIMARY KEY,
    occurred_at    timestamptz NOT NULL,
    action         text        NOT NULL,
    outcome        text        NOT NULL,
    actor          text        NOT NULL,
    route          text        NOT NULL DEFAULT '',
    topic          text        NOT NULL DEFAULT '',
    kafka_partition integer    NOT NULL DEFAULT 0,
    kafka_offset   bigint      NOT NULL DEFAULT 0,
    device         text        NOT NULL DEFAULT '',
    patient        text        NOT NULL DEFAULT '',
    resource       text        NOT NULL DEFAULT '',
    status         integer     NOT NULL DEFAULT 0,
    location       text        NOT NULL DEFAULT '',
    detail         text        NOT NULL DEFAULT '',
    correlation_id text        NOT NULL DEFAULT ''
);

CREATE INDEX audit_event_route_position ON audit_event (route, topic, kafka_partition, kafka_offset);
CREATE INDEX audit_event_patient ON audit_event (patient, occurred_at) WHERE patient <> '';
CREATE INDEX audit_event_device ON audit_event (device, occurred_at) WHERE device <> '';

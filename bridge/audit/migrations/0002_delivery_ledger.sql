-- MLLP delivery ledger: a message whose acknowledgement (AA) was received is
-- recorded here before its Kafka offset is committed, so a redelivery after a
-- crash is recognised by (route, MSH-10) and not sent to the engine again.
CREATE TABLE delivery_ledger (
    route       text        NOT NULL,
    message_id  text        NOT NULL,
    acked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (route, message_id)
);

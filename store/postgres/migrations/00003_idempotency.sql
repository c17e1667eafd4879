-- +goose Up
-- Idempotency-Keys of message POSTs: a row per user and key, written in the
-- transaction that appends the key's event (see idempotency.go). created_ms
-- is the event's time; rows past the keys' lifetime are pruned.
CREATE TABLE idempotency_keys (
	username   text NOT NULL,
	key        text NOT NULL,
	request    bytea NOT NULL,
	event_id   bigint NOT NULL,
	created_ms bigint NOT NULL,
	PRIMARY KEY (username, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_ms);

-- +goose Down
DROP TABLE idempotency_keys;

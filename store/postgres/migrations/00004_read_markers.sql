-- +goose Up
-- How far each user has read each room ('room:NAME') and conversation
-- ('user:NAME'). A read event is logged like any other (it resumes with
-- Last-Event-ID and reaches every instance) and moves its user's marker in
-- the same transaction, never backwards; read_id holds the event's marker.
CREATE TABLE read_markers (
	username text NOT NULL,
	scope    text NOT NULL,
	read_id  bigint NOT NULL,
	PRIMARY KEY (username, scope)
);
ALTER TABLE events ADD COLUMN read_id bigint;
-- Replay gives each user their own read events: a seek, as for private ones.
CREATE INDEX events_read ON events (subject, id) WHERE kind = 'read';

-- +goose Down
DROP INDEX events_read;
ALTER TABLE events DROP COLUMN read_id;
DROP TABLE read_markers;

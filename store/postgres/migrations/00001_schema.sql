-- +goose Up
-- The same tables as the SQLite store's, with one addition: log_head.
CREATE TABLE users (
	name_key      text PRIMARY KEY, -- lower(name): names are unique in any case
	name          text NOT NULL,
	password_hash bytea NOT NULL,
	created_ms    bigint NOT NULL
);
CREATE TABLE sessions (
	token_hash bytea PRIMARY KEY,
	username   text NOT NULL,
	created_ms bigint NOT NULL
);
-- Ids are given by Append from log_head, never by a sequence: a sequence
-- hands out ids that a rolled-back transaction never gives back, and
-- commits in another order than it hands them out.
CREATE TABLE events (
	id        bigint PRIMARY KEY,
	kind      text NOT NULL,
	room      text,
	sender    text,
	recipient text,
	subject   text,
	text      text,
	status    text,
	members   integer,
	online    integer,
	ts_ms     bigint NOT NULL
);
CREATE INDEX events_room ON events (room, id) WHERE room IS NOT NULL;
CREATE INDEX events_private_sender ON events (sender, id) WHERE kind = 'private';
CREATE INDEX events_private_recipient ON events (recipient, id) WHERE kind = 'private';
-- The newest id ever appended. Its one row is the log's lock: an appender
-- holds it FOR UPDATE from reading the head until its commit.
CREATE TABLE log_head (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	id  bigint NOT NULL
);
INSERT INTO log_head (id) VALUES (0);
CREATE TABLE rooms (
	name       text PRIMARY KEY,
	created_ms bigint NOT NULL
);
-- One row per membership period: rejoining starts a new period, so replay
-- can give a user exactly the room events between their join and leave.
CREATE TABLE memberships (
	username text NOT NULL,
	room     text NOT NULL,
	join_id  bigint NOT NULL,
	leave_id bigint,
	PRIMARY KEY (username, room, join_id)
);
CREATE INDEX memberships_current ON memberships (room, username) WHERE leave_id IS NULL;
CREATE INDEX memberships_ended ON memberships (leave_id) WHERE leave_id IS NOT NULL;
CREATE TABLE meta (
	key   text PRIMARY KEY,
	value bigint NOT NULL
);

-- +goose Down
DROP TABLE meta, memberships, rooms, log_head, events, sessions, users;

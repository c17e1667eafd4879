-- +goose Up
-- Sessions expire a TTL after their last recorded use (see auth). A session
-- made before this migration counts as used now, so the upgrade logs nobody
-- out: each such session lives its full TTL from here.
ALTER TABLE sessions ADD COLUMN last_used_ms bigint NOT NULL
	DEFAULT (extract(epoch FROM now()) * 1000)::bigint;
ALTER TABLE sessions ALTER COLUMN last_used_ms DROP DEFAULT;
-- Logout everywhere deletes by user; pruning by age.
CREATE INDEX sessions_username ON sessions (username);
CREATE INDEX sessions_last_used ON sessions (last_used_ms);

-- +goose Down
DROP INDEX sessions_last_used;
DROP INDEX sessions_username;
ALTER TABLE sessions DROP COLUMN last_used_ms;

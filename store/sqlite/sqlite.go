// Package sqlite is the single-machine store: accounts, sessions,
// memberships and the ordered event log in one SQLite file.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ssechat/ssechat/chat"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

// Store is a chat store in one SQLite file. Every write is a transaction
// committed with synchronous=FULL in WAL mode, so an acknowledged write
// survives kill -9 and power loss.
//
// SQLite allows one writer at a time; a pool of writers only trades
// waiting in Go for SQLITE_BUSY errors. So writes go through a pool of one
// connection and reads through their own pool, which WAL lets run beside
// the writer.
type Store struct {
	write *sql.DB
	read  *sql.DB
	execs *execBatcher
	// The statements of every append are prepared once: preparing the
	// event insert for every batch was 2.5 % of the write path's CPU,
	// the key insert for every keyed message a tenth.
	insertEvent *sql.Stmt
	insertKey   *sql.Stmt
	findKeys    *sql.Stmt
}

const schema = `
CREATE TABLE IF NOT EXISTS users (
	name_key      TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	password_hash BLOB NOT NULL,
	created_ms    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
	token_hash   BLOB PRIMARY KEY,
	username     TEXT NOT NULL,
	created_ms   INTEGER NOT NULL,
	last_used_ms INTEGER NOT NULL -- older files get it from migrateSessions
);
CREATE TABLE IF NOT EXISTS events (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	kind      TEXT NOT NULL,
	room      TEXT,
	sender    TEXT,
	recipient TEXT,
	subject   TEXT,
	text      TEXT,
	status    TEXT,
	members   INTEGER,
	online    INTEGER,
	ts_ms     INTEGER NOT NULL,
	read_id   INTEGER -- older files get it from migrateReads
);
CREATE INDEX IF NOT EXISTS events_room ON events (room, id) WHERE room IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_private_sender ON events (sender, id) WHERE kind = 'private';
CREATE INDEX IF NOT EXISTS events_private_recipient ON events (recipient, id) WHERE kind = 'private';
CREATE INDEX IF NOT EXISTS events_read ON events (subject, id) WHERE kind = 'read';
-- Presence left the log (it is live state now); older files have this index.
DROP INDEX IF EXISTS events_presence;
CREATE TABLE IF NOT EXISTS rooms (
	name       TEXT PRIMARY KEY,
	created_ms INTEGER NOT NULL
);
-- One row per membership period: rejoining starts a new period, so replay
-- can give a user exactly the room events between their join and leave.
CREATE TABLE IF NOT EXISTS memberships (
	username TEXT NOT NULL,
	room     TEXT NOT NULL,
	join_id  INTEGER NOT NULL,
	leave_id INTEGER,
	PRIMARY KEY (username, room, join_id)
);
CREATE INDEX IF NOT EXISTS memberships_current ON memberships (room, username) WHERE leave_id IS NULL;
-- How far each user has read each room ('room:NAME') and conversation
-- ('user:NAME'); Append moves a marker with its read event, never back.
CREATE TABLE IF NOT EXISTS read_markers (
	username TEXT NOT NULL,
	scope    TEXT NOT NULL,
	read_id  INTEGER NOT NULL,
	PRIMARY KEY (username, scope)
);
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
`

// Open opens (creating if needed) the SQLite file at path.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	write, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	if _, err := write.ExecContext(ctx, schema); err != nil {
		write.Close()
		return nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	if err := migrateSessions(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := migrateIdempotency(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := migrateReads(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	s := &Store{write: write, read: read}
	if err := s.prepare(ctx); err != nil {
		s.closeDB()
		return nil, err
	}
	s.execs = newExecBatcher(s)
	return s, nil
}

// prepare prepares the statements every append may run, once.
func (s *Store) prepare(ctx context.Context) error {
	for _, st := range []struct {
		to  **sql.Stmt
		sql string
	}{{&s.insertEvent, insertEventSQL}, {&s.insertKey, insertKeySQL}, {&s.findKeys, findKeysSQL}} {
		prepared, err := s.write.PrepareContext(ctx, st.sql)
		if err != nil {
			return fmt.Errorf("prepare %.40q: %w", st.sql, err)
		}
		*st.to = prepared
	}
	return nil
}

// createPrivate creates the database file, if missing, readable and
// writable by its owner alone: it holds password hashes, session hashes
// and every private message. SQLite gives the -wal and -shm files the
// database file's mode. An existing file keeps its mode.
func createPrivate(path string) error {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// Close closes the database; a WAL checkpoint happens on the last close.
func (s *Store) Close() error {
	s.execs.close()
	return s.closeDB()
}

// closeDB closes the prepared statements and both pools.
func (s *Store) closeDB() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.insertEvent, s.insertKey, s.findKeys} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.read.Close(), s.write.Close())...)
}

func nowMS() int64 { return time.Now().UnixMilli() }

func isUniqueViolation(err error) bool {
	var se *sqlite3.Error
	return errors.As(err, &se) && (se.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY ||
		se.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE)
}

// CreateUser registers name with the given password hash. Names are unique
// case-insensitively: chat.ECONFLICT if the name is taken in any case.
func (s *Store) CreateUser(ctx context.Context, name string, passwordHash []byte) error {
	err := s.execs.exec(ctx,
		`INSERT INTO users (name_key, name, password_hash, created_ms) VALUES (?, ?, ?, ?)`,
		strings.ToLower(name), name, passwordHash, nowMS())
	if isUniqueViolation(err) {
		return chat.Errorf(chat.ECONFLICT, "username %q is taken", name)
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// User returns the registered spelling and password hash of name, matched
// case-insensitively, or chat.ENOTFOUND.
func (s *Store) User(ctx context.Context, name string) (canonical string, passwordHash []byte, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT name, password_hash FROM users WHERE name_key = ?`,
		strings.ToLower(name)).Scan(&canonical, &passwordHash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, chat.Errorf(chat.ENOTFOUND, "no user %q", name)
	}
	if err != nil {
		return "", nil, fmt.Errorf("get user: %w", err)
	}
	return canonical, passwordHash, nil
}

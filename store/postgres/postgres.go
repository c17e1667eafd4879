// Package postgres is the store that many instances share: accounts,
// sessions, memberships and the ordered event log in PostgreSQL, the one
// truth behind every instance.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/ssechat/ssechat/chat"
)

// Store is a chat store in a PostgreSQL database, safe for any number of
// processes at once. Every write is a transaction committed with the
// server's default synchronous_commit=on: an acknowledged write is on
// disk. The tables are unqualified, so a search_path in the URL chooses
// the schema they live in.
type Store struct {
	pool *pgxpool.Pool
	// lockTimeoutSQL sets the appending transaction's
	// idle_in_transaction_session_timeout to LockIdleTimeout.
	lockTimeoutSQL string
}

// LockIdleTimeout is how long an appending transaction may hold the log's
// lock without a word to the server (while prepare runs) before the
// server ends its session. An instance that froze or lost the network in
// the middle of an append would otherwise stop every instance's appends
// until the server noticed the dead connection: with TCP keepalive's
// defaults, hours. Catching up on 1,000 events takes milliseconds, so
// this is plenty for any prepare that is not stuck.
const LockIdleTimeout = 10 * time.Second

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key that serialises migrations: the
// FNV-64a of "github.com/ssechat/ssechat/store/postgres: migrate", so that
// no other application's key collides with it. It is one key for every
// schema of a server, which only makes migrations of different schemas
// wait for each other, a few milliseconds.
const migrationLock int64 = 457440297489017258

// defaultConnectTimeout bounds a connection attempt when the URL sets no
// connect_timeout: without one, a server whose host dropped off the
// network keeps a request waiting for the kernel's TCP timeout, minutes.
const defaultConnectTimeout = 5 * time.Second

// Open connects to the database at url (a postgres:// URL or a key=value
// string; pool_max_conns and the like tune the pool, unknown parameters
// such as search_path are sent to the server) and brings its schema up to
// date. Instances that start at once take turns migrating.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, wrap("open postgres: migrate", err)
	}
	return &Store{pool: pool, lockTimeoutSQL: lockTimeoutSQL(LockIdleTimeout)}, nil
}

func lockTimeoutSQL(d time.Duration) string {
	return fmt.Sprintf(`SET LOCAL idle_in_transaction_session_timeout = %d`, d.Milliseconds())
}

// migrate applies the embedded migrations that the database lacks. goose
// runs each in a transaction and records it in goose_db_version, all while
// holding a session advisory lock, so that of several instances starting
// together one migrates and the others then find nothing to do.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// goose wants a *sql.DB; this one borrows the pool's connections and
	// leaves the pool open when closed.
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir,
		goose.WithSessionLocker(advisoryLock{migrationLock}),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// advisoryLock is a goose session locker that waits in pg_advisory_lock.
// goose's own polls pg_try_advisory_lock every second at best, which
// makes every instance but the first wait a second or more at start.
type advisoryLock struct{ key int64 }

func (l advisoryLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, l.key)
	return err
}

func (l advisoryLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
	return err
}

// Close closes the pool's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func nowMS() int64 { return time.Now().UnixMilli() }

// wrap annotates err with what was being done. An error that means the
// database could not be reached, rather than that it refused the
// statement, becomes chat.EUNAVAILABLE with the cause wrapped inside, so
// that the edge answers 503 and the client retries.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", op, err)
	if unavailable(err) {
		return &chat.Error{Code: chat.EUNAVAILABLE, Message: "database unavailable", Err: err}
	}
	return err
}

// unavailable tells whether err says the server is out of reach (no
// connection, a broken one, no answer in time, a server shutting down or
// starting up) rather than that it answered with an error.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // admin or crash shutdown, cannot connect now
			return true
		case pgErr.Code == "53300": // too many connections
			return true
		case pgErr.Code == "25P03": // idle_in_transaction_session_timeout: see LockIdleTimeout
			return true
		}
		// A failed connection attempt wraps the server's reason; any other
		// error the server sent is about the statement.
		var connErr *pgconn.ConnectError
		return errors.As(err, &connErr)
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// CreateUser registers name with the given password hash. Names are unique
// case-insensitively: chat.ECONFLICT if the name is taken in any case.
func (s *Store) CreateUser(ctx context.Context, name string, passwordHash []byte) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO users (name_key, name, password_hash, created_ms) VALUES ($1, $2, $3, $4)`,
		strings.ToLower(name), name, passwordHash, nowMS())
	if isUniqueViolation(err) {
		return chat.Errorf(chat.ECONFLICT, "username %q is taken", name)
	}
	return wrap("create user", err)
}

// User returns the registered spelling and password hash of name, matched
// case-insensitively, or chat.ENOTFOUND.
func (s *Store) User(ctx context.Context, name string) (canonical string, passwordHash []byte, err error) {
	err = s.pool.QueryRow(ctx, `SELECT name, password_hash FROM users WHERE name_key = $1`,
		strings.ToLower(name)).Scan(&canonical, &passwordHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, chat.Errorf(chat.ENOTFOUND, "no user %q", name)
	}
	if err != nil {
		return "", nil, wrap("get user", err)
	}
	return canonical, passwordHash, nil
}

package edge_test

import (
	"net/http"
	"os"
	"testing"
)

// The SQLite file holds password hashes and every private message: the
// server creates it, and SQLite its -wal and -shm files, for its owner
// alone.
func TestSQLiteFilesArePrivate(t *testing.T) {
	srv := start(t)
	hc := client(t, "")
	alice, _ := login(t, hc, srv.URL, "alice")
	mustDo(t, hc, http.StatusOK, "POST", srv.URL+"/api/rooms/lobby/join", alice, "")
	mustDo(t, hc, http.StatusCreated, "POST", srv.URL+"/api/rooms/lobby/messages", alice, `{"text":"secret"}`)
	for _, name := range []string{srv.DB, srv.DB + "-wal", srv.DB + "-shm"} {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", name, mode)
		}
	}
}

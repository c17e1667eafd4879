//go:build unix

// Package readme_test runs what README.md tells a newcomer to type, taken
// from the README itself at test time, so that a walkthrough that drifts
// from the server fails a test:
//
//   - "Chat from a terminal": the built binary on a free loopback port with
//     a fresh SQLite file; terminal 1's and terminal 2's commands run with
//     bash, verbatim but for the port; terminal 1 must show exactly the
//     sample output that follows them (timestamps aside), and the resume
//     command must give exactly what the README says.
//   - "Many instances": deploy/cluster.sh (its env overrides move the ports
//     and give the run a database of its own), the three terminals of
//     "Chat through nginx while killing instances" and the one-liners after
//     them, then Ctrl-C (SIGINT) and nothing of the run left running.
//   - "Scripts and bots": its go install line, verbatim, into a GOBIN of the
//     test's; the two terminals with that chat against the built binary on
//     a free port (CHAT_URL); terminal 1 must show the sample output (times
//     aside); then Ctrl-C and the same tail again, tail --json and
//     tail -f app.log | chat say ops, as the prose gives them.
//
// The cluster test needs PostgreSQL (CHAT_POSTGRES_URL, default
// postgres://postgres@127.0.0.1:5432), Redis (CHAT_REDIS_URL, default
// redis://127.0.0.1:6379/0), nginx, psql, redis-cli, curl and jq; it skips
// when one is missing unless CHAT_REQUIRE_SERVICES=1 (CI), which fails it.
// The terminal test needs bash, curl and jq alike, the scripts test bash, go
// and tail.
package readme_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// binDir holds the ssechat binary, built on first use.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ssechat-readme-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// serverBinary builds the ssechat command (go build -o, as a newcomer
// would) once for the package and returns its path.
func serverBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(binDir, "ssechat")
	buildOnce.Do(func() {
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Dir = repoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// repoRoot is the module's directory, found from this source file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

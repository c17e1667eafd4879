package browser

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestClientUnits runs the browser client's unit tests (static/_test: the
// reducer, the SSE parser, the reconnect policy, the outbox, the pure parts
// of the controllers) with Node's
// test runner. They run on a copy that has a package.json saying the .js
// files are ES modules, as browsers load them: Node before 20.19 would
// take them for CommonJS, and a package.json in static/ would be served.
func TestClientUnits(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CHAT_REQUIRE_SERVICES") == "1" {
			t.Fatalf("CHAT_REQUIRE_SERVICES=1 but node is missing: install nodejs (.ci/run does)")
		}
		t.Skip("skipping the client's unit tests: node is missing (install nodejs)")
	}
	dir := t.TempDir()
	static := filepath.Join("..", "..", "static")
	if err := os.CopyFS(filepath.Join(dir, "js"), os.DirFS(filepath.Join(static, "js"))); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "_test"), os.DirFS(filepath.Join(static, "_test"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"type": "module"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "--test", "_test/")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test static/_test: %v\n%s", err, out)
	}
	t.Logf("node --test static/_test:\n%s", tail(out, 12))
}

// tail is the last n lines of out: the runner's summary.
func tail(out []byte, n int) []byte {
	end := len(out)
	for i := len(out) - 1; i >= 0 && n >= 0; i-- {
		if out[i] == '\n' {
			n--
			if n < 0 {
				return out[i+1 : end]
			}
		}
	}
	return out
}

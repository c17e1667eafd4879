package readme_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ssechat/ssechat/internal/pgtest"
)

// posts is how many messages terminal 2 sends: the README's loop says
// 500 (100 s at one per 200 ms); 30 take the test through a kill and a
// resume in about 7 s.
const posts = 30

// clusterStart bounds deploy/cluster.sh's start: it builds the binary.
const clusterStart = 3 * time.Minute

// services is where the cluster's PostgreSQL and Redis are, and the
// environment that tells deploy/cluster.sh.
type services struct {
	adminURL string // PostgreSQL, database postgres
	redisURL string
	env      []string // PGHOST, PGPORT, PGUSER, REDIS_URL
}

// needServices finds what deploy/cluster.sh needs, or skips the test
// (fails it under CHAT_REQUIRE_SERVICES=1): nginx, psql, redis-cli, curl,
// PostgreSQL (CHAT_POSTGRES_URL's server, default 127.0.0.1:5432, user
// postgres, no password) and Redis (CHAT_REDIS_URL, default
// redis://127.0.0.1:6379/0).
func needServices(t *testing.T) services {
	t.Helper()
	needTools(t, "bash", "curl", "jq", "go", "psql", "redis-cli")
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil { // cluster.sh looks there too
			pgtest.Missing(t, "nginx is missing (apt-get install nginx-light)")
		}
	}
	pg := os.Getenv("CHAT_POSTGRES_URL")
	if pg == "" {
		pg = pgtest.DefaultURL
	}
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatalf("CHAT_POSTGRES_URL: %v", err)
	}
	u.Path = "/postgres"
	s := services{adminURL: u.String(), redisURL: os.Getenv("CHAT_REDIS_URL")}
	if s.redisURL == "" {
		s.redisURL = "redis://127.0.0.1:6379/0"
	}
	user := "postgres"
	if u.User != nil {
		user = u.User.Username()
	}
	s.env = []string{"PGHOST=" + u.Hostname(), "PGPORT=" + cmp.Or(u.Port(), "5432"), "PGUSER=" + user, "REDIS_URL=" + s.redisURL}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		pgtest.Missing(t, "PostgreSQL at %s:%s is unreachable: %v", u.Hostname(), cmp.Or(u.Port(), "5432"), err)
	}
	conn.Close(ctx)
	opt, err := redis.ParseURL(s.redisURL)
	if err != nil {
		t.Fatalf("CHAT_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		pgtest.Missing(t, "Redis at %s is unreachable: %v", s.redisURL, err)
	}
	return s
}

// TestClusterThroughNginx runs "Many instances": deploy/cluster.sh as "A
// cluster in one command" shows it, moved by its env overrides to free
// ports, a database of the run's own (dropped at the end, with its Redis
// keys) and a directory of its own; then "Chat through nginx while killing
// instances": terminal 1's reconnecting reader, terminal 2's poster
// (posts messages instead of 500), and terminal 3, which finds the
// instance holding alice's stream and kills it with -9. It asserts what
// "What you see" promises: every POST answered 201 reaches alice exactly
// once and in order across the drop; the resumed stream replays the
// messages after the last id, then sends ready, then goes on live; the
// instance comes back. Then the members and logout one-liners, and Ctrl-C
// (SIGINT), after which nothing of the run may be left running.
func TestClusterThroughNginx(t *testing.T) {
	svc := needServices(t)
	doc := readme(t)
	starts := commandLines(findSection(t, doc, "Many instances", "A cluster in one command").onlyBlock(t, "sh").text)
	if len(starts) == 0 || !strings.HasPrefix(starts[0], "deploy/cluster.sh ") {
		t.Fatalf("README.md: A cluster in one command begins with %q, want deploy/cluster.sh", starts)
	}
	startLine := starts[0]
	kill := findSection(t, doc, "Many instances", "Chat through nginx while killing instances")
	terms := terminals(t, kill.onlyBlock(t, "sh"))
	members := kill.codeSpan(t, "curl -s localhost:8080/api/rooms/lobby/members ")
	logout := kill.codeSpan(t, "curl -s -XPOST localhost:8080/api/logout ")

	// Not in t.TempDir(), whose parent only its owner may enter: nginx
	// started as root runs its workers as nobody. cluster.sh makes the
	// directory anew, mode 755.
	clusterDir, err := os.MkdirTemp("", "ssechat-readme-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	dbName := "readme_" + randomHex(6)
	t.Cleanup(func() { dropRun(t, svc, dbName, clusterDir) })
	lbPort, basePort := freePorts(t)
	lb := fmt.Sprintf("127.0.0.1:%d", lbPort)
	instanceAddr := map[string]string{
		"a": fmt.Sprintf("127.0.0.1:%d", basePort),
		"b": fmt.Sprintf("127.0.0.1:%d", basePort+1),
	}
	env := append(slices.Clone(svc.env),
		"LB_PORT="+strconv.Itoa(lbPort), "BASE_PORT="+strconv.Itoa(basePort),
		"DB_NAME="+dbName, "CLUSTER_DIR="+clusterDir)

	// deploy/cluster.sh, as typed. (Ctrl-C reaches it: the go command
	// catches SIGINT, so the test and its children do not ignore it even
	// when go test runs in the background of a script.)
	cluster := startTerm(t, "deploy/cluster.sh", repoRoot(), startLine, env...)
	t.Cleanup(func() { stopCluster(t, cluster, clusterDir) })
	cluster.waitStdout(clusterStart, "the cluster's banner, to its last line (Ctrl-C)", func(out string) bool {
		_, banner, ok := strings.Cut(out, "ssechat cluster: http://"+lb)
		return ok && strings.Contains(banner, "\n  Ctrl-C ")
	})
	banner := cluster.stdout.String()
	for name, addr := range instanceAddr {
		if !strings.Contains(banner, "instance "+name+": http://"+addr) {
			t.Errorf("cluster.sh's banner names no instance %s on %s:\n%s", name, addr, banner)
		}
	}
	if !strings.Contains(banner, "created the database "+dbName) {
		t.Errorf("cluster.sh did not say it created the database %s:\n%s", dbName, banner)
	}
	if res, err := http.Get("http://" + lb + "/"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("nginx on %s: %v %v", lb, res, err)
	} else {
		res.Body.Close()
	}

	local := func(script string) string { return replace(t, script, "localhost:8080", lb) }
	inDir := func(script string) string { return replace(t, script, "/tmp/ssechat-cluster", clusterDir) }
	dir := t.TempDir()
	aliceVars, bobVars := filepath.Join(dir, "alice.vars"), filepath.Join(dir, "bob.vars")

	// Terminal 1: alice reads, reconnecting by herself.
	t1 := startTerm(t, "terminal 1", dir, saveVar(t,
		replace(t, local(terms[1]), "/tmp/alice.last", filepath.Join(dir, "alice.last")), "A", aliceVars))
	t1.waitStdout(stepTimeout, "alice's ready event", func(out string) bool { return strings.Contains(out, "event: ready\n") })

	// Terminal 2: bob posts every 200 ms.
	t2 := startTerm(t, "terminal 2", dir, saveVar(t,
		replace(t, local(terms[2]), "seq 1 500", fmt.Sprintf("seq 1 %d", posts)), "B", bobVars))
	t1.waitStdout(stepTimeout, `"hello 10"`, func(out string) bool { return strings.Contains(out, `"text":"hello 10"`) })

	// Terminal 3: which instance holds alice's stream, and kill -9 it.
	lines := commandLines(terms[3])
	if len(lines) == 0 || strings.HasPrefix(lines[0], "kill") {
		t.Fatalf("README.md terminal 3 does not begin by finding alice's instance:\n%s", terms[3])
	}
	locate := inDir(replace(t, lines[0], "ssechat:ssechat:", "ssechat:"+dbName+":"))
	if svc.redisURL != "redis://127.0.0.1:6379/0" {
		locate = replace(t, locate, "redis-cli ", "redis-cli -u "+shellQuote(svc.redisURL)+" ")
	}
	found := strings.TrimSpace(run(t, "terminal 3, finding alice", dir, locate, stepTimeout))
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(clusterDir) + `/([a-z])\.log$`).FindStringSubmatch(found)
	if m == nil {
		t.Fatalf("terminal 3's %q printed %q, want the log of the one instance holding alice's stream", lines[0], found)
	}
	victim := m[1]
	survivor := map[string]string{"a": "b", "b": "a"}[victim]
	var killLine string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "kill -9 ") && strings.Contains(l, "/"+victim+".pid") {
			killLine = l
		}
	}
	if killLine == "" {
		t.Fatalf("README.md terminal 3 has no kill -9 for %s.pid:\n%s", victim, terms[3])
	}
	pidFile := filepath.Join(clusterDir, victim+".pid")
	killedPid := readFile(t, pidFile)
	t.Logf("alice's stream is on instance %s (pid %s); %s", victim, killedPid, killLine)
	run(t, "terminal 3, killing "+victim, dir, inDir(killLine), stepTimeout)

	// Terminal 1 says so, and resumes on the other instance.
	dropped := regexp.MustCompile(`(?m)^--- dropped; resuming after (\d*)$`)
	t1.waitStdout(stepTimeout, "the drop and a resumed stream's ready", func(out string) bool {
		loc := dropped.FindStringIndex(out)
		return loc != nil && strings.Contains(out[loc[1]:], "event: ready\n")
	})

	// Terminal 2 ends; every message it got a 201 for reaches alice.
	if err := t2.wait(stepTimeout + posts*time.Second); err != nil {
		t.Fatalf("terminal 2: %v", err)
	}
	status := postStatuses(t, t2.stdout.String())
	t1.waitStdout(stepTimeout, "every acknowledged message", func(out string) bool {
		for i, code := range status {
			if code == "201" && !strings.Contains(out, fmt.Sprintf(`"text":"hello %d"`, i)) {
				return false
			}
		}
		return true
	})

	// "Five seconds later the instances are back."
	waitFor(t, 30*time.Second, "instance "+victim+" started again", func() bool {
		pid := readFile(t, pidFile)
		log, _ := os.ReadFile(filepath.Join(clusterDir, victim+".log"))
		return pid != killedPid && strings.Count(string(log), "msg=serving") >= 2
	})

	// Presence is shared: whichever instance answers lists alice online.
	for _, at := range []string{lb, instanceAddr["a"], instanceAddr["b"]} {
		script := "source " + shellQuote(bobVars) + "\n" + replace(t, members, "localhost:8080", at)
		waitFor(t, stepTimeout, "alice online in the members on "+at, func() bool {
			return aliceOnline(run(t, "members on "+at, dir, script, stepTimeout))
		})
	}

	// A logout ends alice's session on every instance within a second,
	// her open stream included: terminal 1 drops again. (3 s: processes
	// to start on a busy machine.)
	drops := len(dropped.FindAllString(t1.stdout.String(), -1))
	run(t, "logout", dir, "source "+shellQuote(aliceVars)+"\n"+local(logout), stepTimeout)
	t1.waitStdout(3*time.Second, "the drop after the logout", func(out string) bool {
		return len(dropped.FindAllString(out, -1)) > drops
	})
	token := strings.TrimSpace(run(t, "$A", dir, "source "+shellQuote(aliceVars)+"\nprintf '%s' \"$A\"", stepTimeout))
	for name, addr := range instanceAddr {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("after the logout instance %s answers alice's token with %d, want 401", name, res.StatusCode)
		}
	}
	t1.kill()

	checkAlice(t, t1.stdout.String(), status)

	// The resumed stream, ended by the logout, is in access.log now: it
	// was served by the instance that survived.
	n := dropped.FindStringSubmatch(t1.stdout.String())[1]
	resumedOn := ""
	waitFor(t, stepTimeout, "the resumed stream in access.log", func() bool {
		resumedOn = streamUpstream(readFile(t, filepath.Join(clusterDir, "access.log")), n)
		return resumedOn != ""
	})
	if resumedOn != instanceAddr[survivor] {
		t.Errorf("the stream resumed from %s was served by %s, want instance %s (%s)", n, resumedOn, survivor, instanceAddr[survivor])
	}

	// Ctrl-C stops everything.
	stopCluster(t, cluster, clusterDir)
	if out := cluster.stdout.String(); !strings.Contains(out, "stopped; logs are in "+clusterDir) {
		t.Errorf("cluster.sh did not say it stopped:\n%s", out)
	}
}

// checkAlice asserts on terminal 1's output what "What you see" promises:
// every message answered 201 exactly once and in order (one that answered
// otherwise at most once), the logged events' ids only increasing; after
// "--- dropped; resuming after N", the messages after N, then ready (at
// the last of them), then live.
func checkAlice(t *testing.T, out string, status map[int]string) {
	t.Helper()
	segments := regexp.MustCompile(`(?m)^--- dropped; resuming after (\d*)\n`).Split(out, -1)
	drops := regexp.MustCompile(`(?m)^--- dropped; resuming after (\d*)$`).FindAllStringSubmatch(out, -1)
	if len(segments) < 3 {
		t.Fatalf("terminal 1 shows %d streams, want at least 3 (first, resumed, after the logout)", len(segments))
	}
	seen := map[int]int{}
	var order []int
	var last int64
	hello := regexp.MustCompile(`"text":"hello (\d+)"`)
	for s, seg := range segments[:2] {
		frames := parseFrames(seg)
		ready := -1
		for i, f := range frames {
			if f.event == "ready" {
				if ready >= 0 {
					t.Errorf("stream %d: a second ready event", s+1)
				}
				ready = i
			}
		}
		if ready < 0 {
			t.Fatalf("stream %d has no ready event:\n%s", s+1, seg)
		}
		if s == 0 && ready != 0 {
			t.Errorf("the first stream begins with %s, want ready", frames[0])
		}
		if s == 1 {
			n, _ := strconv.ParseInt(drops[0][1], 10, 64)
			if n != last {
				t.Errorf("terminal 1 resumes after %d, but the last id it showed was %d", n, last)
			}
			for _, f := range frames[:ready] {
				if f.event != "message" {
					t.Errorf("the resumed stream replays %s before ready, want only messages", f)
				}
			}
			wantReady := strconv.FormatInt(n, 10)
			if ready > 0 {
				wantReady = frames[ready-1].id
			}
			if frames[ready].id != wantReady {
				t.Errorf("the resumed stream's ready has id %s, want %s", frames[ready].id, wantReady)
			}
		}
		for i, f := range frames {
			if i > ready && !f.logged() && f.event != "presence" && f.event != "members" {
				t.Errorf("stream %d: unexpected %s", s+1, f)
			}
			if !f.logged() {
				continue
			}
			id, err := strconv.ParseInt(f.id, 10, 64)
			if err != nil || id <= last {
				t.Errorf("stream %d: id %s after %d", s+1, f.id, last)
			}
			last = id
			if m := hello.FindStringSubmatch(f.data); m != nil {
				i, _ := strconv.Atoi(m[1])
				seen[i]++
				order = append(order, i)
			}
		}
	}
	for i := 1; i <= len(status); i++ {
		switch {
		case status[i] == "201" && seen[i] != 1:
			t.Errorf(`"hello %d" answered 201 and reached alice %d times, want once`, i, seen[i])
		case status[i] != "201" && seen[i] > 1:
			t.Errorf(`"hello %d" answered %s and reached alice %d times`, i, status[i], seen[i])
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Errorf("alice read hello %d after hello %d", order[i], order[i-1])
		}
	}
	for _, seg := range segments[2:] {
		if frames := parseFrames(seg); len(frames) > 0 {
			t.Errorf("after the logout terminal 1 still shows %s", frames[0])
		}
	}
}

// postStatuses reads terminal 2's "hello N: STATUS" lines. While one
// instance is up every POST answers 201; the one that was on its way to
// the instance killed mid-request may answer 502 (the README says so).
func postStatuses(t *testing.T, out string) map[int]string {
	t.Helper()
	status := map[int]string{}
	for _, m := range regexp.MustCompile(`(?m)^hello (\d+): (\d{3})$`).FindAllStringSubmatch(out, -1) {
		i, _ := strconv.Atoi(m[1])
		status[i] = m[2]
	}
	failed := 0
	for i := 1; i <= posts; i++ {
		switch status[i] {
		case "201":
		case "502":
			failed++
		default:
			t.Errorf("hello %d answered %q, want 201", i, status[i])
		}
	}
	if failed > 1 {
		t.Errorf("%d POSTs answered 502 with one instance up all along, want at most the one in flight at the kill:\n%s", failed, out)
	}
	return status
}

// aliceOnline tells whether a members answer lists alice online.
func aliceOnline(answer string) bool {
	var m struct {
		Members []struct {
			Username string `json:"username"`
			Online   bool   `json:"online"`
		} `json:"members"`
	}
	if json.Unmarshal([]byte(answer), &m) != nil {
		return false
	}
	for _, u := range m.Members {
		if u.Username == "alice" {
			return u.Online
		}
	}
	return false
}

var upstreamField = regexp.MustCompile(`upstream=((?:\S+, )*\S+) `)

// streamUpstream finds in access.log the stream request resumed from
// last_event_id=n and returns the instance that finally served it (nginx
// lists every one it tried).
func streamUpstream(accessLog, n string) string {
	for line := range strings.Lines(accessLog) {
		if !strings.Contains(line, `"GET /api/stream?last_event_id=`+n+` `) {
			continue
		}
		if m := upstreamField.FindStringSubmatch(line); m != nil {
			tried := strings.Split(m[1], ", ")
			return tried[len(tried)-1]
		}
	}
	return ""
}

// stopCluster presses Ctrl-C: SIGINT to cluster.sh's process group, which
// is how a terminal delivers it. The script must end within its instances'
// --shutdown-timeout (5 s) and nginx's, and leave nothing of the run
// running; whatever it left is killed. Safe to call twice.
func stopCluster(t *testing.T, cluster *term, clusterDir string) {
	t.Helper()
	if !cluster.exited() {
		cluster.signal(syscall.SIGINT)
		if err := cluster.wait(30 * time.Second); !cluster.exited() {
			t.Errorf("deploy/cluster.sh after Ctrl-C: %v", err)
			cluster.kill()
		}
	}
	var left []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		left = runProcesses(clusterDir)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("after Ctrl-C these processes of the run still run (killed now):\n%s", strings.Join(left, "\n"))
		for _, p := range left {
			pid, _ := strconv.Atoi(strings.Fields(p)[0])
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// runProcesses lists ("PID command line") the processes the run started:
// those whose command line or environment names its directory (the
// instances, nginx's master, cluster.sh and its supervisors, which carry
// CLUSTER_DIR), and their children (nginx's workers).
func runProcesses(clusterDir string) []string {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	cmdline := map[int]string{}
	ours := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 || fields[0] == "Z" {
			continue // gone, or a zombie about to be reaped
		}
		parent[pid], _ = strconv.Atoi(fields[1])
		cl, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		environ, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		cmdline[pid] = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
		if strings.Contains(string(cl), clusterDir) || strings.Contains(string(environ), "CLUSTER_DIR="+clusterDir+"\x00") {
			ours[pid] = true
		}
	}
	for grew := true; grew; {
		grew = false
		for pid, ppid := range parent {
			if !ours[pid] && ours[ppid] {
				ours[pid], grew = true, true
			}
		}
	}
	var out []string
	for pid := range ours {
		out = append(out, fmt.Sprintf("%d %s", pid, cmdline[pid]))
	}
	return out
}

// dropRun drops the run's database and Redis keys and removes its
// directory.
func dropRun(t *testing.T, svc services, dbName, clusterDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, svc.adminURL); err != nil {
		t.Errorf("drop database %s: %v", dbName, err)
	} else {
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{dbName}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", dbName, err)
		}
		conn.Close(ctx)
	}
	if opt, err := redis.ParseURL(svc.redisURL); err == nil {
		rdb := redis.NewClient(opt)
		// The default --redis-prefix: ssechat:DBNAME:.
		iter := rdb.Scan(ctx, 0, "ssechat:"+dbName+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("Redis keys of %s: %v", dbName, err)
		} else if len(keys) > 0 {
			if err := rdb.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("Redis keys of %s: %v", dbName, err)
			}
		}
		rdb.Close()
	}
	if t.Failed() {
		for _, name := range []string{"a.log", "b.log", "error.log", "access.log"} {
			b, _ := os.ReadFile(filepath.Join(clusterDir, name))
			t.Logf("%s:\n%s", name, b)
		}
	}
	os.RemoveAll(clusterDir)
}

// freePorts returns a free loopback port for nginx and the first of two
// free consecutive ones for the instances (cluster.sh's LB_PORT and
// BASE_PORT). cluster.sh checks them again and stops if one was taken
// since.
func freePorts(t *testing.T) (lb, base int) {
	t.Helper()
	listen := func(port int) net.Listener {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return nil
		}
		return ln
	}
	for range 100 {
		l1 := listen(0)
		if l1 == nil {
			t.Fatal("no free loopback port")
		}
		base := l1.Addr().(*net.TCPAddr).Port
		l2, l3 := listen(base+1), listen(0)
		if l2 != nil && l3 != nil {
			lb := l3.Addr().(*net.TCPAddr).Port
			l1.Close()
			l2.Close()
			l3.Close()
			return lb, base
		}
		for _, l := range []net.Listener{l1, l2, l3} {
			if l != nil {
				l.Close()
			}
		}
	}
	t.Fatal("no two free consecutive loopback ports")
	return 0, 0
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

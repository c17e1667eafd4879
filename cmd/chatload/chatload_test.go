package main

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestSSEParser(t *testing.T) {
	stream := "retry: 1000\n" +
		": heartbeat\n" +
		"event: ready\nid: 7\ndata: {\"id\":\"7\",\"user\":\"a\"}\n\n" +
		"id: 8\r\nevent: message\r\ndata: {\"text\":\"cl 3 1700000000000000000\"}\r\n\r\n" +
		"data: line1\ndata:line2\n\n" + // default name, two data lines, id kept
		"event: ignored-without-data\n\n" +
		"event: presence\nid: 9\ndata: {}\n\n"
	type ev struct{ name, id, data string }
	want := []ev{
		{"ready", "7", `{"id":"7","user":"a"}`},
		{"message", "8", `{"text":"cl 3 1700000000000000000"}`},
		{"message", "8", "line1\nline2"},
		{"presence", "9", "{}"},
	}
	// A small reader buffer forces readLine through its long-line path too.
	br := bufio.NewReaderSize(strings.NewReader(stream), 16)
	var p sseParser
	var scratch []byte
	var got []ev
	for {
		line, err := readLine(br, &scratch)
		if err != nil {
			break
		}
		if e, ok := p.Line(line); ok {
			got = append(got, ev{string(e.Name), string(e.ID), string(e.Data)})
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if p.LastID() != "9" {
		t.Errorf("LastID = %q, want 9", p.LastID())
	}

	// Cut between an event's id and its end: the resume starts before it.
	var q sseParser
	for _, l := range []string{"id: 10", "data: {}", "", "id: 11", "data: {\"half\":"} {
		q.Line([]byte(l))
	}
	if q.LastID() != "10" {
		t.Errorf("LastID after a cut inside event 11 = %q, want 10", q.LastID())
	}
	q.Restart()
	if e, ok := q.Line([]byte("")); ok || q.LastID() != "10" {
		t.Errorf("after Restart: dispatched %v (%q), LastID %q; want nothing and 10", ok, e.Data, q.LastID())
	}
}

func TestMarker(t *testing.T) {
	at := time.Unix(1764000000, 123456789)
	text := appendMarker(nil, 42, at)
	data := []byte(`{"id":"5","room":"bench","from":"cl-pub-0","text":"` + string(text) + `","ts":"x"}`)
	seq, ns, ok := findMarker(data)
	if !ok || seq != 42 || ns != at.UnixNano() {
		t.Fatalf("findMarker = %d %d %v", seq, ns, ok)
	}
	sio := []byte(`{"username":"cl-pub-1","message":"` + string(text) + `"}`)
	if seq, _, ok := findMarker(sio); !ok || seq != 42 {
		t.Fatalf("findMarker(socket.io payload) = %d %v", seq, ok)
	}
	for _, bad := range []string{`{"text":"hello"}`, `{"text":"cl x 1"}`, `{"text":"cl 5"}`, `{"from":"cl-sub-1"}`} {
		if _, _, ok := findMarker([]byte(bad)); ok {
			t.Errorf("findMarker(%s) found a marker", bad)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 1000, 65535, 1 << 30, 1<<40 + 5} {
		i := histBucket(v)
		if i < prev {
			t.Fatalf("bucket(%d)=%d not monotonic", v, i)
		}
		prev = i
		if up := histUpper(i); up < v && i != histBuckets-1 {
			t.Errorf("upper(bucket(%d)) = %d below the value", v, up)
		}
		if v >= histExact && i != histBuckets-1 {
			// Within 1/128 of the value.
			if up := histUpper(i); float64(up-v) > float64(v)/float64(histSub) {
				t.Errorf("bucket of %d too wide: upper %d", v, up)
			}
		}
	}
	// Bucket bounds are contiguous.
	for i := 1; i < histBuckets-1; i++ {
		if histBucket(histUpper(i-1)+1) != i {
			t.Fatalf("gap after bucket %d", i-1)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	var h histogram
	if h.Quantile(0.99) != 0 {
		t.Fatal("empty histogram should report 0")
	}
	// 1..1000 ms: nearest-rank p50 is 500 ms, p99 990 ms, max 1000 ms.
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	check := func(q float64, want time.Duration) {
		t.Helper()
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/float64(histSub) {
			t.Errorf("q%.2f = %v, want %v (within 1/128 above)", q, got, want)
		}
	}
	check(0.50, 500*time.Millisecond)
	check(0.99, 990*time.Millisecond)
	check(1, 1000*time.Millisecond)
	if h.Max() != time.Second {
		t.Errorf("max = %v", h.Max())
	}
	if h.Count() != 1000 {
		t.Errorf("count = %d", h.Count())
	}
}

func TestPhaseLostAndDups(t *testing.T) {
	p := newPhase(3, 100, 10)
	for seq := uint64(100); seq < 105; seq++ {
		p.Ack(seq)
	}
	if p.Ack(200) {
		t.Error("ack outside the phase accepted")
	}
	for sub := 0; sub < 3; sub++ {
		for seq := uint64(100); seq < 105; seq++ {
			if sub == 1 && seq == 103 {
				continue // lost
			}
			p.Deliver(sub, seq, 0, 1000)
		}
	}
	p.Deliver(0, 100, 0, 1000) // duplicate
	p.Deliver(0, 99, 0, 1000)  // from an earlier phase
	if got := p.Lost([]bool{true, true, true}); got != 1 {
		t.Errorf("lost = %d, want 1", got)
	}
	if got := p.Lost([]bool{true, false, true}); got != 0 {
		t.Errorf("lost without sub 1 = %d, want 0", got)
	}
	if p.dups.Load() != 1 || p.stray.Load() != 1 || p.delivered.Load() != 14 {
		t.Errorf("dups %d stray %d delivered %d", p.dups.Load(), p.stray.Load(), p.delivered.Load())
	}
}

func TestSocketIOPackets(t *testing.T) {
	cases := []struct {
		pkt       string
		typ       byte
		ack       int64
		body, ev  string
		wantValid bool
	}{
		{`42["new message",{"username":"a","message":"hi"}]`, '2', -1, `["new message",{"username":"a","message":"hi"}]`, "new message", true},
		{`4317[{"ok":true}]`, '3', 17, `[{"ok":true}]`, "", true},
		{`42/chat,5["login",{"numUsers":1}]`, '2', 5, `["login",{"numUsers":1}]`, "login", true},
		{`40{"sid":"x"}`, '0', -1, `{"sid":"x"}`, "", true},
		{`2`, 0, -1, "", "", false},
	}
	for _, c := range cases {
		typ, ack, body, ok := parseSIOPacket([]byte(c.pkt))
		if ok != c.wantValid {
			t.Errorf("%s: ok=%v", c.pkt, ok)
			continue
		}
		if !ok {
			continue
		}
		if typ != c.typ || ack != c.ack || string(body) != c.body {
			t.Errorf("%s: got %c %d %s", c.pkt, typ, ack, body)
		}
		if c.ev != "" {
			if name, _ := sioEventName(body); string(name) != c.ev {
				t.Errorf("%s: event %q", c.pkt, name)
			}
		}
	}
	if got := string(appendEmit(nil, "new message", []byte(`"x"`), 3)); got != `423["new message","x"]` {
		t.Errorf("appendEmit = %s", got)
	}
}

func TestProcParsing(t *testing.T) {
	rss, err := parseVmRSS([]byte("Name:\tx\nVmRSS:\t   12345 kB\nThreads: 3\n"))
	if err != nil || rss != 12345 {
		t.Fatalf("rss %d %v", rss, err)
	}
	stat := []byte("42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 100")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3*time.Second {
		t.Fatalf("cpu %v %v", cpu, err)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:80", "127.3.4.5:1", "[::1]:8080", "localhost:1"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1:80", "192.168.1.1:80", "example.com:80", "8.8.8.8:53"} {
		if checkLoopback(bad) == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestParseMachineBusy(t *testing.T) {
	stat := []byte("cpu  100 5 50 1000 20 3 2 0 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	// user+nice+system+irq+softirq+steal = 100+5+50+3+2+0; idle, iowait and guest left out.
	got, err := parseMachineBusy(stat)
	if err != nil || got != 160*clockTick {
		t.Fatalf("busy = %v, %v", got, err)
	}
}

// FuzzSSE feeds arbitrary streams to the line reader and parser: neither may
// panic, and a dispatched event always has a name.
func FuzzSSE(f *testing.F) {
	f.Add("event: ready\nid: 1\ndata: {}\n\n")
	f.Add("data: a\r\ndata: b\r\n\r\n: c\n\nid\x00: 3\n")
	f.Add(strings.Repeat("data: x", 100) + "\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		br := bufio.NewReaderSize(strings.NewReader(stream), 16)
		var p sseParser
		var scratch []byte
		for {
			line, err := readLine(br, &scratch)
			if err != nil {
				return
			}
			if ev, ok := p.Line(line); ok && len(ev.Name) == 0 {
				t.Fatalf("event without a name from %q", stream)
			}
			findMarker(line)
			parseSIOPacket(line)
		}
	})
}

// A single server's cells read as they always did; several processes show
// their sum and each, and the cluster column its ratio to the single node.
func TestTableSeveralProcesses(t *testing.T) {
	one := result{Label: "f", Target: "ours", Mode: "fanout", P50ms: 60, P99ms: 100, MaxMs: 150,
		DeliveredPerSec: 100000, ServerCPUPct: 120, ServerRSSMiB: 361}
	if got, want := summary(one), "p50 60.0 / p99 100 / max 150 ms; 100k deliveries/s; lost 0, dup 0, disc 0; CPU 120%, RSS 361 MiB"; got != want {
		t.Errorf("single server:\n got %s\nwant %s", got, want)
	}
	two := one
	two.Target, two.P99ms = "cluster", 130
	two.ServerCPUPct, two.ServerCPUEachPct = 150, []float64{80, 70}
	two.ServerRSSMiB, two.ServerRSSEachMiB = 400, []float64{210, 190}
	two.AuxLabel, two.AuxCPUPct = "PG+Redis", 12
	if got, want := summary(two), "p50 60.0 / p99 130 / max 150 ms; 100k deliveries/s; lost 0, dup 0, disc 0; CPU 150% (80+70), PG+Redis 12%, RSS 400 MiB (210+190)"; got != want {
		t.Errorf("two instances:\n got %s\nwant %s", got, want)
	}
	var b strings.Builder
	writeTable(&b, []result{one, two}, []string{"ours", "cluster"}, nil, map[string]string{"cluster": "ours"})
	if !strings.Contains(b.String(), "**p99 1.30× ours**") {
		t.Errorf("no ratio in\n%s", b.String())
	}
	w1 := result{Label: "w", Target: "ours", Mode: "write", AckPerSec: 10000}
	w2 := result{Label: "w", Target: "cluster", Mode: "write", AckPerSec: 6000}
	if got := versus(w2, w1, "ours"); got != "acked/s 0.60× ours" {
		t.Errorf("versus = %q", got)
	}
}

func TestAuxCPU(t *testing.T) {
	if !matchesAny([]byte("postgres: 15/main: postgres bench_db 127.0.0.1(1) idle"), []string{"x", "bench_db"}) {
		t.Error("process title not matched")
	}
	if !matchesAny([]byte("redis-server\x00127.0.0.1:6379\x00"), []string{"redis-server 127.0.0.1"}) {
		t.Error("NUL-separated command line not matched")
	}
	a := map[int]time.Duration{1: time.Second, 2: 2 * time.Second}
	b := map[int]time.Duration{1: 3 * time.Second, 3: time.Second} // 2 exited, 3 is new
	if got := auxDelta(a, b); got != 3*time.Second {
		t.Errorf("auxDelta = %v, want 3s", got)
	}
}

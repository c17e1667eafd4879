package browser

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// dropProxy is a TCP proxy in front of the server that can cut every
// connection and refuse new ones, as a lost network would, while the server
// itself runs on. Scripts still reach the server directly, so they can post
// while the page is cut off.
type dropProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &dropProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *dropProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *dropProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close() // the network is down: refuse at once
			continue
		}
		p.wg.Add(1)
		go p.pipe(c)
	}
}

func (p *dropProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *dropProxy) pipe(c net.Conn) {
	defer p.wg.Done()
	defer p.forget(c)
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(s) {
		s.Close()
		return
	}
	defer p.forget(s)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(s, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, s); done <- struct{}{} }()
	<-done // one side ended: end both
	c.Close()
	s.Close()
	<-done
}

func (p *dropProxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// setDown cuts the network (closing every open connection) or restores it.
func (p *dropProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// testResume: the stream drops while the server runs on; what was posted
// meanwhile arrives through Last-Event-ID resume, in order, once each,
// without a reload.
func testResume(t *testing.T, browser context.Context, srv *chatServer) {
	proxy := startProxy(t, srv.addr)
	nora := newUser(t, browser, proxy.url(), "nora")
	nora.login("nora", "nora-password")
	nora.join("drop")
	otto := login(t, srv.url(), "otto", "otto-password")
	if err := otto.do(context.Background(), "POST", "/api/rooms/drop/join", nil, nil); err != nil {
		t.Fatalf("otto joining: %v", err)
	}
	otto.send(t, "drop", "before the drop")
	nora.waitMessage("before the drop")
	_ = eval[bool](nora, `window.e2eNotReloaded = true`)

	proxy.setDown(true)
	nora.wait("the reconnecting state", `document.body.dataset.conn === 'reconnecting'`)
	for i := 1; i <= 3; i++ {
		otto.send(t, "drop", fmt.Sprintf("missed %d", i))
	}
	proxy.setDown(false)
	for i := 1; i <= 3; i++ {
		nora.waitMessage(fmt.Sprintf("missed %d", i))
	}
	nora.waitLive()
	if !eval[bool](nora, `window.e2eNotReloaded === true`) {
		t.Error("the page was reloaded; it should catch up by itself")
	}
	texts := eval[[]string](nora, `[...document.querySelectorAll('#message-list .msg .text')].map(e => e.textContent)`)
	want := []string{"before the drop", "missed 1", "missed 2", "missed 3"}
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Errorf("messages after the resume: %q, want %q", texts, want)
	}
	nora.checkConsole()
}

// testReset: the page was away for longer than the server replays
// (--replay-limit), so the server sends `reset`; the page reloads its
// history over REST by itself and shows everything, once.
func testReset(t *testing.T, browser context.Context, bin string) {
	srv := startServer(t, bin, "--replay-limit", "2")
	proxy := startProxy(t, srv.addr)
	uma := newUser(t, browser, proxy.url(), "uma")
	uma.login("uma", "uma-password")
	uma.join("gap")
	vic := login(t, srv.url(), "vic", "vic-password")
	if err := vic.do(context.Background(), "POST", "/api/rooms/gap/join", nil, nil); err != nil {
		t.Fatalf("vic joining: %v", err)
	}
	_ = eval[bool](uma, `window.e2eNotReloaded = true`)

	proxy.setDown(true)
	uma.wait("the reconnecting state", `document.body.dataset.conn === 'reconnecting'`)
	const missed = 6
	for i := 1; i <= missed; i++ {
		vic.send(t, "gap", fmt.Sprintf("gap %d", i))
	}
	proxy.setDown(false)
	uma.wait("a reset", `document.body.dataset.resets === '1'`)
	for i := 1; i <= missed; i++ {
		uma.waitMessage(fmt.Sprintf("gap %d", i))
	}
	uma.waitLive()
	vic.send(t, "gap", "after the reset")
	uma.waitMessage("after the reset")
	if !eval[bool](uma, `window.e2eNotReloaded === true`) {
		t.Error("the browser reloaded the page; the app should reload only its data")
	}
	texts := eval[[]string](uma, `[...document.querySelectorAll('#message-list .msg .text')].map(e => e.textContent)`)
	if len(texts) != missed+1 {
		t.Errorf("after the reset the page shows %q, want %d messages once each", texts, missed+1)
	}
	uma.checkConsole()
}

// testLargeRoom: above --large-room members the server sends counts instead
// of per-user notices; the page shows them.
func testLargeRoom(t *testing.T, browser context.Context, bin string) {
	srv := startServer(t, bin, "--large-room", "2")
	lars := newUser(t, browser, srv.url(), "lars")
	lars.login("lars", "lars-password")
	lars.join("big")
	for _, name := range []string{"ann", "ben", "cal"} {
		c := login(t, srv.url(), name, name+"-password")
		if err := c.do(context.Background(), "POST", "/api/rooms/big/join", nil, nil); err != nil {
			t.Fatalf("%s joining: %v", name, err)
		}
	}
	// The three have no stream open: lars is the only one online.
	lars.wait("the counts in the members title", `document.getElementById('members-title').textContent === 'Members (4, 1 online)'`)
	lars.say("hello, big room")
	lars.waitMessage("hello, big room")
	lars.checkConsole()
}

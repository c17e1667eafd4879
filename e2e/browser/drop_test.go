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

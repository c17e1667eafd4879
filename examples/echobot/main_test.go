//go:build unix

package main_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// The built bot, run as its README says against a real server, answers
// "!ping" in each of its rooms, echoes mentions and private messages but
// not echoes, and stops cleanly on SIGTERM.
func TestEchobot(t *testing.T) {
	srv := chattest.Start(t)
	bin := chattest.Build(t, "examples/echobot", "echobot")
	alice := srv.Login(t, "alice")
	alice.Join("lobby")
	alice.Join("den")
	s := alice.Stream("")
	s.Ready()

	cmd := exec.Command(bin, "lobby", "den")
	cmd.Env = append(os.Environ(), "CHAT_URL="+srv.URL, "CHAT_USER=echobot", "CHAT_PASSWORD=pw-echobot")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log strings.Builder
	ready := make(chan struct{})
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var once sync.Once
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "msg=ready") {
				once.Do(func() { close(ready) })
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("echobot's log:\n%s", log.String())
		}
	})
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("echobot exited at start: %v", err)
	case <-time.After(chattest.Timeout):
		t.Fatalf("echobot not ready within %v", chattest.Timeout)
	}

	fromBot := func(kind, room, text string) {
		t.Helper()
		s.Expect(kind, func(e chattest.Event) bool { return e.From == "echobot" && e.Room == room && e.Text == text })
	}
	for _, room := range []string{"lobby", "den"} {
		alice.Say(room, "!ping")
		fromBot("message", room, "pong")
	}
	alice.Say("lobby", "@echobot hello there")
	fromBot("private", "", "echo: hello there")
	alice.MustDo("POST", "/api/users/echobot/messages", map[string]string{"text": "psst"}, nil, 201)
	fromBot("private", "", "echo: psst")
	// An echo (another bot's, say) gets none, or two bots would answer
	// each other for ever: the next answer is the next message's.
	alice.MustDo("POST", "/api/users/echobot/messages", map[string]string{"text": "echo: psst"}, nil, 201)
	alice.MustDo("POST", "/api/users/echobot/messages", map[string]string{"text": "sentinel"}, nil, 201)
	answers := s.Until(func(f chattest.Frame) bool { return f.Event.From == "echobot" })
	if last := answers[len(answers)-1].Event; last.Text != "echo: sentinel" {
		t.Fatalf("echobot answered %q to an echo, want no answer before \"echo: sentinel\"", last.Text)
	}
	// It answers nothing else: the next message from it is the next pong.
	alice.Say("lobby", "just chatting")
	alice.Say("lobby", "!ping")
	var pongs int
	for _, f := range s.Until(func(f chattest.Frame) bool { return f.Event.From == "echobot" }) {
		if f.Event.From == "echobot" && f.Event.Text == "pong" {
			pongs++
		}
	}
	if pongs != 1 {
		t.Fatalf("echobot answered something other than the last !ping")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("echobot exited with %v after SIGTERM", err)
		}
	case <-time.After(chattest.Timeout):
		t.Fatalf("echobot still running %v after SIGTERM", chattest.Timeout)
	}
}

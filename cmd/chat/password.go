package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// askPassword asks for a password on the terminal, as ssh and sudo do: on
// /dev/tty, whatever stdin and stdout are, so that a pipe into chat does
// not eat it. It is read without echo where this program knows how to turn
// echo off (termEcho); elsewhere the prompt says it will show.
func askPassword(prompt string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", usageErrorf("no password: set CHAT_PASSWORD, or run chat login on a terminal")
	}
	defer tty.Close()
	restore, err := echoOff(tty)
	if err != nil {
		prompt = "(the password will show as you type it) " + prompt
		restore = func() {}
	} else {
		// Ctrl-C at the prompt must not leave the terminal silent.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		done := make(chan struct{})
		defer func() {
			signal.Stop(sigs)
			close(done)
		}()
		go func() {
			select {
			case <-sigs:
				restore()
				fmt.Fprintln(tty)
				os.Exit(exitFailed)
			case <-done:
			}
		}()
		defer restore()
	}
	fmt.Fprint(tty, prompt)
	line, err := bufio.NewReader(tty).ReadString('\n')
	fmt.Fprintln(tty) // the Enter that was not echoed
	if err != nil && line == "" {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

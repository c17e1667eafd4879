//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import (
	"errors"
	"os"
)

// echoOff cannot turn echo off here: the password prompt says so.
func echoOff(*os.File) (func(), error) {
	return nil, errors.New("no terminal control on this system")
}

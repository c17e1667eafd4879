//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package main

import "syscall"

// The ioctls that read and set a terminal's termios.
const getTermios, setTermios = syscall.TIOCGETA, syscall.TIOCSETA

//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"os"
	"syscall"
	"unsafe"
)

// echoOff turns the terminal's echo off and returns what puts it back as
// it was. (golang.org/x/term does this too, but is not among the
// modules this repository pins; two ioctls do not justify adding it.)
func echoOff(tty *os.File) (restore func(), err error) {
	fd := tty.Fd()
	var old syscall.Termios
	if err := ioctl(fd, getTermios, &old); err != nil {
		return nil, err
	}
	t := old
	t.Lflag &^= syscall.ECHO
	if err := ioctl(fd, setTermios, &t); err != nil {
		return nil, err
	}
	return func() { _ = ioctl(fd, setTermios, &old) }, nil
}

func ioctl(fd uintptr, req uintptr, t *syscall.Termios) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(t))); errno != 0 {
		return errno
	}
	return nil
}

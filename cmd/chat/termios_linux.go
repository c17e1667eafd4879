package main

import "syscall"

// The ioctls that read and set a terminal's termios.
const getTermios, setTermios = syscall.TCGETS, syscall.TCSETS

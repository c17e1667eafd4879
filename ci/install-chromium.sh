#!/bin/sh
# Installs Debian's chromium for the browser end-to-end tests (e2e/browser)
# when /usr/bin/chromium is missing. Safe to run again: it does nothing when
# chromium is there. Needs root (or sudo) and apt-get.
set -eu

if [ -x /usr/bin/chromium ]; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-chromium: apt-get not found; install chromium at /usr/bin/chromium by hand" >&2
	exit 1
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-chromium: must run as root (or with sudo available)" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends keeps it to what headless use needs; fonts-liberation
# gives the page readable text in screenshots.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null

if [ ! -x /usr/bin/chromium ]; then
	echo "install-chromium: apt-get finished but /usr/bin/chromium is missing" >&2
	exit 1
fi
/usr/bin/chromium --version 2>/dev/null || true

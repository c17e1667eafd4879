package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procSample is a process's resident memory and consumed CPU at one moment,
// read from /proc so that any server (Go or Node) can be measured alike.
type procSample struct {
	At     time.Time
	RSSKiB int64
	CPU    time.Duration // user + system
	Failed bool          // not read (the process is gone)
}

// machineCPU reads the whole machine's busy CPU time from /proc/stat, so a
// run can tell how much of the machine went to processes other than the
// server and the load generator: a benchmark sharing the cores with, say, a
// test suite measures nothing useful, and the result says so.
func machineCPU() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(data)
}

// parseMachineBusy sums the first "cpu" line's fields except idle and
// iowait (and guest time, already counted in user).
func parseMachineBusy(stat []byte) (time.Duration, error) {
	line := stat
	if i := bytes.IndexByte(stat, '\n'); i >= 0 {
		line = stat[:i]
	}
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("bad /proc/stat")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest, guest_nice
			continue
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// clockTick is USER_HZ, 100 on every Linux we run on.
const clockTick = 10 * time.Millisecond

func readProc(pid int) (s procSample, err error) {
	s.At = time.Now()
	defer func() { s.Failed = err != nil }()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	rss, err := parseVmRSS(status)
	if err != nil {
		return s, err
	}
	s.RSSKiB = rss
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return s, err
	}
	s.CPU = cpu
	return s, nil
}

// parseVmRSS finds "VmRSS:   1234 kB" in /proc/PID/status.
func parseVmRSS(status []byte) (int64, error) {
	i := bytes.Index(status, []byte("VmRSS:"))
	if i < 0 {
		return 0, fmt.Errorf("no VmRSS")
	}
	f := bytes.Fields(status[i+len("VmRSS:"):])
	if len(f) < 1 {
		return 0, fmt.Errorf("bad VmRSS")
	}
	return strconv.ParseInt(string(f[0]), 10, 64)
}

// parseStatCPU reads utime+stime (fields 14 and 15) from /proc/PID/stat. The
// command name (field 2) may hold spaces, so fields are counted after its ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad stat")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat")
	}
	u, err := strconv.ParseInt(string(f[11]), 10, 64)
	if err != nil {
		return 0, err
	}
	s, err := strconv.ParseInt(string(f[12]), 10, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(u+s) * clockTick, nil
}

// sumProcs adds up several processes' samples (the instances of a
// cluster): RSS summed, the time of the first. CPU is summed per process
// by serverCPUPct, which can leave out one that could not be read.
func sumProcs(ps []procSample) procSample {
	if len(ps) == 1 {
		return ps[0]
	}
	var s procSample
	for i, p := range ps {
		if i == 0 {
			s.At = p.At
		}
		s.RSSKiB += p.RSSKiB
		s.CPU += p.CPU
		s.Failed = s.Failed || p.Failed
	}
	return s
}

// auxCPU reads the CPU time of every process whose command line contains one
// of the patterns (PostgreSQL backends of the benchmark's database, Redis),
// leaving out the pids in skip (the servers and chatload, whose own command
// lines may name the database).
func auxCPU(patterns []string, skip []int) map[int]time.Duration {
	out := map[int]time.Duration{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
next:
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		for _, s := range skip {
			if pid == s {
				continue next
			}
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !matchesAny(cmd, patterns) {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if cpu, err := parseStatCPU(stat); err == nil {
			out[pid] = cpu
		}
	}
	return out
}

// matchesAny tells whether a NUL-separated command line (or a process title
// a server wrote over it) contains one of the patterns.
func matchesAny(cmdline []byte, patterns []string) bool {
	c := bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})
	for _, p := range patterns {
		if p != "" && bytes.Contains(c, []byte(p)) {
			return true
		}
	}
	return false
}

// auxDelta is the CPU the auxiliary processes used between two auxCPU
// readings: a process that appeared in between counts from zero; one that
// exited is missed (short-lived processes are not what it is for).
func auxDelta(a, b map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, cpu := range b {
		if prev, ok := a[pid]; ok && prev <= cpu {
			d += cpu - prev
		} else if !ok {
			d += cpu
		}
	}
	return d
}

// cpuPercent is the CPU used between two samples as a percentage of one core.
func cpuPercent(a, b procSample) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(b.CPU-a.CPU) / float64(wall)
}

// raiseNoFile lifts the soft open-files limit to the hard one: each
// connection is a descriptor and the default soft limit is far below 10,000.
func raiseNoFile() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, err
		}
	}
	return r.Cur, nil
}

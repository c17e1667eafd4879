package main

import (
	"bytes"
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"
)

// Every message the load generator publishes has the text
// "cl <seq> <send time in unix nanoseconds>", so a receiver can tell which
// message it got and how long it took, whatever system carried it.
const markerPrefix = "cl "

// appendMarker appends a message text for seq sent at t.
func appendMarker(b []byte, seq uint64, t time.Time) []byte {
	b = append(b, markerPrefix...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	return strconv.AppendInt(b, t.UnixNano(), 10)
}

// findMarker finds a published message's seq and send time inside an event's
// JSON payload (the text is a JSON string: `"cl 12 1764...`). It scans bytes
// instead of decoding JSON because it runs for every delivery.
func findMarker(data []byte) (seq uint64, sentNs int64, ok bool) {
	i := bytes.Index(data, []byte(`"`+markerPrefix))
	if i < 0 {
		return 0, 0, false
	}
	p := data[i+1+len(markerPrefix):]
	seq, p, ok = scanUint(p)
	if !ok || len(p) == 0 || p[0] != ' ' {
		return 0, 0, false
	}
	ns, _, ok := scanUint(p[1:])
	if !ok {
		return 0, 0, false
	}
	return seq, int64(ns), true
}

func scanUint(p []byte) (uint64, []byte, bool) {
	var v uint64
	n := 0
	for n < len(p) && p[n] >= '0' && p[n] <= '9' && n < 20 {
		v = v*10 + uint64(p[n]-'0')
		n++
	}
	return v, p[n:], n > 0
}

// phase tracks one measured interval: which subscriber saw which message
// (a bitset per subscriber, set with atomic OR so a duplicate is caught
// without a lock), which messages were acknowledged, and the latencies.
type phase struct {
	base  uint64 // seq of the phase's first message
	capN  uint64 // seqs the bitsets can hold
	words int
	seen  []uint64 // subscriber i owns seen[i*words:(i+1)*words]
	acked []uint64
	hist  histogram

	delivered atomic.Int64 // first deliveries of a message to a subscriber
	dups      atomic.Int64
	stray     atomic.Int64 // messages from outside the phase (late or unknown)
	ackCount  atomic.Int64
}

func newPhase(subs int, base, capN uint64) *phase {
	words := int((capN + 63) / 64)
	return &phase{
		base:  base,
		capN:  capN,
		words: words,
		seen:  make([]uint64, subs*words),
		acked: make([]uint64, words),
	}
}

// Deliver records that subscriber sub received seq, sent at sentNs, at now.
func (p *phase) Deliver(sub int, seq uint64, sentNs, nowNs int64) {
	if seq < p.base || seq-p.base >= p.capN || sub < 0 || (sub+1)*p.words > len(p.seen) {
		p.stray.Add(1)
		return
	}
	off := seq - p.base
	bit := uint64(1) << (off % 64)
	old := atomic.OrUint64(&p.seen[sub*p.words+int(off/64)], bit)
	if old&bit != 0 {
		p.dups.Add(1)
		return
	}
	p.delivered.Add(1)
	p.hist.Record(time.Duration(nowNs - sentNs))
}

// Ack records that the system acknowledged seq.
func (p *phase) Ack(seq uint64) bool {
	if seq < p.base || seq-p.base >= p.capN {
		return false
	}
	off := seq - p.base
	atomic.OrUint64(&p.acked[off/64], uint64(1)<<(off%64))
	p.ackCount.Add(1)
	return true
}

// Lost counts acknowledged messages that a counted subscriber never received.
func (p *phase) Lost(counted []bool) int64 {
	var lost int64
	for sub, ok := range counted {
		if !ok {
			continue
		}
		row := p.seen[sub*p.words : (sub+1)*p.words]
		for w := range p.acked {
			a := atomic.LoadUint64(&p.acked[w])
			lost += int64(bits.OnesCount64(a &^ atomic.LoadUint64(&row[w])))
		}
	}
	return lost
}

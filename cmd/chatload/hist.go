package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records durations in microseconds in log-linear buckets (128 per
// power of two, so a reported percentile is at most 0.8 % above the true
// value). Recording is one atomic add, so thousands of reader goroutines can
// share one histogram without a lock.
type histogram struct {
	buckets [histBuckets]atomic.Uint64
	count   atomic.Uint64
	max     atomic.Uint64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	histExact   = 2 * histSub      // values below this have their own bucket
	histBuckets = histExact + 40*histSub
)

// histBucket maps a value to its bucket index.
func histBucket(v uint64) int {
	if v < histExact {
		return int(v)
	}
	shift := bits.Len64(v) - (histSubBits + 1)
	top := v >> uint(shift) // in [histSub, 2*histSub)
	i := histExact + (shift-1)*histSub + int(top-histSub)
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histUpper is the largest value that falls into bucket i: percentiles are
// reported at the top of their bucket, never flattered.
func histUpper(i int) uint64 {
	if i < histExact {
		return uint64(i)
	}
	shift := (i-histExact)/histSub + 1
	top := uint64((i-histExact)%histSub + histSub)
	return (top+1)<<uint(shift) - 1
}

func (h *histogram) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	v := uint64(us)
	h.buckets[histBucket(v)].Add(1)
	h.count.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

func (h *histogram) Count() uint64 { return h.count.Load() }

// Max is exact, not bucketed.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Quantile returns the smallest bucket bound below which at least q of the
// samples fall (nearest-rank), capped at the exact maximum.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var cum uint64
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		if cum >= rank {
			v := histUpper(i)
			if m := h.max.Load(); v > m {
				v = m
			}
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

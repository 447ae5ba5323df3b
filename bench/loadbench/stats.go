package main

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
)

// recorder is a sink's bookkeeping: which identifiers arrived, when each
// first arrived, and the time its reading was stamped with. Identifiers are
// kept as 64-bit FNV-1a hashes, not strings: at 10,000 readings/s for two
// minutes a string set would cost the sink (which shares the bridge's cores)
// hundreds of MiB and much GC; the chance of a false duplicate among 1.5
// million 64-bit hashes is about 1e-7.
type recorder struct {
	mu     sync.Mutex
	seen   map[uint64]struct{}
	recv   []int64 // first receipt of each unique identifier, Unix ns
	stamp  []int64 // its reading's stamped time, Unix ns; 0 when unreadable
	dups   int64
	noID   int64
	noTime int64
}

func newRecorder() *recorder {
	return &recorder{seen: make(map[uint64]struct{}, 1<<16)}
}

// record notes one received reading and reports whether its identifier is
// new. A zero stamp means the reading's time could not be read: it still
// counts for loss and duplicates, not for latency.
func (r *recorder) record(id string, stamp, now int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == "" {
		r.noID++
		return false
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	k := h.Sum64()
	if _, ok := r.seen[k]; ok {
		r.dups++
		return false
	}
	r.seen[k] = struct{}{}
	r.recv = append(r.recv, now)
	r.stamp = append(r.stamp, stamp)
	if stamp == 0 {
		r.noTime++
	}
	return true
}

// sinkStats is what a sink reports to the parent (as JSON over HTTP).
type sinkStats struct {
	Unique     int64 `json:"unique"`
	Duplicates int64 `json:"duplicates"`
	NoID       int64 `json:"no_id"`
	NoTime     int64 `json:"no_time"`
	// InWindow counts first receipts within [from, to).
	InWindow int64 `json:"received_in_window"`
	// Latency covers the readings stamped within [from, to): receipt time
	// minus stamped (intended send) time.
	Latency latencySummary `json:"latency"`
}

// latencySummary holds nearest-rank percentiles, in nanoseconds.
type latencySummary struct {
	N   int   `json:"n"`
	P50 int64 `json:"p50_ns"`
	P95 int64 `json:"p95_ns"`
	P99 int64 `json:"p99_ns"`
	Max int64 `json:"max_ns"`
}

// stats summarises the record; with from == to == 0 only the counts (cheap,
// for polling).
func (r *recorder) stats(from, to int64) sinkStats {
	r.mu.Lock()
	s := sinkStats{Unique: int64(len(r.recv)), Duplicates: r.dups, NoID: r.noID, NoTime: r.noTime}
	if from == 0 && to == 0 {
		r.mu.Unlock()
		return s
	}
	var lat []int64
	for i, rv := range r.recv {
		if rv >= from && rv < to {
			s.InWindow++
		}
		if st := r.stamp[i]; st != 0 && st >= from && st < to {
			lat = append(lat, rv-st)
		}
	}
	r.mu.Unlock()
	s.Latency = summarize(lat)
	return s
}

// summarize sorts lat in place and returns its percentiles.
func summarize(lat []int64) latencySummary {
	slices.Sort(lat)
	return latencySummary{N: len(lat), P50: percentile(lat, 0.50), P95: percentile(lat, 0.95),
		P99: percentile(lat, 0.99), Max: percentile(lat, 1)}
}

// percentile is the nearest-rank percentile of sorted: the smallest value
// with at least p of the values at or below it. 0 for no values.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	k = max(0, min(k, len(sorted)-1))
	return sorted[k]
}

// procCPU parses /proc/<pid>/stat and returns utime+stime in clock ticks.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func procCPU(stat []byte) (ticks uint64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no command name")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields", len(f)+2)
	}
	u, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	s, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	return u + s, nil
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports (the kernel fixes it for user space).
const clockTick = 10 * time.Millisecond

// procStatusKiB returns a "<key>:   <n> kB" line of /proc/<pid>/status in KiB.
func procStatusKiB(status []byte, key string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("proc status: bad %s line %q", key, bytes.TrimSpace(line))
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("proc status: no %s", key)
}

// parseDTM reads an HL7 v2 DTM as the bridge writes it,
// YYYYMMDDHHMMSS[.S{1,4}][+/-ZZZZ]; without an offset the time is UTC.
func parseDTM(s string) (time.Time, error) {
	bad := func() (time.Time, error) { return time.Time{}, fmt.Errorf("bad DTM %q", s) }
	num := func(s string) (int, bool) {
		n := 0
		for _, c := range []byte(s) {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, len(s) > 0
	}
	if len(s) < 14 {
		return bad()
	}
	var v [6]int
	for i, w := range [6][2]int{{0, 4}, {4, 6}, {6, 8}, {8, 10}, {10, 12}, {12, 14}} {
		n, ok := num(s[w[0]:w[1]])
		if !ok {
			return bad()
		}
		v[i] = n
	}
	rest, nsec := s[14:], 0
	if frac, ok := bytes.CutPrefix([]byte(rest), []byte(".")); ok {
		j := bytes.IndexAny(frac, "+-")
		if j < 0 {
			j = len(frac)
		}
		n, ok := num(string(frac[:j]))
		if !ok || j > 9 {
			return bad()
		}
		for k := j; k < 9; k++ {
			n *= 10
		}
		nsec, rest = n, string(frac[j:])
	}
	loc := time.UTC
	if rest != "" {
		if len(rest) != 5 || rest[0] != '+' && rest[0] != '-' {
			return bad()
		}
		hh, ok1 := num(rest[1:3])
		mm, ok2 := num(rest[3:5])
		if !ok1 || !ok2 {
			return bad()
		}
		off := hh*3600 + mm*60
		if rest[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	return time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], nsec, loc), nil
}

package hl7_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/hl7/mllptest"
)

func newPool(tb testing.TB, cfg hl7.PoolConfig) *hl7.Pool {
	tb.Helper()
	p, err := hl7.NewPool(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// patientOf returns the patient of a control id "<patient>-<n>".
func patientOf(controlID string) string {
	return controlID[:strings.LastIndexByte(controlID, '-')]
}

// keysOnOtherShards returns one key for each shard other than that of key.
func keysOnOtherShards(t *testing.T, p *hl7.Pool, size int, key string) []string {
	t.Helper()
	seen := map[int]bool{p.Shard(key): true}
	var keys []string
	for i := 0; len(seen) < size; i++ {
		if i > 1000 {
			t.Fatal("hash does not reach every shard")
		}
		k := fmt.Sprintf("other%d", i)
		if !seen[p.Shard(k)] {
			seen[p.Shard(k)] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func TestPoolShardsByPatient(t *testing.T) {
	srv := startServer(t, mllptest.Config{})
	const size, patients, each = 4, 16, 10
	p := newPool(t, hl7.PoolConfig{SenderConfig: hl7.SenderConfig{Addr: srv.Addr()}, Size: size})

	shardOf := map[string]int{}
	used := map[int]bool{}
	for i := range patients {
		key := fmt.Sprintf("MRN%04d", i)
		shardOf[key] = p.Shard(key)
		if s := p.Shard(key); s < 0 || s >= size || s != p.Shard(key) {
			t.Fatalf("Shard(%s) = %d, unstable or out of range", key, s)
		}
		used[shardOf[key]] = true
	}
	if len(used) != size {
		t.Fatalf("%d patients use only %d of %d shards", patients, len(used), size)
	}

	var wg sync.WaitGroup
	for key := range shardOf {
		wg.Go(func() {
			for i := range each { // one patient's messages, in sequence
				id := fmt.Sprintf("%s-%02d", key, i)
				if _, err := p.Send(context.Background(), key, oru(t, id, key), id); err != nil {
					t.Errorf("Send(%s): %v", id, err)
				}
			}
		})
	}
	wg.Wait()

	connOf := map[string]int{} // patient -> connection
	shardConn := map[int]int{} // shard -> connection
	next := map[string]int{}   // patient -> next expected sequence number
	for _, m := range srv.Messages() {
		key := patientOf(m.ControlID)
		if c, ok := connOf[key]; ok && c != m.Conn {
			t.Errorf("%s: patient %s moved from connection %d to %d", m.ControlID, key, c, m.Conn)
		}
		connOf[key] = m.Conn
		if want := fmt.Sprintf("%s-%02d", key, next[key]); m.ControlID != want {
			t.Errorf("connection %d: got %s, want %s (order per patient)", m.Conn, m.ControlID, want)
		}
		next[key]++
		if c, ok := shardConn[shardOf[key]]; ok && c != m.Conn {
			t.Errorf("shard %d uses connections %d and %d", shardOf[key], c, m.Conn)
		}
		shardConn[shardOf[key]] = m.Conn
	}
	conns := map[int]bool{}
	for _, c := range shardConn {
		conns[c] = true
	}
	if len(conns) != size || srv.Connections() != size {
		t.Errorf("shards map to %d connections, server saw %d; want %d", len(conns), srv.Connections(), size)
	}
	for key, n := range next {
		if n != each {
			t.Errorf("patient %s: %d messages received, want %d", key, n, each)
		}
	}
	const total = patients * each
	checkStats(t, p.Stats(), hl7.Stats{Sends: total, Sent: total, Acked: total, Connects: size})
}

func TestPoolDeadConnectionDoesNotBlockOthers(t *testing.T) {
	const dead = "MRN-DEAD"
	srv := startServer(t, mllptest.Config{Behave: func(_ []byte, id string) mllptest.Action {
		return mllptest.Action{Close: patientOf(id) == dead}
	}})
	sleeping := make(chan time.Duration, 1)
	wake := make(chan struct{})
	p := newPool(t, hl7.PoolConfig{Size: 4, SenderConfig: hl7.SenderConfig{
		Addr: srv.Addr(),
		Sleep: func(ctx context.Context, d time.Duration) error {
			sleeping <- d
			select {
			case <-wake:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}})

	_, err := p.Send(context.Background(), dead, oru(t, dead+"-1", dead), dead+"-1")
	sendErr(t, err, "read")

	// The dead shard's next Send waits out its reconnect backoff...
	errc := make(chan error, 1)
	go func() {
		_, err := p.Send(context.Background(), dead, oru(t, dead+"-2", dead), dead+"-2")
		errc <- err
	}()
	if d := recv(t, sleeping); d <= 0 || d > hl7.DefaultBackoffMin {
		t.Errorf("backoff %v, want in (0, %v]", d, hl7.DefaultBackoffMin)
	}
	// ...while every other shard delivers.
	others := keysOnOtherShards(t, p, 4, dead)
	for _, key := range others {
		id := key + "-1"
		if _, err := p.Send(context.Background(), key, oru(t, id, key), id); err != nil {
			t.Errorf("Send(%s) on a healthy shard: %v", id, err)
		}
	}
	// The engine recovers; the dead shard reconnects.
	srv.SetBehavior(nil)
	close(wake)
	if err := recv(t, errc); err != nil {
		t.Fatalf("Send after the backoff: %v", err)
	}
	checkStats(t, p.ShardStats(p.Shard(dead)), hl7.Stats{Sends: 2, Sent: 2, Acked: 1, Failed: 1, Connects: 2, Reconnects: 1})
	for _, key := range others {
		checkStats(t, p.ShardStats(p.Shard(key)), hl7.Stats{Sends: 1, Sent: 1, Acked: 1, Connects: 1})
	}
}

func TestPoolBackoffBounded(t *testing.T) {
	const minB, maxB = time.Second, 8 * time.Second
	srv := startServer(t, mllptest.Config{})
	var up atomic.Bool
	var mu sync.Mutex
	var waits []time.Duration
	p := newPool(t, hl7.PoolConfig{Size: 4, SenderConfig: hl7.SenderConfig{
		Addr:       srv.Addr(),
		BackoffMin: minB,
		BackoffMax: maxB,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if !up.Load() {
				return nil, errors.New("connection refused (test)")
			}
			return new(net.Dialer).DialContext(ctx, network, addr)
		},
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return nil // no real wait: the test only checks the durations
		},
	}})
	lastWaits := func(n int) []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if len(waits) < n {
			t.Fatalf("%d backoff waits, want at least %d", len(waits), n)
		}
		return append([]time.Duration(nil), waits[len(waits)-n:]...)
	}
	// inRange checks a wait after n consecutive failures: in the upper half
	// of min·2^(n-1) capped at max. The wait is measured from the failure,
	// so it may be a little shorter.
	inRange := func(n int, d time.Duration) {
		t.Helper()
		hi := minB << (n - 1)
		if hi > maxB || hi <= 0 {
			hi = maxB
		}
		if d > hi || d < hi/2-100*time.Millisecond {
			t.Errorf("wait after %d failures = %v, want in [%v, %v]", n, d, hi/2, hi)
		}
	}

	send := func(key, id string) error {
		_, err := p.Send(context.Background(), key, oru(t, id, key), id)
		return err
	}
	const key = "MRN1"
	const attempts = 10
	for i := range attempts {
		sendErr(t, send(key, fmt.Sprintf("MRN1-%d", i)), "dial")
	}
	ws := lastWaits(attempts - 1) // no wait before the first attempt
	for i, d := range ws {
		inRange(i+1, d)
	}

	// Backoff is per connection: another shard's first attempt does not
	// wait.
	other := keysOnOtherShards(t, p, 4, key)[0]
	sendErr(t, send(other, other+"-0"), "dial")
	mu.Lock()
	n := len(waits)
	mu.Unlock()
	if n != attempts-1 {
		t.Errorf("another shard's first attempt waited: %d waits, want %d", n, attempts-1)
	}

	// The engine comes back: one more (capped) wait, then delivery; the
	// count then restarts.
	up.Store(true)
	if err := send(key, "MRN1-ok"); err != nil {
		t.Fatalf("Send after recovery: %v", err)
	}
	inRange(attempts, lastWaits(1)[0])
	srv.SetAction(mllptest.Action{Close: true})
	sendErr(t, send(key, "MRN1-drop"), "read")
	srv.SetAction(mllptest.Action{})
	if err := send(key, "MRN1-ok2"); err != nil {
		t.Fatalf("Send after the drop: %v", err)
	}
	inRange(1, lastWaits(1)[0])
}

func TestPoolStats(t *testing.T) {
	srv := startServer(t, mllptest.Config{Behave: func(_ []byte, id string) mllptest.Action {
		switch {
		case strings.HasSuffix(id, "-AE"):
			return mllptest.Action{Code: hl7.CodeAE, ErrorCode: "102"}
		case strings.HasSuffix(id, "-STRAY"):
			return mllptest.Action{StrayControlID: "LATE-1"}
		case strings.HasSuffix(id, "-HOLD"):
			return mllptest.Action{NoACK: true}
		}
		return mllptest.Action{}
	}})
	p := newPool(t, hl7.PoolConfig{Size: 4, SenderConfig: hl7.SenderConfig{Addr: srv.Addr(), BackoffMin: -1}})
	send := func(ctx context.Context, key, id string) error {
		_, err := p.Send(ctx, key, oru(t, id, key), id)
		return err
	}
	shards := map[int]bool{}
	for i := range 8 {
		key := fmt.Sprintf("MRN%d", i)
		shards[p.Shard(key)] = true
		if err := send(context.Background(), key, key+"-1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"MRN0-AE", "MRN1-AE"} {
		var ae *hl7.AckError
		if err := send(context.Background(), patientOf(id), id); !errors.As(err, &ae) {
			t.Fatalf("Send(%s): %v, want an AckError", id, err)
		}
	}
	if err := send(context.Background(), "MRN2", "MRN2-STRAY"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := send(ctx, "MRN3", "MRN3-HOLD"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send(MRN3-HOLD): %v, want a deadline error", err)
	}
	if err := send(context.Background(), "MRN3", "MRN3-2"); err != nil {
		t.Fatal(err)
	}
	p.Close(context.Background())
	if err := send(context.Background(), "MRN4", "MRN4-2"); !errors.Is(err, hl7.ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	checkStats(t, p.Stats(), hl7.Stats{
		Sends:      14,
		Sent:       13,
		Acked:      10, // 8 + STRAY + MRN3-2
		Nacked:     2,
		Timeouts:   1,
		Failed:     1, // after Close
		Connects:   uint64(len(shards)) + 1,
		Reconnects: 1,
		StrayACKs:  1,
	})
	for _, id := range srv.Received() {
		if n := srv.Count(id); n != 1 {
			t.Errorf("%s received %d times", id, n)
		}
	}
}

func TestPoolCloseWaitsForInFlight(t *testing.T) {
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := startServer(t, mllptest.Config{Behave: func(_ []byte, id string) mllptest.Action {
		if id == "MRN1-1" {
			held <- struct{}{}
			<-release
		}
		return mllptest.Action{}
	}})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	p := newPool(t, hl7.PoolConfig{SenderConfig: hl7.SenderConfig{Addr: srv.Addr()}})

	errc := make(chan error, 1)
	go func() {
		_, err := p.Send(context.Background(), "MRN1", oru(t, "MRN1-1", "MRN1"), "MRN1-1")
		errc <- err
	}()
	recv(t, held)
	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	// Wait until Close has started: a Send on another shard is then
	// refused.
	other := keysOnOtherShards(t, p, hl7.DefaultPoolSize, "MRN1")[0]
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", other, i)
		_, err := p.Send(context.Background(), other, oru(t, id, other), id)
		if errors.Is(err, hl7.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v with a Send in flight", err)
	default:
	}
	unblock()
	if err := recv(t, errc); err != nil {
		t.Errorf("in-flight Send: %v, want it to finish", err)
	}
	if err := recv(t, closed); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestPoolCloseDeadline(t *testing.T) {
	held := make(chan struct{}, 1)
	srv := startServer(t, mllptest.Config{Behave: func([]byte, string) mllptest.Action {
		held <- struct{}{}
		return mllptest.Action{NoACK: true}
	}})
	p := newPool(t, hl7.PoolConfig{SenderConfig: hl7.SenderConfig{Addr: srv.Addr(), AckTimeout: time.Minute}})
	errc := make(chan error, 1)
	go func() {
		_, err := p.Send(context.Background(), "MRN1", oru(t, "MRN1-1", "MRN1"), "MRN1-1")
		errc <- err
	}()
	recv(t, held)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	err := recv(t, errc)
	if se := sendErr(t, err, "read"); !errors.Is(se, hl7.ErrClosed) {
		t.Errorf("interrupted Send: %v, want ErrClosed", err)
	}
}

func TestPoolConfigValidate(t *testing.T) {
	for _, cfg := range []hl7.PoolConfig{
		{Size: 2},
		{SenderConfig: hl7.SenderConfig{Addr: "h:1"}, Size: -1},
	} {
		if _, err := hl7.NewPool(cfg); err == nil {
			t.Errorf("NewPool(%+v) succeeded", cfg)
		}
	}
}

// BenchmarkPoolThroughput is the G8 set-up: 4 persistent connections to an
// engine that acknowledges after 1 ms, many patients sending in parallel.
// G8 asks for at least 2,000 msgs/s.
func BenchmarkPoolThroughput(b *testing.B) {
	const size = 4
	srv := startServer(b, mllptest.Config{})
	srv.SetAction(mllptest.Action{Delay: time.Millisecond})
	p := newPool(b, hl7.PoolConfig{SenderConfig: hl7.SenderConfig{Addr: srv.Addr()}, Size: size})

	const nmsg = 1024
	msgs := make([][]byte, nmsg)
	ids := make([]string, nmsg)
	keys := make([]string, nmsg)
	for i := range msgs {
		keys[i] = fmt.Sprintf("MRN%04d", i%257) // many patients
		ids[i] = fmt.Sprintf("%s-%04d", keys[i], i)
		msgs[i] = oru(b, ids[i], keys[i])
	}
	var next atomic.Uint64
	b.SetParallelism(16) // 16·GOMAXPROCS senders, several per connection
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % nmsg
			if _, err := p.Send(context.Background(), keys[i], msgs[i], ids[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(rate/2000, "x-G8")
}

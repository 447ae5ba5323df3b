package kafka

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	kgo "github.com/segmentio/kafka-go"
)

// waitLimit bounds every wait in the integration tests.
const waitLimit = 30 * time.Second

// testBroker returns the address of the real broker the integration tests
// use, or skips the test.
func testBroker(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("BRIDGE_TEST_KAFKA")
	if addr == "" {
		t.Skip("BRIDGE_TEST_KAFKA is not set: this test needs a real Kafka broker; run `make test` (it starts one)")
	}
	return addr
}

// testKafka is the cluster configuration of the tests: the bridge's default
// group timings, a short metadata refresh.
func testKafka(broker string) bridge.KafkaConfig {
	return bridge.KafkaConfig{Brokers: []string{broker}, MetadataRefresh: 500 * time.Millisecond}
}

func testRoute(name, topic, group, start string) bridge.RouteConfig {
	return bridge.RouteConfig{Name: name, Topic: topic, GroupID: group, DeadLetterTopic: topic + ".dead-letter", StartPosition: start}
}

// uniqueName returns prefix plus a random suffix: topics and groups of
// different tests and runs never meet.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLogger collects the logs of a test and prints them only if it fails
// or BRIDGE_TEST_LOGS is set (kafka-go goroutines may log after the test
// returned: never to t.Log).
func testLogger(t *testing.T) *slog.Logger {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("BRIDGE_TEST_LOGS") != "" {
			t.Logf("logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testClient(t *testing.T, broker string) *kgo.Client {
	t.Helper()
	c, err := NewClient(testKafka(broker), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Transport.(*kgo.Transport).CloseIdleConnections)
	return c
}

// createTopic creates a topic and waits until every partition has a leader.
func createTopic(t *testing.T, broker, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c := testClient(t, broker)
	res, err := c.CreateTopics(ctx, &kgo.CreateTopicsRequest{Topics: []kgo.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	waitFor(t, "topic "+topic+" has leaders", func() bool {
		conn, err := kgo.DialContext(ctx, "tcp", broker)
		if err != nil {
			return false
		}
		defer conn.Close()
		ps, err := conn.ReadPartitions(topic)
		if err != nil || len(ps) != partitions {
			return false
		}
		for _, p := range ps {
			if p.Leader.Port == 0 {
				return false
			}
		}
		return true
	})
}

// produce writes msgs synchronously, each to the partition in its
// Partition field.
func produce(t *testing.T, broker, topic string, msgs ...kgo.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	// A transport of its own: a shared one may have cached metadata from
	// before the topic existed.
	tr := &kgo.Transport{}
	defer tr.CloseIdleConnections()
	w := &kgo.Writer{
		Addr: kgo.TCP(broker), Transport: tr, Topic: topic, RequiredAcks: kgo.RequireAll, BatchTimeout: time.Millisecond,
		Balancer: kgo.BalancerFunc(func(m kgo.Message, _ ...int) int { return m.Partition }),
	}
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// waitFor polls cond every 10 ms until it holds, failing the test after
// waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", waitLimit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// consumer is a claim function for the tests: it reads every record, hands
// it out on readings, commits it, and tracks which partitions it holds.
type consumer struct {
	readings chan bridge.Reading
	// onClaim, when set, is called when a claim starts.
	onClaim func(bridge.Claim)

	mu     sync.Mutex
	active map[int]int // partition -> running claims
	claims int         // claims started
}

func newConsumer() *consumer {
	return &consumer{readings: make(chan bridge.Reading, 1000), active: map[int]int{}}
}

func (c *consumer) claim(ctx context.Context, cl bridge.Claim) error {
	c.mu.Lock()
	c.active[cl.Partition()]++
	c.claims++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.active[cl.Partition()]--
		if c.active[cl.Partition()] == 0 {
			delete(c.active, cl.Partition())
		}
		c.mu.Unlock()
	}()
	if c.onClaim != nil {
		c.onClaim(cl)
	}
	for {
		r, err := cl.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case c.readings <- r:
		case <-ctx.Done():
			return nil
		}
		if err := cl.Commit(ctx, r.Pos.Offset+1); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// holding returns how many partitions the consumer holds.
func (c *consumer) holding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.active)
}

// next returns the next reading, failing the test after waitLimit.
func (c *consumer) next(t *testing.T) bridge.Reading {
	t.Helper()
	select {
	case r := <-c.readings:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("no reading within %s", waitLimit)
		return bridge.Reading{}
	}
}

// running is a Consume call in a goroutine of its own.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// consume starts src.Consume; the test's cleanup stops it.
func consume(t *testing.T, src *Source, claim func(context.Context, bridge.Claim) error) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = src.Consume(ctx, claim)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitLimit):
			t.Errorf("Consume did not return within %s of its context ending", waitLimit)
		}
	})
	return r
}

// stop cancels Consume and returns its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait returns Consume's error once it returned.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(waitLimit):
		t.Fatalf("Consume did not return within %s", waitLimit)
		return errors.New("unreachable")
	}
}

func newTestSource(t *testing.T, k bridge.KafkaConfig, rc bridge.RouteConfig) *Source {
	t.Helper()
	src, err := NewSource(k, rc, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// committed returns the group's committed offsets of topic by partition.
func committed(t *testing.T, broker, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	res, err := testClient(t, broker).OffsetFetch(ctx, &kgo.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("offset fetch: %v", res.Error)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch partition %d: %v", p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

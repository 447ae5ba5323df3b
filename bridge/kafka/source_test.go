package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/google/go-cmp/cmp"
	kgo "github.com/segmentio/kafka-go"
)

func TestStartOffset(t *testing.T) {
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		start            string
		first, last, hit int64
		want             int64
	}{
		{start: "", first: 3, last: 10, hit: -1, want: 10},
		{start: "latest", first: 3, last: 10, hit: -1, want: 10},
		{start: "earliest", first: 3, last: 10, hit: -1, want: 3},
		{start: at.Format(time.RFC3339), first: 3, last: 10, hit: 7, want: 7},
		{start: at.Format(time.RFC3339), first: 3, last: 10, hit: -1, want: 10}, // nothing that recent: the end
		{start: at.Format(time.RFC3339), first: 3, last: 10, hit: 1, want: 3},   // never before the first offset
	}
	for _, tt := range tests {
		sp, err := bridge.ParseStartPosition(tt.start)
		if err != nil {
			t.Fatalf("ParseStartPosition(%q): %v", tt.start, err)
		}
		if got := startOffset(sp, tt.first, tt.last, tt.hit); got != tt.want {
			t.Errorf("startOffset(%q, first %d, last %d, at %d) = %d, want %d", tt.start, tt.first, tt.last, tt.hit, got, tt.want)
		}
	}
}

func TestNewSourceRejects(t *testing.T) {
	k := bridge.KafkaConfig{Brokers: []string{"127.0.0.1:9092"}}
	for name, rc := range map[string]bridge.RouteConfig{
		"start position": testRoute("r", "t", "g", "yesterday"),
		"no topic":       testRoute("r", "", "g", "latest"),
		"no group":       testRoute("r", "t", "", "latest"),
	} {
		if _, err := NewSource(k, rc, nil, nil); err == nil || !strings.Contains(err.Error(), "route r") {
			t.Errorf("%s: error %v, want one naming the route", name, err)
		}
	}
	if _, err := NewSource(bridge.KafkaConfig{}, testRoute("r", "t", "g", ""), nil, nil); err == nil {
		t.Error("no brokers: no error")
	}
}

func TestReading(t *testing.T) {
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	now := at.Add(time.Second)
	got := reading(kgo.Message{
		Topic: "vitals", Partition: 2, Offset: 41, HighWaterMark: 50, Key: []byte("hrm-1"), Value: []byte("{}"),
		Headers: []kgo.Header{{Key: "correlation-id", Value: []byte("c-1")}}, Time: at,
	}, now)
	want := bridge.Reading{
		Value: []byte("{}"), Key: []byte("hrm-1"), Headers: []bridge.Header{{Key: "correlation-id", Value: []byte("c-1")}},
		Pos: bridge.Position{Topic: "vitals", Partition: 2, Offset: 41}, Time: at, Received: now,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("reading (-want +got):\n%s", d)
	}
}

// TestConsumeCommitResume: every record of a 3-partition topic reaches the
// claims in offset order per partition, the commits land, and a new Source
// of the same group resumes after them.
func TestConsumeCommitResume(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic, group := uniqueName("commit"), uniqueName("group")
	createTopic(t, broker, topic, 3)
	var msgs []kgo.Message
	for i := range 10 {
		for p := range 3 {
			msgs = append(msgs, kgo.Message{Partition: p, Key: []byte(fmt.Sprint("dev-", p)), Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
	}
	produce(t, broker, topic, msgs...)

	rc := testRoute("commit", topic, group, bridge.StartEarliest)
	c := newConsumer()
	run := consume(t, newTestSource(t, testKafka(broker), rc), c.claim)
	got := map[int][]string{}
	for range len(msgs) {
		r := c.next(t)
		if r.Pos.Topic != topic || r.Time.IsZero() || r.Received.IsZero() {
			t.Errorf("reading at %+v: time %v received %v", r.Pos, r.Time, r.Received)
		}
		if want := int64(len(got[r.Pos.Partition])); r.Pos.Offset != want {
			t.Errorf("partition %d: offset %d, want %d (in order, none skipped)", r.Pos.Partition, r.Pos.Offset, want)
		}
		got[r.Pos.Partition] = append(got[r.Pos.Partition], string(r.Value))
	}
	for p := range 3 {
		var want []string
		for i := range 10 {
			want = append(want, fmt.Sprintf("p%d-%d", p, i))
		}
		if d := cmp.Diff(want, got[p]); d != "" {
			t.Errorf("partition %d values (-want +got):\n%s", p, d)
		}
	}
	want := map[int]int64{0: 10, 1: 10, 2: 10}
	waitFor(t, "commits at offset 10 on every partition", func() bool {
		return cmp.Equal(committed(t, broker, group, topic, 3), want)
	})
	if err := run.stop(t); err != nil {
		t.Fatalf("Consume: %v", err)
	}

	produce(t, broker, topic,
		kgo.Message{Partition: 0, Value: []byte("p0-10")},
		kgo.Message{Partition: 1, Value: []byte("p1-10")},
		kgo.Message{Partition: 2, Value: []byte("p2-10")})
	c2 := newConsumer()
	consume(t, newTestSource(t, testKafka(broker), rc), c2.claim)
	for range 3 {
		r := c2.next(t)
		if want := fmt.Sprintf("p%d-10", r.Pos.Partition); r.Pos.Offset != 10 || string(r.Value) != want {
			t.Errorf("after restart: %+v %q, want offset 10 %q", r.Pos, r.Value, want)
		}
	}
}

// TestStartPositions: a group without commits starts where the route's
// start position says.
func TestStartPositions(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	tests := []struct {
		start     string
		before    []kgo.Message // produced before the Source starts
		wantFirst string
	}{
		{start: bridge.StartLatest, before: []kgo.Message{{Value: []byte("old-1")}, {Value: []byte("old-2")}}, wantFirst: "new"},
		{start: bridge.StartEarliest, before: []kgo.Message{{Value: []byte("old-1")}, {Value: []byte("old-2")}}, wantFirst: "old-1"},
		{
			start: base.Add(-150 * time.Minute).Format(time.RFC3339),
			before: []kgo.Message{
				{Value: []byte("3h-ago"), Time: base.Add(-3 * time.Hour)},
				{Value: []byte("2h-ago"), Time: base.Add(-2 * time.Hour)},
				{Value: []byte("1h-ago"), Time: base.Add(-time.Hour)},
			},
			wantFirst: "2h-ago",
		},
		{start: base.Add(time.Hour).Format(time.RFC3339), before: []kgo.Message{{Value: []byte("old-1"), Time: base}}, wantFirst: "new"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i, "-", tt.start), func(t *testing.T) {
			t.Parallel()
			topic := uniqueName("start")
			createTopic(t, broker, topic, 1)
			produce(t, broker, topic, tt.before...)
			c := newConsumer()
			claimed := make(chan struct{}, 1)
			c.onClaim = func(bridge.Claim) { claimed <- struct{}{} }
			consume(t, newTestSource(t, testKafka(broker), testRoute("start", topic, uniqueName("group"), tt.start)), c.claim)
			select {
			case <-claimed:
			case <-time.After(waitLimit):
				t.Fatal("no claim")
			}
			produce(t, broker, topic, kgo.Message{Value: []byte("new")})
			if r := c.next(t); string(r.Value) != tt.wantFirst {
				t.Errorf("first reading %q at %+v, want %q", r.Value, r.Pos, tt.wantFirst)
			}
		})
	}
}

// TestTopicCreatedLater: a route whose topic does not exist waits for it
// and consumes it once it is created.
func TestTopicCreatedLater(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic := uniqueName("later")
	src := newTestSource(t, testKafka(broker), testRoute("later", topic, uniqueName("group"), bridge.StartEarliest))
	c := newConsumer()
	consume(t, src, c.claim)
	waitFor(t, "the source waits for its topic", src.Waiting)
	// Created by the test with 2 partitions: had the source let the broker
	// auto-create it, this would fail with TopicAlreadyExists.
	createTopic(t, broker, topic, 2)
	produce(t, broker, topic, kgo.Message{Partition: 1, Value: []byte("first")})
	if r := c.next(t); string(r.Value) != "first" || r.Pos.Partition != 1 {
		t.Errorf("reading %q at %+v", r.Value, r.Pos)
	}
	if src.Waiting() {
		t.Error("Waiting() after the topic appeared")
	}
	waitFor(t, "both partitions claimed", func() bool { return c.holding() == 2 })
}

// TestStopWhileWaitingForTopic: Consume returns nil when its context ends
// before the topic exists.
func TestStopWhileWaitingForTopic(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	src := newTestSource(t, testKafka(broker), testRoute("waiting", uniqueName("absent"), uniqueName("group"), ""))
	run := consume(t, src, newConsumer().claim)
	waitFor(t, "the source waits for its topic", src.Waiting)
	if err := run.stop(t); err != nil {
		t.Errorf("Consume: %v, want nil", err)
	}
}

// TestGracefulLeave: after one member's context ends, another member of
// the group gets all partitions well within the session timeout: the first
// left the group instead of timing out.
func TestGracefulLeave(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic, group := uniqueName("leave"), uniqueName("group")
	createTopic(t, broker, topic, 3)
	rc := testRoute("leave", topic, group, bridge.StartEarliest)
	k := testKafka(broker)

	a, b := newConsumer(), newConsumer()
	runA := consume(t, newTestSource(t, k, rc), a.claim)
	waitFor(t, "A holds all 3 partitions", func() bool { return a.holding() == 3 })
	consume(t, newTestSource(t, k, rc), b.claim)
	waitFor(t, "A and B share the partitions", func() bool { return b.holding() > 0 && a.holding()+b.holding() == 3 })

	start := time.Now()
	if err := runA.stop(t); err != nil {
		t.Fatalf("A: %v", err)
	}
	if n := a.holding(); n != 0 {
		t.Errorf("A's Consume returned with %d claims running", n)
	}
	waitFor(t, "B holds all 3 partitions", func() bool { return b.holding() == 3 })
	took := time.Since(start)
	t.Logf("B held every partition %s after A was stopped (session timeout %s)", took.Round(time.Millisecond), withDefaults(k).SessionTimeout)
	if limit := withDefaults(k).SessionTimeout - time.Second; took > limit {
		t.Errorf("B took %s to get A's partitions; over %s means A did not leave the group", took, limit)
	}
}

// TestClaimErrorStopsConsume: a claim's error ends Consume after every
// other claim returned and the instance left the group.
func TestClaimErrorStopsConsume(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic, group := uniqueName("fail"), uniqueName("group")
	createTopic(t, broker, topic, 2)
	boom := errors.New("boom")
	otherStarted, otherReturned := make(chan struct{}), make(chan struct{})
	claim := func(ctx context.Context, c bridge.Claim) error {
		if c.Partition() == 1 {
			close(otherStarted)
			defer close(otherReturned)
			<-ctx.Done()
			return ctx.Err()
		}
		<-otherStarted
		return boom
	}
	run := consume(t, newTestSource(t, testKafka(broker), testRoute("failing", topic, group, "")), claim)
	err := run.wait(t)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "route failing") || !strings.Contains(err.Error(), "partition 0") {
		t.Fatalf("Consume: %v, want boom naming route failing and partition 0", err)
	}
	select {
	case <-otherReturned:
	default:
		t.Error("Consume returned before the other claim returned")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	res, err := testClient(t, broker).DescribeGroups(ctx, &kgo.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	if g := res.Groups[0]; g.Error != nil || len(g.Members) != 0 || g.GroupState != "Empty" {
		t.Errorf("group after Consume returned: state %q, %d members, error %v; want Empty", g.GroupState, len(g.Members), g.Error)
	}
}

// TestStalledPartition: a partition whose claim stops reading holds back
// only itself; its claim sees the partition's end as HighWater.
func TestStalledPartition(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic := uniqueName("stall")
	createTopic(t, broker, topic, 2)
	var msgs []kgo.Message
	for i := range 100 {
		msgs = append(msgs, kgo.Message{Partition: 0, Value: []byte(fmt.Sprint("stuck-", i))})
	}
	for i := range 5 {
		msgs = append(msgs, kgo.Message{Partition: 1, Value: []byte(fmt.Sprint("flowing-", i))})
	}
	produce(t, broker, topic, msgs...)
	c := newConsumer()
	highWater := make(chan int64, 1)
	claim := func(ctx context.Context, cl bridge.Claim) error {
		if cl.Partition() == 1 {
			return c.claim(ctx, cl)
		}
		if _, err := cl.Read(ctx); err != nil { // one reading, then the destination "hangs"
			return nil
		}
		highWater <- cl.HighWater()
		<-ctx.Done()
		return nil
	}
	consume(t, newTestSource(t, testKafka(broker), testRoute("stall", topic, uniqueName("group"), bridge.StartEarliest)), claim)
	for i := range 5 {
		if r := c.next(t); r.Pos.Partition != 1 || string(r.Value) != fmt.Sprint("flowing-", i) {
			t.Fatalf("reading %d: %q at %+v", i, r.Value, r.Pos)
		}
	}
	select {
	case hw := <-highWater:
		if hw != 100 {
			t.Errorf("stalled claim's HighWater %d, want 100", hw)
		}
	case <-time.After(waitLimit):
		t.Fatal("the stalled partition's claim read nothing")
	}
}

// TestInvalidSessionTimeout: a session timeout the broker refuses ends
// Consume with the broker's error instead of retrying forever.
func TestInvalidSessionTimeout(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic := uniqueName("session")
	createTopic(t, broker, topic, 1)
	k := testKafka(broker)
	k.SessionTimeout, k.HeartbeatInterval = time.Second, 300*time.Millisecond // the broker's minimum is 6 s
	run := consume(t, newTestSource(t, k, testRoute("session", topic, uniqueName("group"), "")), newConsumer().claim)
	if err := run.wait(t); !errors.Is(err, kgo.InvalidSessionTimeout) || !strings.Contains(err.Error(), "route session") {
		t.Errorf("Consume: %v, want InvalidSessionTimeout naming the route", err)
	}
}

// TestRestartAfterKill: a member killed with SIGKILL cannot leave the
// group; a new member gets its partition once the coordinator's session
// timeout expires, and must deliver a record produced after the kill
// within 10 s.
func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic, group := uniqueName("kill"), uniqueName("group")
	createTopic(t, broker, topic, 1)

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BRIDGE_KAFKA_HELPER=1", "HELPER_TOPIC="+topic, "HELPER_GROUP="+group)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	claimed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "claimed") {
				close(claimed)
				break
			}
		}
		for sc.Scan() { // drain until the child dies
		}
	}()
	select {
	case <-claimed:
	case <-ctx.Done():
		t.Fatal("the child process never claimed its partition")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no LeaveGroup
		t.Fatal(err)
	}
	killed := time.Now()
	_ = cmd.Wait()

	produce(t, broker, topic, kgo.Message{Value: []byte("after-kill")})
	c := newConsumer()
	var (
		firstClaim   time.Time
		once         sync.Once
		claimedAgain = make(chan struct{})
	)
	c.onClaim = func(bridge.Claim) { once.Do(func() { firstClaim = time.Now(); close(claimedAgain) }) }
	consume(t, newTestSource(t, testKafka(broker), testRoute("kill", topic, group, bridge.StartEarliest)), c.claim)
	r := c.next(t)
	took := time.Since(killed)
	<-claimedAgain
	if string(r.Value) != "after-kill" {
		t.Errorf("first reading %q, want after-kill", r.Value)
	}
	t.Logf("kill -9 recovery: partition claimed %s and record read %s after the kill (session timeout %s, heartbeat %s)",
		firstClaim.Sub(killed).Round(time.Millisecond), took.Round(time.Millisecond),
		withDefaults(testKafka(broker)).SessionTimeout, withDefaults(testKafka(broker)).HeartbeatInterval)
	if took > 10*time.Second {
		t.Errorf("recovery took %s, want under 10s", took)
	}
}

// TestHelperProcess is the child of TestRestartAfterKill: it consumes a
// topic and says "claimed" once it holds a partition, until it is killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("BRIDGE_KAFKA_HELPER") != "1" {
		return
	}
	broker := testBroker(t)
	rc := testRoute("kill", os.Getenv("HELPER_TOPIC"), os.Getenv("HELPER_GROUP"), bridge.StartEarliest)
	src, err := NewSource(testKafka(broker), rc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Bounded, so the child cannot outlive a parent that died.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = src.Consume(ctx, func(ctx context.Context, c bridge.Claim) error {
		fmt.Printf("claimed %d\n", c.Partition())
		<-ctx.Done()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/google/go-cmp/cmp"
	kgo "github.com/segmentio/kafka-go"
)

var (
	firstAttempt = time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	lastAttempt  = time.Date(2026, 11, 25, 9, 0, 30, 500, time.UTC)
)

func testReading() bridge.Reading {
	return bridge.Reading{
		Value: []byte(`{"kind":"heart-rate","value":900}`), Key: []byte("hrm-1"),
		Headers: []bridge.Header{
			{Key: "correlation-id", Value: []byte("c-1")},
			{Key: HeaderReason, Value: []byte("spoofed")}, // a producer's: must not survive
		},
		Pos: bridge.Position{Topic: "vitals", Partition: 2, Offset: 41},
	}
}

func headerMap(hs []kgo.Header) [][2]string {
	out := make([][2]string, len(hs))
	for i, h := range hs {
		out[i] = [2]string{h.Key, string(h.Value)}
	}
	return out
}

func TestDeadLetterRecord(t *testing.T) {
	r := testReading()
	got := deadLetterRecord(r, bridge.DeadLetter{
		Route: "hr", Stage: bridge.StageDeliver, Reason: "http-422", Err: "POST Observation: 422: rule broken",
		Device: "Device/hrm-1", First: firstAttempt, Last: lastAttempt, Attempts: 3, Readings: []int{0, 3},
	})
	if string(got.Key) != "hrm-1" || string(got.Value) != string(r.Value) || got.Topic != "" {
		t.Errorf("record key %q value %q topic %q", got.Key, got.Value, got.Topic)
	}
	want := [][2]string{
		{"correlation-id", "c-1"},
		{"fhir-bridge-route", "hr"},
		{"fhir-bridge-stage", "deliver"},
		{"fhir-bridge-reason", "http-422"},
		{"fhir-bridge-error", "POST Observation: 422: rule broken"},
		{"fhir-bridge-device", "Device/hrm-1"},
		{"fhir-bridge-source-topic", "vitals"},
		{"fhir-bridge-source-partition", "2"},
		{"fhir-bridge-source-offset", "41"},
		{"fhir-bridge-first-attempt", "2026-11-25T09:00:00Z"},
		{"fhir-bridge-last-attempt", "2026-11-25T09:00:30.0000005Z"},
		{"fhir-bridge-attempts", "3"},
		{"fhir-bridge-readings", "0,3"},
	}
	if d := cmp.Diff(want, headerMap(got.Headers)); d != "" {
		t.Errorf("headers (-want +got):\n%s", d)
	}

	// No device, the whole payload refused: no device or readings header.
	got = deadLetterRecord(bridge.Reading{Pos: r.Pos}, bridge.DeadLetter{Route: "hr", Stage: bridge.StageMap, Reason: "invalid-payload"})
	for _, h := range got.Headers {
		if h.Key == HeaderDevice || h.Key == HeaderReadings {
			t.Errorf("header %s %q without a device or refused readings", h.Key, h.Value)
		}
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("x", MaxErrorHeader+10)
	if got := truncate(long, MaxErrorHeader); got != long[:MaxErrorHeader]+"..." {
		t.Errorf("ASCII: %d bytes", len(got))
	}
	// A two-byte character across the limit is dropped whole.
	s := strings.Repeat("x", MaxErrorHeader-1) + "é" + "tail"
	if got := truncate(s, MaxErrorHeader); got != strings.Repeat("x", MaxErrorHeader-1)+"..." {
		t.Errorf("multi-byte: ends in %q", got[len(got)-6:])
	}
	if got := truncate("short", MaxErrorHeader); got != "short" {
		t.Errorf("short: %q", got)
	}
}

func TestDescribeDeadLetter(t *testing.T) {
	msg := deadLetterRecord(testReading(), bridge.DeadLetter{
		Route: "hr", Stage: bridge.StageMap, Reason: "invalid-payload", Err: "field value: out of range",
		Device: "Device/hrm-1", First: firstAttempt, Last: lastAttempt, Attempts: 1,
	})
	msg.Partition, msg.Offset = 1, 7
	got := describeDeadLetter(msg)
	want := Replayed{Partition: 1, Offset: 7, Reason: "invalid-payload", Stage: "map", Device: "Device/hrm-1", LastAttempt: lastAttempt}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for name, tt := range map[string]struct {
		f    ReplayFilter
		want bool
	}{
		"all":           {ReplayFilter{}, true},
		"reason":        {ReplayFilter{Reason: "invalid-payload"}, true},
		"other reason":  {ReplayFilter{Reason: "http-422"}, false},
		"bare device":   {ReplayFilter{Device: "hrm-1"}, true},
		"device ref":    {ReplayFilter{Device: "Device/hrm-1"}, true},
		"other device":  {ReplayFilter{Device: "hrm-2"}, false},
		"since before":  {ReplayFilter{Since: lastAttempt.Add(-time.Second)}, true},
		"since after":   {ReplayFilter{Since: lastAttempt.Add(time.Second)}, false},
		"until before":  {ReplayFilter{Until: lastAttempt.Add(-time.Second)}, false},
		"until after":   {ReplayFilter{Until: lastAttempt.Add(time.Second)}, true},
		"window around": {ReplayFilter{Since: lastAttempt.Add(-time.Minute), Until: lastAttempt.Add(time.Minute), Reason: "invalid-payload"}, true},
	} {
		if got := tt.f.matches(got); got != tt.want {
			t.Errorf("%s: matches = %v, want %v", name, got, tt.want)
		}
	}
}

// FuzzDeadLetterRecord: whatever the reading's headers and the reasons, the
// record carries each bridge header once, keeps the producer's other
// headers, and replay reads back what was written.
func FuzzDeadLetterRecord(f *testing.F) {
	f.Add("http-422", "deliver", "Device/hrm-1", "rule broken", "fhir-bridge-reason", "x", 3)
	f.Add("", "", "", strings.Repeat("é", 1500), "correlation-id", "c", 0)
	f.Fuzz(func(t *testing.T, reason, stage, device, errText, hk, hv string, attempts int) {
		r := bridge.Reading{Headers: []bridge.Header{{Key: hk, Value: []byte(hv)}}, Pos: bridge.Position{Topic: "t", Offset: 5}}
		msg := deadLetterRecord(r, bridge.DeadLetter{Route: "r", Stage: stage, Reason: reason, Device: device, Err: errText, Last: lastAttempt, Attempts: attempts})
		seen := map[string]int{}
		for _, h := range msg.Headers {
			seen[h.Key]++
			if h.Key == HeaderError && len(h.Value) > MaxErrorHeader+3 {
				t.Errorf("error header of %d bytes", len(h.Value))
			}
		}
		for _, k := range []string{HeaderRoute, HeaderStage, HeaderReason, HeaderError, HeaderAttempts} {
			if seen[k] != 1 {
				t.Errorf("%s appears %d times", k, seen[k])
			}
		}
		if !isBridgeHeader(hk) && seen[hk] != 1 {
			t.Errorf("producer header %q appears %d times", hk, seen[hk])
		}
		got := describeDeadLetter(msg)
		if got.Reason != reason || got.Stage != stage || got.Device != device || !got.LastAttempt.Equal(lastAttempt) {
			t.Errorf("read back %+v", got)
		}
	})
}

// TestDeadLetterAndReplay: dead letters written to a topic the broker
// auto-creates, a dry run that matches both, and a filtered replay that
// re-injects one into the source topic, without the bridge's headers, and
// audits it.
func TestDeadLetterAndReplay(t *testing.T) {
	t.Parallel()
	broker := testBroker(t)
	topic := uniqueName("replay")
	createTopic(t, broker, topic, 1)
	rc := testRoute("replay", topic, uniqueName("group"), "")
	k := testKafka(broker)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	dlw, err := NewDeadLetterWriter(k, rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	refused := testReading()
	where, err := dlw.Write(ctx, refused, bridge.DeadLetter{Route: "replay", Stage: bridge.StageDeliver, Reason: "http-422",
		Err: "rule broken", Device: "Device/hrm-1", First: firstAttempt, Last: lastAttempt, Attempts: 2})
	if err != nil || where != rc.DeadLetterTopic {
		t.Fatalf("Write: %q, %v", where, err)
	}
	bad := bridge.Reading{Value: []byte("not json"), Pos: bridge.Position{Topic: topic, Offset: 42}}
	if _, err := dlw.Write(ctx, bad, bridge.DeadLetter{Route: "replay", Stage: bridge.StageMap, Reason: "invalid-payload",
		Err: "not JSON", First: lastAttempt, Last: lastAttempt, Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if err := dlw.Close(); err != nil {
		t.Fatal(err)
	}

	opts := ReplayOptions{Kafka: k, Route: rc, DryRun: true, Actor: "cli:test"}
	res, err := Replay(ctx, opts)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if res.Scanned != 2 || len(res.Matched) != 2 || res.Replayed != 0 {
		t.Fatalf("dry run: %+v", res)
	}

	al := audit.NewMemory()
	at := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	opts = ReplayOptions{Kafka: k, Route: rc, Filter: ReplayFilter{Reason: "http-422", Device: "hrm-1"}, Audit: al, Actor: "cli:test",
		Now: func() time.Time { return at }}
	if res, err = Replay(ctx, opts); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if res.Scanned != 2 || len(res.Matched) != 1 || res.Replayed != 1 || res.Matched[0].Offset != 0 {
		t.Fatalf("replay: %+v", res)
	}
	events, err := al.List(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ref := rc.DeadLetterTopic + "/0/0"
	wantEvent := audit.Event{Time: at, Action: audit.ActionReplayed, Outcome: audit.OutcomeSuccess, Actor: "cli:test", Route: "replay",
		Topic: rc.DeadLetterTopic, Device: "Device/hrm-1", Location: topic, Detail: "deliver: http-422", CorrelationID: ref}
	if len(events) != 1 {
		t.Fatalf("%d audit events, want 1", len(events))
	}
	e := events[0]
	e.ID, e.Seq, e.PrevHash, e.Hash = 0, 0, nil, nil
	if d := cmp.Diff(wantEvent, e); d != "" {
		t.Errorf("audit event (-want +got):\n%s", d)
	}

	rd := kgo.NewReader(kgo.ReaderConfig{Brokers: []string{broker}, Topic: topic, MaxWait: readerMaxWait})
	defer rd.Close()
	msg, err := rd.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Key) != "hrm-1" || string(msg.Value) != string(refused.Value) {
		t.Errorf("replayed key %q value %q", msg.Key, msg.Value)
	}
	if d := cmp.Diff([][2]string{{"correlation-id", "c-1"}, {HeaderReplayOf, ref}}, headerMap(msg.Headers)); d != "" {
		t.Errorf("replayed headers (-want +got):\n%s", d)
	}
}

func TestReplayNeedsAudit(t *testing.T) {
	if _, err := Replay(context.Background(), ReplayOptions{}); err == nil || !strings.Contains(err.Error(), "audit") {
		t.Errorf("error %v", err)
	}
}

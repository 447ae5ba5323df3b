package bridge

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"
	"github.com/fhir-bridge/fhir-bridge/hl7"
	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// recordingSender acknowledges everything and records, per key, the order
// in which messages were sent.
type recordingSender struct {
	mu    sync.Mutex
	byKey map[string][]string
}

func (s *recordingSender) Send(_ context.Context, key string, msg []byte, id string) (hl7.ACK, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey == nil {
		s.byKey = map[string][]string{}
	}
	// The OBX-5 value tells the test which reading this is.
	s.byKey[key] = append(s.byKey[key], string(msg))
	return hl7.ACK{Code: hl7.CodeAA, ControlID: id}, nil
}

// TestMLLPRouteKeepsPatientOrder: readings fetched together go out over
// several connections at once, but each patient's in their original order,
// and the ledger records every acknowledged message.
func TestMLLPRouteKeepsPatientOrder(t *testing.T) {
	var msgs []Reading
	for i := range 30 {
		patient := fmt.Sprintf("p-%d", i%3)
		msgs = append(msgs, msg(int64(i), reading(fmt.Sprintf("hrm-%d", i%3), patient, i, 60+i)))
	}
	src := newFakeSource(msgs...)
	sender := &recordingSender{}
	ledger := audit.NewMemory()
	r := newRoute(t, src, nil, &bridgetest.AuditLog{})
	r.enc = NewORUEncoder(mappers.ORUOptions{})
	sink, err := NewMLLPSink(MLLPSinkConfig{Route: testRoute, Sender: sender, Ledger: ledger, Parallel: 3, Retry: r.retry})
	if err != nil {
		t.Fatal(err)
	}
	r.sink = sink
	r.batch = Batching{MaxReadings: 50, MaxBytes: 1 << 20, Linger: 100 * time.Millisecond}
	h := start(t, r)
	awaitCommit(t, src, msgs[29])
	h.stop(t)

	sender.mu.Lock()
	defer sender.mu.Unlock()
	if len(sender.byKey) != 3 {
		t.Fatalf("%d patients, want 3", len(sender.byKey))
	}
	for key, sent := range sender.byKey {
		if len(sent) != 10 {
			t.Errorf("%s: %d messages, want 10", key, len(sent))
		}
		prev := -1
		for _, m := range sent {
			// Values were 60+i for message i: increasing per patient.
			var v int
			for _, seg := range strings.Split(m, "\r") {
				if strings.HasPrefix(seg, "OBX|2|NM|") {
					fmt.Sscanf(strings.Split(seg, "|")[5], "%d", &v)
				}
			}
			if v <= prev {
				t.Errorf("%s: value %d after %d: patient order broken", key, v, prev)
			}
			prev = v
		}
	}
}

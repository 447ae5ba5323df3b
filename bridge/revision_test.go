package bridge

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/bridge/bridgetest"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/fhir/fhirsandbox"
)

// revised returns a reading with a status and value, same identity as
// reading(device, patient, minutes, ...).
func revised(device, patient string, minutes, bpm int, status string) []byte {
	r := bridgetest.HeartRate(device, patient, readingTime.Add(timeMinutes(minutes)), bpm)
	b := r.JSON()
	if status == "" {
		return b
	}
	return []byte(strings.Replace(string(b), `{`, `{"status":"`+status+`",`, 1))
}

// TestCorrectionsReachTheEHR: a reading, a redelivery of it, its correction
// (a new value, status corrected), a redelivery of the correction, and its
// retraction (entered-in-error). The EHR ends with one Observation at
// version 3, and the audit trail says delivered, already-present,
// corrected, already-present, retracted. Once through single creates and
// once through batch Bundles.
func TestCorrectionsReachTheEHR(t *testing.T) {
	for _, batch := range []bool{false, true} {
		name := "single"
		if batch {
			name = "batch"
		}
		t.Run(name, func(t *testing.T) {
			ehr := fhirsandbox.New(codec(t))
			srv := httptest.NewServer(ehr)
			t.Cleanup(srv.Close)
			client, err := fhir.NewClient(fhir.ClientConfig{BaseURL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			values := [][]byte{
				revised("hrm-1", "p-1", 0, 72, ""),
				revised("hrm-1", "p-1", 0, 72, ""),
				revised("hrm-1", "p-1", 0, 74, "corrected"),
				revised("hrm-1", "p-1", 0, 74, "corrected"),
				revised("hrm-1", "p-1", 0, 74, "entered-in-error"),
			}
			var msgs []Reading
			for i, v := range values {
				msgs = append(msgs, msg(int64(i), v))
			}
			src := newFakeSource(msgs...)
			al := &bridgetest.AuditLog{}
			r := newRoute(t, src, nil, al)
			if batch {
				r.sink = NewFHIRBatchSink(client, nil, client, BatchLimits{MaxEntries: 10, MaxBytes: 1 << 20, Concurrency: 1}, discardLog())
				// All five in one Bundle: the server sees the same identifier
				// five times, and the revisions are settled in order after it.
				r.batch = Batching{MaxReadings: 10, MaxBytes: 1 << 20, Linger: time.Second}
			} else {
				r.sink = NewFHIRSingleSink(client, nil, client, discardLog())
			}
			h := start(t, r)
			awaitCommit(t, src, msgs[len(msgs)-1])
			h.stop(t)

			obs := ehr.Resources("Observation")
			if len(obs) != 1 {
				t.Fatalf("EHR holds %d Observations, want 1 (revisions update it)", len(obs))
			}
			if v := ehr.Version("Observation/1"); v != 3 {
				t.Errorf("Observation/1 at version %d, want 3 (created, corrected, retracted)", v)
			}
			body, _ := ehr.Read("Observation/1")
			var stored struct {
				Status        string `json:"status"`
				ValueQuantity struct {
					Value json.Number `json:"value"`
				} `json:"valueQuantity"`
			}
			if err := json.Unmarshal(body, &stored); err != nil || stored.Status != "entered-in-error" || stored.ValueQuantity.Value != "74" {
				t.Errorf("stored Observation %s: want status entered-in-error, value 74", body)
			}
			var got []string
			for _, e := range al.Events() {
				a := e.Action
				if e.Reason == "already-present" {
					a = "already-present"
				}
				got = append(got, a)
				if (e.Action == audit.ActionCorrected || e.Action == audit.ActionRetracted) && !strings.HasPrefix(e.Detail, "revision ") {
					t.Errorf("%s row without its revisions: %+v", e.Action, e)
				}
			}
			if want := "delivered,already-present,corrected,already-present,retracted"; strings.Join(got, ",") != want {
				t.Errorf("audit %s, want %s", strings.Join(got, ","), want)
			}
		})
	}
}

func timeMinutes(m int) time.Duration { return time.Duration(m) * time.Minute }

package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/fhir-bridge/fhir-bridge/bridge"
)

func TestSetupOff(t *testing.T) {
	tp, shutdown, err := Setup(t.Context(), bridge.TracingConfig{}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(t.Context(), "read")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("tracing off, but the span records")
	}
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestSetupBadEndpoint(t *testing.T) {
	for _, ep := range []string{"127.0.0.1:4318", "ftp://collector", "http://"} {
		if _, _, err := Setup(t.Context(), bridge.TracingConfig{Endpoint: ep, SampleRatio: 1}, "v1"); err == nil {
			t.Errorf("Setup(%q) succeeded", ep)
		}
	}
}

// export is one request the fake collector received.
type export struct {
	method, path, contentType string
	req                       *coltracepb.ExportTraceServiceRequest
}

// collector is an OTLP/HTTP collector that records what it receives.
func collector(t *testing.T) (*httptest.Server, <-chan export) {
	t.Helper()
	got := make(chan export, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("unmarshal export: %v", err)
		}
		got <- export{r.Method, r.URL.Path, r.Header.Get("Content-Type"), &req}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestSetupExportsToCollector(t *testing.T) {
	for _, tc := range []struct{ name, suffix string }{
		{"base URL", ""},
		{"base URL with slash", "/"},
		{"full traces URL", "/v1/traces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := collector(t)
			tp, shutdown, err := Setup(t.Context(), bridge.TracingConfig{Endpoint: srv.URL + tc.suffix, SampleRatio: 1}, "v1.2.3")
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(t.Context(), "deliver")
			span.End()
			// Shutdown flushes the batch: the export has happened when it returns.
			if err := shutdown(t.Context()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			var e export
			select {
			case e = <-got:
			default:
				t.Fatal("no export reached the collector")
			}
			if e.method != http.MethodPost || e.path != "/v1/traces" || e.contentType != "application/x-protobuf" {
				t.Errorf("export %s %s (%s), want POST /v1/traces (application/x-protobuf)", e.method, e.path, e.contentType)
			}
			rs := e.req.GetResourceSpans()
			if len(rs) != 1 {
				t.Fatalf("resource spans: %d", len(rs))
			}
			attrs := map[string]string{}
			for _, kv := range rs[0].GetResource().GetAttributes() {
				attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			if attrs["service.name"] != "fhir-bridge" || attrs["service.version"] != "v1.2.3" {
				t.Errorf("resource: %v", attrs)
			}
			var names []string
			for _, ss := range rs[0].GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
			if diff := cmp.Diff([]string{"deliver"}, names); diff != "" {
				t.Errorf("spans (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetupSamplesByRatio(t *testing.T) {
	srv, got := collector(t)
	tp, shutdown, err := Setup(t.Context(), bridge.TracingConfig{Endpoint: srv.URL, SampleRatio: 0}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	tr := tp.Tracer("test")
	_, dropped := tr.Start(t.Context(), "root")
	// A sampled parent from the producer is honoured whatever the ratio.
	parent := trace.ContextWithRemoteSpanContext(t.Context(), spanContext(trace.FlagsSampled))
	_, kept := tr.Start(parent, "child")
	if dropped.IsRecording() || !kept.IsRecording() {
		t.Errorf("recording: root %v (want false), child of sampled parent %v (want true)", dropped.IsRecording(), kept.IsRecording())
	}
	dropped.End()
	kept.End()
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(got); n != 1 {
		t.Errorf("%d exports, want 1", n)
	}
}

func spanContext(flags trace.TraceFlags) trace.SpanContext {
	ts, _ := trace.ParseTraceState("vendor=abc")
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: flags,
		TraceState: ts,
		Remote:     true,
	})
}

func TestInjectExtractRoundTrip(t *testing.T) {
	sc := spanContext(trace.FlagsSampled)
	orig := []bridge.Header{
		{Key: "content-type", Value: []byte("application/json")},
		{Key: "traceparent", Value: []byte("00-00000000000000000000000000000001-0000000000000001-01")}, // stale
	}
	headers := orig
	Inject(trace.ContextWithSpanContext(context.Background(), sc), &headers)

	want := []bridge.Header{
		{Key: "content-type", Value: []byte("application/json")},
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: "tracestate", Value: []byte("vendor=abc")},
	}
	byKey := cmpopts.SortSlices(func(a, b bridge.Header) bool { return a.Key < b.Key }) // order is not part of the contract
	if diff := cmp.Diff(want, headers, byKey); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if string(orig[1].Value) != "00-00000000000000000000000000000001-0000000000000001-01" {
		t.Error("Inject edited the original headers in place")
	}

	got := trace.SpanContextFromContext(Extract(context.Background(), headers))
	if !got.Equal(sc) {
		t.Errorf("extracted %+v, want %+v", got, sc)
	}
}

func TestExtractWithoutOrBadContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []bridge.Header
	}{
		{"none", nil},
		{"other headers", []bridge.Header{{Key: "content-type", Value: []byte("application/json")}}},
		{"malformed", []bridge.Header{{Key: "traceparent", Value: []byte("not-a-traceparent")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if sc := trace.SpanContextFromContext(Extract(context.Background(), tc.headers)); sc.IsValid() {
				t.Errorf("extracted %+v", sc)
			}
		})
	}
}

func TestExtractCaseInsensitive(t *testing.T) {
	h := []bridge.Header{{Key: "Traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}
	if sc := trace.SpanContextFromContext(Extract(context.Background(), h)); !sc.IsValid() || !sc.IsSampled() {
		t.Errorf("extracted %+v", sc)
	}
}

func TestInjectWithoutSpan(t *testing.T) {
	headers := []bridge.Header{{Key: "k", Value: []byte("v")}}
	Inject(context.Background(), &headers)
	if diff := cmp.Diff([]bridge.Header{{Key: "k", Value: []byte("v")}}, headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

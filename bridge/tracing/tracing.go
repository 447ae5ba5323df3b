// Package tracing sets up OpenTelemetry tracing for the bridge and carries
// W3C trace context (https://www.w3.org/TR/trace-context/) in Kafka record
// headers, so that a reading's trace can start at its producer.
//
// Tracing is off unless tracing.endpoint is configured: Setup then returns
// a no-op provider, and spans cost next to nothing. When on, spans go to an
// OTLP/HTTP collector. Nothing here touches the OpenTelemetry globals; the
// caller passes the provider to whoever starts spans.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fhir-bridge/fhir-bridge/bridge"
)

// ServiceName is the service.name resource attribute of the bridge's spans.
const ServiceName = "fhir-bridge"

// tracesPath is where an OTLP/HTTP collector takes traces, below its base URL.
const tracesPath = "/v1/traces"

// Setup returns the tracer provider for cfg and the function that flushes
// and stops it (call it once, at shutdown, with a bounded context).
//
// With cfg.Endpoint empty the provider is a no-op and so is shutdown.
// Otherwise spans are batched to the OTLP/HTTP collector at cfg.Endpoint
// (a base URL such as http://127.0.0.1:4318; /v1/traces is appended unless
// the URL already ends with it; plain HTTP for http://), sampled by
// ParentBased(TraceIDRatioBased(cfg.SampleRatio)): a reading whose producer
// sampled its trace is always traced, others at the ratio.
func Setup(ctx context.Context, cfg bridge.TracingConfig, version string) (trace.TracerProvider, func(context.Context) error, error) {
	if cfg.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("tracing: endpoint %q must be an http(s) URL", cfg.Endpoint)
	}
	path := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(path, tracesPath) {
		path += tracesPath
	}
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpoint(u.Host),
		otlptracehttp.WithURLPath(path),
	}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	// New only configures the exporter; the collector is first reached when
	// a batch is exported, so a collector that is down does not stop the
	// bridge from starting.
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(ServiceName),
		semconv.ServiceVersion(version),
	))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	shutdown := func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: shutdown: %w", err)
		}
		return nil
	}
	return tp, shutdown, nil
}

// Only W3C trace context is carried, not baggage: baggage travels to every
// downstream system as is, and nothing about a reading should.

// Extract returns ctx with the remote span context found in a record's
// headers (traceparent, tracestate), or ctx unchanged when there is none or
// it is malformed.
func Extract(ctx context.Context, headers []bridge.Header) context.Context {
	return propagation.TraceContext{}.Extract(ctx, &headerCarrier{h: &headers})
}

// Inject writes the span context of ctx into headers as traceparent and
// tracestate, replacing earlier values; with no valid span in ctx it leaves
// headers as they are. The slice is rebuilt rather than edited in place, so
// a reading whose headers were copied into *headers keeps its own.
func Inject(ctx context.Context, headers *[]bridge.Header) {
	propagation.TraceContext{}.Inject(ctx, &headerCarrier{h: headers})
}

// headerCarrier adapts Kafka record headers to propagation.TextMapCarrier.
type headerCarrier struct{ h *[]bridge.Header }

var _ propagation.TextMapCarrier = (*headerCarrier)(nil)

// Get returns the first header named key. Kafka header keys are
// case-sensitive, but producers in other languages may capitalise them.
func (c *headerCarrier) Get(key string) string {
	for _, h := range *c.h {
		if strings.EqualFold(h.Key, key) {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces every header named key with one holding value.
func (c *headerCarrier) Set(key, value string) {
	out := make([]bridge.Header, 0, len(*c.h)+1)
	for _, h := range *c.h {
		if !strings.EqualFold(h.Key, key) {
			out = append(out, h)
		}
	}
	*c.h = append(out, bridge.Header{Key: key, Value: []byte(value)})
}

// Keys lists the header keys.
func (c *headerCarrier) Keys() []string {
	keys := make([]string, len(*c.h))
	for i, h := range *c.h {
		keys[i] = h.Key
	}
	return keys
}

package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit/audittest"
	"github.com/segmentio/kafka-go"
)

// BenchmarkRouteThroughput is the load harness for one FHIR route against the
// real Kafka broker and PostgreSQL that `make test`'s environment starts, and
// the in-process sandbox EHR (which validates every Observation with
// google/fhir's validating parser). It preloads the topic, then measures the
// time from the bridge's start until every offset is committed, i.e.
// delivered, audited and acknowledged:
//
//	bash .ci/testenv.sh go test -run='^$' -bench=RouteThroughput -benchtime=1x ./cmd/fhir-bridge
func BenchmarkRouteThroughput(b *testing.B) {
	broker := kafkaAddr(b)
	const n, partitions = 20000, 4
	for range b.N {
		dsn := audittest.DSN(b)
		topic, route := randomName("load"), randomName("hr")
		createTopic(b, broker, topic, partitions)
		ehr := startEHR(b)
		at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
		msgs := make([]kafka.Message, 0, n)
		for i := range n {
			msgs = append(msgs, reading(fmt.Sprintf("hrm-%04d", i%500), fmt.Sprintf("p-%04d", i%500), at.Add(time.Duration(i)*time.Second), fmt.Sprint(50+i%60)))
		}
		produce(b, broker, topic, msgs...)
		path := writeConfig(b, broker, dsn, route, topic, ehr.URL)
		logs := &syncBuffer{}
		start := time.Now()
		stop := startBridge(b, path, logs)
		waitFor(b, 10*time.Minute, "all committed", func() bool {
			return committed(b, broker, "fhir-bridge."+route, topic, partitions) == n
		})
		elapsed := time.Since(start)
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		if c := ehr.Stats().Created; c != n {
			b.Fatalf("EHR created %d of %d", c, n)
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "readings/s")
	}
}

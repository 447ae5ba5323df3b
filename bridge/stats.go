package bridge

import "sync/atomic"

// Stats counts readings through the pipeline since start.
type Stats struct {
	Received     int64 // messages fetched from Kafka
	Delivered    int64 // accepted by the destination (created or already there)
	DeadLettered int64 // rejected permanently: recorded in the audit trail with the reason and skipped
	Retries      int64 // retryable failures that were retried
}

type counters struct {
	received, delivered, deadLettered, retries atomic.Int64
	handledMicros, handledBatches              atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Received:     c.received.Load(),
		Delivered:    c.delivered.Load(),
		DeadLettered: c.deadLettered.Load(),
		Retries:      c.retries.Load(),
	}
}

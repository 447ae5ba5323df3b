package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// Fleet simulates heart-rate monitors posting readings in the native format.
type Fleet struct {
	w        *kafka.Writer
	devices  int
	rate     float64
	rng      *rand.Rand
	hr       []float64
	last     []time.Time
	produced atomic.Int64
}

// NewFleet returns a fleet of n devices producing rate readings per second in
// total to topic at addr. Readings are keyed by device, so each device's
// readings stay in order on one partition.
func NewFleet(addr, topic string, n int, rate float64) *Fleet {
	f := &Fleet{
		w: &kafka.Writer{
			Addr:         kafka.TCP(addr),
			Topic:        topic,
			Balancer:     &kafka.Hash{},
			BatchTimeout: 5 * time.Millisecond, // the 1s default would make every write take a second
			RequiredAcks: kafka.RequireAll,
		},
		devices: n,
		rate:    rate,
		rng:     rand.New(rand.NewPCG(1, 2)),
		hr:      make([]float64, n),
		last:    make([]time.Time, n),
	}
	for i := range f.hr {
		f.hr[i] = 60 + f.rng.Float64()*30
	}
	return f
}

// Produced is the number of readings written so far.
func (f *Fleet) Produced() int64 { return f.produced.Load() }

// Run produces until ctx ends. Each tick writes every reading due since the
// start, so the rate holds whatever the write latency.
func (f *Fleet) Run(ctx context.Context) error {
	defer f.w.Close()
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			due := int64(now.Sub(start).Seconds()*f.rate) - f.produced.Load()
			if due <= 0 {
				continue
			}
			msgs := make([]kafka.Message, 0, due)
			for range due {
				msgs = append(msgs, f.reading(next, now))
				next = (next + 1) % f.devices
			}
			// A write under way when the fleet stops still completes, so
			// Produced counts every reading in the topic and the demo's
			// drain waits for all of them.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := f.w.WriteMessages(wctx, msgs...)
			cancel()
			if err != nil {
				return fmt.Errorf("demo fleet: produce: %w", err)
			}
			f.produced.Add(int64(len(msgs)))
		}
	}
}

func (f *Fleet) reading(i int, now time.Time) kafka.Message {
	// A bounded random walk looks like a resting heart.
	f.hr[i] = min(max(f.hr[i]+f.rng.NormFloat64()*1.5, 50), 120)
	// Times are strictly increasing per device: two readings of one device
	// never share a timestamp, so never share an Observation identifier.
	t := now.UTC().Truncate(time.Millisecond)
	if !t.After(f.last[i]) {
		t = f.last[i].Add(time.Millisecond)
	}
	f.last[i] = t
	device := fmt.Sprintf("demo-hrm-%04d", i+1)
	body, _ := json.Marshal(map[string]any{
		"kind":    "heart-rate",
		"device":  device,
		"patient": fmt.Sprintf("demo-patient-%04d", i+1),
		"time":    t.Format(time.RFC3339Nano),
		"value":   json.Number(fmt.Sprintf("%.0f", f.hr[i])),
		"unit":    "/min",
	})
	return kafka.Message{Key: []byte(device), Value: body}
}

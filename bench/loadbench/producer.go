package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// producer offers readings open loop: reading i is due at start + i/rate
// and is stamped with that intended time (in "time" and as the record's
// CreateTime), whenever it is actually sent. A bridge (or producer) that
// falls behind therefore shows up as latency, not as a lower offered rate:
// no coordinated omission.
type producer struct {
	w       *kafka.Writer
	devices int

	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	// okIn counts acknowledged readings whose intended time is in
	// [winFrom, winTo) (Unix ns; set once the probe is through, while the
	// writer runs): the offered load of the measured window.
	winFrom, winTo atomic.Int64
	okIn           atomic.Int64
}

func newProducer(broker, topic string, devices int) *producer {
	p := &producer{devices: devices}
	p.w = &kafka.Writer{
		Addr:         kafka.TCP(broker),
		Topic:        topic,
		Balancer:     &kafka.Hash{}, // keyed by device: a device's readings stay in order
		BatchSize:    1000,
		BatchTimeout: 5 * time.Millisecond, // kafka-go's 1 s default would dominate the latency
		RequiredAcks: kafka.RequireAll,
		Async:        true,
		Completion:   p.completed,
	}
	return p
}

func (p *producer) completed(msgs []kafka.Message, err error) {
	if err != nil {
		p.failed.Add(int64(len(msgs)))
		p.mu.Lock()
		if p.firstErr == nil {
			p.firstErr = err
		}
		p.mu.Unlock()
		return
	}
	p.ok.Add(int64(len(msgs)))
	var in int64
	from, to := p.winFrom.Load(), p.winTo.Load()
	for _, m := range msgs {
		if t := m.Time.UnixNano(); t >= from && t < to {
			in++
		}
	}
	p.okIn.Add(in)
}

// reading is reading number i, due at `at`. Devices and patients are
// assigned round robin, so a device's consecutive readings are devices/rate
// apart and every (device, time) pair, hence every Observation identifier,
// is unique.
func (p *producer) reading(i int64, at time.Time) kafka.Message {
	d := i % int64(p.devices)
	device := fmt.Sprintf("bench-hrm-%05d", d)
	b := make([]byte, 0, 160)
	b = append(b, `{"kind":"heart-rate","device":"`...)
	b = append(b, device...)
	b = append(b, `","patient":"bench-p-`...)
	b = strconv.AppendInt(b, d, 10)
	b = append(b, `","time":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","value":`...)
	b = strconv.AppendInt(b, 50+i%60, 10)
	b = append(b, `,"unit":"/min"}`...)
	return kafka.Message{Key: []byte(device), Value: b, Time: at}
}

// run produces rate readings/s from start for total, and returns how many
// it sent and the producer's own worst lateness (how far behind its
// schedule it handed a reading to the writer).
func (p *producer) run(ctx context.Context, start time.Time, rate int, total time.Duration) (sent int64, maxLag time.Duration, err error) {
	// Stamps are truncated to microseconds, the finest precision a FHIR
	// dateTime keeps through the bridge.
	period := float64(time.Second) / float64(rate)
	due := func(i int64) time.Time {
		return start.Add(time.Duration(float64(i) * period)).Truncate(time.Microsecond)
	}
	n := int64(float64(rate) * total.Seconds())
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for sent < n {
		now := time.Now()
		upTo := min(n, int64(float64(now.Sub(start))/period)+1)
		if upTo > sent {
			maxLag = max(maxLag, now.Sub(due(sent)))
			batch := make([]kafka.Message, 0, upTo-sent)
			for ; sent < upTo; sent++ {
				batch = append(batch, p.reading(sent, due(sent)))
			}
			if err := p.w.WriteMessages(ctx, batch...); err != nil {
				return sent, maxLag, fmt.Errorf("produce: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return sent, maxLag, ctx.Err()
		case <-tick.C:
		}
	}
	return sent, maxLag, nil
}

// close flushes what is pending and reports the first produce error.
func (p *producer) close() error {
	p.w.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}

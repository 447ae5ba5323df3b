package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	kgo "github.com/segmentio/kafka-go"
)

// Partition reader settings. Fetches wait at most readerMaxWait for data so
// a quiet topic adds little latency; the queue between the fetcher and Read
// is short so a stalled partition holds little in memory.
const (
	readerMinBytes      = 1
	readerMaxBytes      = 10 << 20
	readerMaxWait       = 250 * time.Millisecond
	readerQueueCapacity = 32
)

// Source is a route's membership of its consumer group (bridge.Source). It
// is built on kafka-go's consumer-group API rather than a group Reader so
// that each assigned partition is a Claim of its own, read by its own
// partition reader: a partition that stalls (a destination retrying) holds
// back only itself.
//
// Offsets are committed only through Claim.Commit. A partition the group
// has no committed offset for starts at the route's start position, which
// is resolved to an absolute offset and committed when the partition is
// first assigned: a restart before the first reading is handled resumes
// there instead of resolving "latest" again.
type Source struct {
	route, topic, group string
	start               bridge.StartPosition
	startText           string
	s                   settings
	log                 *slog.Logger
	waiting             atomic.Bool
}

var _ bridge.Source = (*Source)(nil)

// NewSource returns the source of route rc: topic rc.Topic, consumer group
// rc.GroupID, start position rc.StartPosition. k locates the cluster and
// sets the group timings (zero durations take the bridge's defaults:
// session 6 s, heartbeat 1 s, rebalance 10 s, metadata refresh 5 s); getenv
// reads the SASL password. log receives the source's messages (route,
// topic, partition, offset; never payloads or keys).
func NewSource(k bridge.KafkaConfig, rc bridge.RouteConfig, getenv func(string) string, log *slog.Logger) (*Source, error) {
	if rc.Topic == "" || rc.GroupID == "" {
		return nil, fmt.Errorf("kafka: route %s: topic and group id are required", rc.Name)
	}
	sp, err := bridge.ParseStartPosition(rc.StartPosition)
	if err != nil {
		return nil, fmt.Errorf("kafka: route %s: start position: %w", rc.Name, err)
	}
	s, err := newSettings(k, getenv)
	if err != nil {
		return nil, fmt.Errorf("kafka: route %s: %w", rc.Name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{
		route: rc.Name, topic: rc.Topic, group: rc.GroupID,
		start: sp, startText: cmp.Or(rc.StartPosition, bridge.StartLatest), s: s,
		log: log.With("route", rc.Name, "topic", rc.Topic),
	}, nil
}

// Waiting reports whether Consume is waiting for the route's topic to be
// created: it does not join the group before the topic exists.
func (s *Source) Waiting() bool { return s.waiting.Load() }

// Consume implements bridge.Source. It waits for the topic to exist
// (polling metadata every MetadataRefresh), joins the group and, for each
// partition assigned, calls claim in a goroutine of its own with a context
// that ends when the partition is revoked, when Consume's ctx ends or when
// another claim failed. A claim returning nil before its context ended
// gives the partition back: the group rebalances.
//
// Consume returns nil once ctx ended, or the first claim error (naming the
// route and partition), or an error that retrying cannot cure (credentials,
// authorization, a session timeout the broker refuses). Transient errors
// (broker restarts, coordinator moves, rebalances) are logged and retried.
// On every path it returns only after every claim returned and the
// instance left the group.
func (s *Source) Consume(ctx context.Context, claim func(ctx context.Context, c bridge.Claim) error) error {
	t := s.s.transport(s.s.k.MetadataRefresh, s.topic)
	defer t.CloseIdleConnections()
	client := s.s.client(t)

	if err := s.awaitTopic(ctx, client); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	info, errs := kafkaLoggers(s.log)
	k := s.s.k
	group, err := kgo.NewConsumerGroup(kgo.ConsumerGroupConfig{
		ID:                     s.group,
		Brokers:                s.s.brokers,
		Dialer:                 s.s.dialer(),
		Topics:                 []string{s.topic},
		HeartbeatInterval:      k.HeartbeatInterval,
		SessionTimeout:         k.SessionTimeout,
		RebalanceTimeout:       k.RebalanceTimeout,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: k.MetadataRefresh,
		// Never used: a partition without a committed offset starts at the
		// route's start position, resolved in openClaim.
		StartOffset: kgo.FirstOffset,
		Logger:      info,
		ErrorLogger: errs,
	})
	if err != nil {
		return fmt.Errorf("kafka: route %s: consumer group %s: %w", s.route, s.group, err)
	}

	run := &consumeRun{Source: s, client: client, claim: claim}
	run.ctx, run.cancel = context.WithCancel(ctx)
	err = run.generations(group)
	run.cancel()
	// Close ends the generation (its claims see their context end), waits
	// for the claims kafka-go started, and sends LeaveGroup so the other
	// members get the partitions at once instead of after SessionTimeout.
	group.Close()
	run.claims.Wait()
	s.log.Info("left the consumer group", "group", s.group)
	if err != nil {
		return err
	}
	return run.failure()
}

// awaitTopic returns once the topic exists. kafka-go's consumer group would
// never pick a topic up that appears after it joined (its partition watcher
// stops on UnknownTopicOrPartition), and joining earlier could make the
// broker auto-create it with default settings.
func (s *Source) awaitTopic(ctx context.Context, client *kgo.Client) error {
	defer s.waiting.Store(false)
	unreachable := false
	for {
		err := topicsExist(ctx, client, []string{s.topic})
		var missing *missingTopicError
		switch {
		case err == nil:
			if s.waiting.Load() {
				s.log.Info("topic exists now: joining the consumer group", "group", s.group)
			}
			return nil
		case errors.As(err, &missing):
			if !s.waiting.Swap(true) {
				s.log.Info("route waits for its topic to be created", "every", s.s.k.MetadataRefresh)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case !retryable(err):
			return fmt.Errorf("kafka: route %s: %w", s.route, err)
		default:
			if !unreachable {
				s.log.Warn("kafka metadata unreachable; retrying", "err", err)
				unreachable = true
			}
		}
		if !sleep(ctx, s.s.k.MetadataRefresh) {
			return ctx.Err()
		}
	}
}

// consumeRun is one call of Consume.
type consumeRun struct {
	*Source
	client *kgo.Client
	claim  func(context.Context, bridge.Claim) error
	// ctx ends when Consume's context ends or a claim failed.
	ctx    context.Context
	cancel context.CancelFunc
	claims sync.WaitGroup

	mu  sync.Mutex
	err error // the first claim failure
}

func (r *consumeRun) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.cancel()
}

func (r *consumeRun) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// generations runs one generation after the other until the run stops or
// joining fails for good. kafka-go hands out a generation only after the
// previous one's claims have all returned.
func (r *consumeRun) generations(group *kgo.ConsumerGroup) error {
	for {
		gen, err := group.Next(r.ctx)
		if r.ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !retryable(err) {
				return fmt.Errorf("kafka: route %s: consumer group %s: %w", r.route, r.group, err)
			}
			if errors.Is(err, kgo.RebalanceInProgress) {
				r.log.Debug("consumer group rebalancing; joining again", "group", r.group)
			} else {
				r.log.Warn("joining the consumer group failed; retrying", "group", r.group, "err", err)
			}
			continue
		}
		assigned := gen.Assignments[r.topic]
		ids := make([]int, len(assigned))
		for i, pa := range assigned {
			ids[i] = pa.ID
		}
		slices.Sort(ids)
		r.log.Info("partitions assigned", "group", r.group, "generation", gen.ID, "partitions", ids)
		for _, pa := range assigned {
			r.claims.Add(1)
			gen.Start(func(gctx context.Context) {
				defer r.claims.Done()
				r.runClaim(gctx, gen, pa)
			})
		}
	}
}

// runClaim serves one assigned partition for the life of the generation.
func (r *consumeRun) runClaim(gctx context.Context, gen *kgo.Generation, pa kgo.PartitionAssignment) {
	// Returning ends the generation for kafka-go, which then rejoins the
	// group at once. When the whole source is stopping, wait until Close has
	// ended the generation, so that kafka-go leaves instead of rejoining.
	defer func() {
		if r.ctx.Err() != nil {
			<-gctx.Done()
		}
	}()
	if gctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	stop := context.AfterFunc(gctx, cancel) // revoked: the generation ended
	defer stop()

	c, err := r.openClaim(ctx, gen, pa)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(err)
		}
		return
	}
	defer c.close()
	err = r.claim(ctx, c)
	if err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		r.fail(fmt.Errorf("kafka: route %s: %s partition %d: %w", r.route, r.topic, pa.ID, err))
		return
	}
	r.log.Debug("partition released", "partition", pa.ID, "generation", gen.ID)
}

// openClaim positions a partition reader at the group's committed offset,
// or at the start position when there is none.
func (r *consumeRun) openClaim(ctx context.Context, gen *kgo.Generation, pa kgo.PartitionAssignment) (*claim, error) {
	var first, last, at int64
	attempt := 0
	err := retry(ctx, func() (err error) {
		first, last, at, err = partitionOffsets(ctx, r.client, r.topic, pa.ID, r.start)
		if attempt++; err != nil && retryable(err) && ctx.Err() == nil {
			// Right after a topic is created or a leader moves, the first
			// attempts meet stale metadata: not worth a warning.
			level := slog.LevelDebug
			if attempt >= 3 {
				level = slog.LevelWarn
			}
			r.log.Log(ctx, level, "listing partition offsets failed; retrying", "partition", pa.ID, "attempt", attempt, "err", err)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: route %s: %s partition %d: offsets: %w", r.route, r.topic, pa.ID, err)
	}
	offset := pa.Offset
	if offset < 0 { // kafka-go's marker for "the group has no committed offset"
		offset = startOffset(r.start, first, last, at)
		err := gen.CommitOffsets(map[string]map[int]int64{r.topic: {pa.ID: offset}})
		if err != nil {
			// Harmless: the next owner resolves the start position again.
			r.log.Debug("committing the start offset failed", "partition", pa.ID, "offset", offset, "err", err)
		}
		r.log.Info("partition starts at the route's start position", "partition", pa.ID,
			"start_position", r.startText, "offset", offset)
	} else if offset > last {
		// A topic deleted and created again: the reader waits until the
		// partition reaches the committed offset.
		r.log.Warn("committed offset is past the partition's end", "partition", pa.ID, "offset", offset, "end", last)
	}
	info, errs := kafkaLoggers(r.log, "partition", pa.ID)
	reader := kgo.NewReader(kgo.ReaderConfig{
		Brokers:       r.s.brokers,
		Dialer:        r.s.dialer(),
		Topic:         r.topic,
		Partition:     pa.ID,
		MinBytes:      readerMinBytes,
		MaxBytes:      readerMaxBytes,
		MaxWait:       readerMaxWait,
		QueueCapacity: readerQueueCapacity,
		// The claim tracks the high water mark from the fetches; kafka-go's
		// lag poller would dial the leader once a minute per partition.
		ReadLagInterval: -1,
		Logger:          info,
		ErrorLogger:     errs,
	})
	if err := reader.SetOffset(offset); err != nil {
		reader.Close()
		return nil, fmt.Errorf("kafka: route %s: %s partition %d: seek to %d: %w", r.route, r.topic, pa.ID, offset, err)
	}
	c := &claim{run: r, gen: gen, partition: pa.ID, reader: reader}
	c.highWater.Store(last)
	c.committed.Store(offset)
	return c, nil
}

// startOffset is where a partition without a committed offset starts: its
// first offset for earliest, its end for latest, and for a time the first
// offset at or after it (at, -1 when no record is that recent: the end).
func startOffset(sp bridge.StartPosition, first, last, at int64) int64 {
	switch {
	case sp.Earliest:
		return first
	case sp.Latest():
		return last
	case at < 0:
		return last
	default:
		return max(at, first)
	}
}

// partitionOffsets returns the first and end offsets of a partition and,
// for a start position at a time, the first offset at or after it (-1 when
// none).
func partitionOffsets(ctx context.Context, client *kgo.Client, topic string, partition int, sp bridge.StartPosition) (first, last, at int64, err error) {
	res, err := client.ListOffsets(ctx, &kgo.ListOffsetsRequest{Topics: map[string][]kgo.OffsetRequest{
		topic: {kgo.FirstOffsetOf(partition), kgo.LastOffsetOf(partition)},
	}})
	if err != nil {
		return 0, 0, 0, err
	}
	po, err := onePartition(res, topic, partition)
	if err != nil {
		return 0, 0, 0, err
	}
	first, last, at = po.FirstOffset, po.LastOffset, -1
	if sp.At.IsZero() {
		return first, last, at, nil
	}
	// A request of its own: kafka-go files a time lookup that found nothing
	// (offset -1, timestamp -1) as the partition's LastOffset.
	res, err = client.ListOffsets(ctx, &kgo.ListOffsetsRequest{Topics: map[string][]kgo.OffsetRequest{
		topic: {kgo.TimeOffsetOf(partition, sp.At)},
	}})
	if err != nil {
		return 0, 0, 0, err
	}
	po, err = onePartition(res, topic, partition)
	if err != nil {
		return 0, 0, 0, err
	}
	for off := range po.Offsets {
		if off >= 0 {
			at = off
		}
	}
	return first, last, at, nil
}

func onePartition(res *kgo.ListOffsetsResponse, topic string, partition int) (kgo.PartitionOffsets, error) {
	for _, po := range res.Topics[topic] {
		if po.Partition == partition {
			return po, po.Error
		}
	}
	return kgo.PartitionOffsets{}, fmt.Errorf("no offsets for %s partition %d in the answer", topic, partition)
}

// claim is one assigned partition (bridge.Claim).
type claim struct {
	run       *consumeRun
	gen       *kgo.Generation
	partition int
	reader    *kgo.Reader
	highWater atomic.Int64
	committed atomic.Int64
	failing   bool // Read met errors since the last record
}

var _ bridge.Claim = (*claim)(nil)

func (c *claim) Topic() string  { return c.run.topic }
func (c *claim) Partition() int { return c.partition }

// HighWater is the partition's end offset as of the last fetch (or the
// claim's start).
func (c *claim) HighWater() int64 { return c.highWater.Load() }

// Read returns the next record of the partition. Errors the partition
// reader recovers from by itself (connections, leader moves) are logged and
// waited out.
func (c *claim) Read(ctx context.Context) (bridge.Reading, error) {
	for {
		m, err := c.reader.FetchMessage(ctx)
		if err == nil {
			if c.failing {
				c.run.log.Info("reading the partition again", "partition", c.partition, "offset", m.Offset)
				c.failing = false
			}
			if m.HighWaterMark > c.highWater.Load() {
				c.highWater.Store(m.HighWaterMark)
			}
			return reading(m, time.Now()), nil
		}
		if ctx.Err() != nil {
			return bridge.Reading{}, ctx.Err()
		}
		if !retryable(err) {
			return bridge.Reading{}, fmt.Errorf("kafka: read %s partition %d: %w", c.run.topic, c.partition, err)
		}
		// The partition reader retries by itself; say so once per outage.
		if !c.failing {
			c.run.log.Warn("reading the partition failed; the reader retries", "partition", c.partition, "err", err)
			c.failing = true
		} else {
			c.run.log.Debug("reading the partition failed again", "partition", c.partition, "err", err)
		}
	}
}

// Commit commits next for the group within the claim's generation. It is
// bounded by kafka-go's coordinator timeout (5 s) rather than ctx, which it
// checks first. It fails once the partition was given to another member.
func (c *claim) Commit(ctx context.Context, next int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.committed.Load() == next {
		return nil
	}
	err := c.gen.CommitOffsets(map[string]map[int]int64{c.run.topic: {c.partition: next}})
	if err != nil {
		return fmt.Errorf("kafka: commit %s partition %d offset %d: %w", c.run.topic, c.partition, next, err)
	}
	c.committed.Store(next)
	return nil
}

func (c *claim) close() {
	if err := c.reader.Close(); err != nil {
		c.run.log.Debug("closing the partition reader", "partition", c.partition, "err", err)
	}
}

// reading converts a kafka-go message.
func reading(m kgo.Message, received time.Time) bridge.Reading {
	var hs []bridge.Header
	if len(m.Headers) > 0 {
		hs = make([]bridge.Header, len(m.Headers))
		for i, h := range m.Headers {
			hs[i] = bridge.Header{Key: h.Key, Value: h.Value}
		}
	}
	return bridge.Reading{
		Value:    m.Value,
		Key:      m.Key,
		Headers:  hs,
		Pos:      bridge.Position{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset},
		Time:     m.Time,
		Received: received,
	}
}

// retry calls f until it succeeds, fails for good or ctx ends, backing off
// from 100 ms to 5 s between attempts.
func retry(ctx context.Context, f func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || !retryable(err) {
			return err
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

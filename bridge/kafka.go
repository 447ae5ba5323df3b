package bridge

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// NewKafkaSource returns a consumer-group reader for one route. Offsets are
// committed explicitly by the route (CommitInterval 0 makes CommitMessages
// synchronous), never automatically: an auto-commit could acknowledge a
// reading before the EHR and the audit trail have it.
func NewKafkaSource(brokers []string, rc RouteConfig, log *slog.Logger) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:        brokers,
		GroupID:        rc.GroupID,
		Topic:          rc.Topic,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        250 * time.Millisecond, // kafka-go's 10s default would add latency to quiet topics
		CommitInterval: 0,
		// A new group starts at the oldest reading: readings produced before the
		// bridge's first start must be delivered too.
		StartOffset: kafka.FirstOffset,
		Logger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug(fmt.Sprintf(msg, args...), "route", rc.Name, "component", "kafka")
		}),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn(fmt.Sprintf(msg, args...), "route", rc.Name, "component", "kafka")
		}),
	})
}

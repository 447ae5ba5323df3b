// Package kafka connects fhir-bridge routes to Apache Kafka with
// github.com/segmentio/kafka-go:
//
//   - Source: a route's membership of its consumer group (bridge.Source).
//     Each assigned partition is a bridge.Claim with its own partition
//     reader, so one stalled partition never holds back the others; offsets
//     are committed only when the engine says so (Claim.Commit), never
//     automatically.
//   - DeadLetterWriter: rejected readings, with fhir-bridge-* headers saying
//     why, in the route's dead-letter topic (bridge.DeadLetters).
//   - Replay: dead letters back into the source topic.
//   - Publisher: readings posted to the HTTP API into the source topics.
//   - Check: the readiness check (metadata reachable, topics exist).
//
// Every connection uses the TLS and SASL (PLAIN, SCRAM-SHA-256/512) of
// bridge.KafkaConfig; the SASL password is read from the environment
// variable it names and never appears in errors or logs.
//
// Group membership follows the classic Kafka group protocol as kafka-go
// implements it (JoinGroup v2, no static membership, no KIP-848): the
// partitions of an instance that dies without leaving stand still until the
// coordinator's session timeout expires (KafkaConfig.SessionTimeout, 6 s by
// default); an instance that stops leaves the group at once.
//
// Logs carry the route, topic, partition and offsets, never payloads or
// keys (docs/security-phi.md).
package kafka

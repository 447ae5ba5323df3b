package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	kgo "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// clientID names the bridge to the brokers (their request logs and quotas).
const clientID = "fhir-bridge"

// dialTimeout bounds one connection attempt, TLS handshake and SASL
// exchange included.
const dialTimeout = 10 * time.Second

// settings is what every kafka-go object needs to reach the cluster.
type settings struct {
	brokers []string
	tls     *tls.Config    // nil: plaintext
	sasl    sasl.Mechanism // nil: no authentication
	k       bridge.KafkaConfig
}

// newSettings checks k and loads its TLS files and SASL credentials. The
// password is read from getenv(k.SASL.PasswordEnv); no error ever quotes it.
// Zero durations in k take the bridge's documented defaults.
func newSettings(k bridge.KafkaConfig, getenv func(string) string) (settings, error) {
	k = withDefaults(k)
	if len(k.Brokers) == 0 {
		return settings{}, errors.New("kafka: no brokers configured")
	}
	s := settings{brokers: k.Brokers, k: k}
	if k.TLS != nil {
		c, err := tlsConfig(*k.TLS)
		if err != nil {
			return settings{}, err
		}
		s.tls = c
	}
	if k.SASL != nil {
		m, err := saslMechanism(*k.SASL, getenv)
		if err != nil {
			return settings{}, err
		}
		s.sasl = m
	}
	return s, nil
}

// withDefaults returns k with the defaults bridge.Config.SetDefaults
// documents, so a KafkaConfig that did not come through ParseConfig does not
// fall back to kafka-go's own (a 30 s session timeout).
func withDefaults(k bridge.KafkaConfig) bridge.KafkaConfig {
	if k.SASL != nil {
		s := *k.SASL // SetDefaults writes through the pointer: keep the caller's copy intact
		k.SASL = &s
	}
	c := bridge.Config{Kafka: k}
	c.SetDefaults()
	return c.Kafka
}

// tlsConfig loads the PEM files of f: TLS 1.2 or later, the brokers verified
// against CAFile (the system roots when empty), and a client certificate for
// mutual TLS when CertFile and KeyFile are set.
func tlsConfig(f bridge.TLSFiles) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: %s holds no PEM certificate", f.CAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("kafka.tls: cert_file and key_file go together")
	}
	return c, nil
}

// saslMechanism builds the SASL mechanism of c with the password from
// getenv(c.PasswordEnv).
func saslMechanism(c bridge.SASLConfig, getenv func(string) string) (sasl.Mechanism, error) {
	if c.Username == "" {
		return nil, errors.New("kafka.sasl.username: required")
	}
	var password string
	if getenv != nil {
		password = getenv(c.PasswordEnv)
	}
	if password == "" {
		return nil, fmt.Errorf("kafka.sasl.password_env: environment variable %s is empty", c.PasswordEnv)
	}
	var algo scram.Algorithm
	switch c.Mechanism {
	case "PLAIN":
		return plain.Mechanism{Username: c.Username, Password: password}, nil
	case "SCRAM-SHA-256":
		algo = scram.SHA256
	case "SCRAM-SHA-512":
		algo = scram.SHA512
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.Mechanism)
	}
	m, err := scram.Mechanism(algo, c.Username, password)
	if err != nil {
		// The SCRAM library quotes the rejected password in its error: drop it.
		return nil, fmt.Errorf("kafka.sasl: %s: SASLprep rejects the username or the password", c.Mechanism)
	}
	return m, nil
}

func (s settings) dialer() *kgo.Dialer {
	return &kgo.Dialer{
		ClientID:      clientID,
		Timeout:       dialTimeout,
		DualStack:     true,
		KeepAlive:     30 * time.Second,
		TLS:           s.tls,
		SASLMechanism: s.sasl,
	}
}

// transport returns a transport whose metadata cache lives at most ttl
// (kafka-go's default when 0); topics, when set, limits the metadata it
// fetches. Callers release it with CloseIdleConnections.
func (s settings) transport(ttl time.Duration, topics ...string) *kgo.Transport {
	return &kgo.Transport{
		ClientID:       clientID,
		DialTimeout:    dialTimeout,
		TLS:            s.tls,
		SASL:           s.sasl,
		MetadataTTL:    ttl,
		MetadataTopics: topics,
	}
}

func (s settings) client(t *kgo.Transport) *kgo.Client {
	return &kgo.Client{Addr: kgo.TCP(s.brokers...), Transport: t, Timeout: 30 * time.Second}
}

// NewDialer returns the dialer the consumer group and the partition readers
// use: TLS and SASL as k says, the password read with getenv, a 10 s dial
// timeout.
func NewDialer(k bridge.KafkaConfig, getenv func(string) string) (*kgo.Dialer, error) {
	s, err := newSettings(k, getenv)
	if err != nil {
		return nil, err
	}
	return s.dialer(), nil
}

// NewTransport returns the transport the writers and clients use: TLS and
// SASL as k says, the password read with getenv. Release its connections
// with CloseIdleConnections when done.
func NewTransport(k bridge.KafkaConfig, getenv func(string) string) (*kgo.Transport, error) {
	s, err := newSettings(k, getenv)
	if err != nil {
		return nil, err
	}
	return s.transport(0), nil
}

// NewClient returns a kafka-go client for the cluster of k (admin requests,
// offsets, metadata) over a transport from NewTransport; requests time out
// after 30 s. Release it with
// client.Transport.(*kgo.Transport).CloseIdleConnections().
func NewClient(k bridge.KafkaConfig, getenv func(string) string) (*kgo.Client, error) {
	s, err := newSettings(k, getenv)
	if err != nil {
		return nil, err
	}
	return s.client(s.transport(0)), nil
}

// retryable reports whether err may go away by itself: a connection
// problem, a leader or coordinator moving, a rebalance. Authentication,
// authorization, certificate and configuration errors are not.
func retryable(err error) bool {
	var ke kgo.Error
	if errors.As(err, &ke) {
		switch ke {
		case kgo.RebalanceInProgress, kgo.UnknownMemberId, kgo.IllegalGeneration, kgo.MemberIDRequired:
			return true
		}
		return ke.Temporary()
	}
	var (
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		header    tls.RecordHeaderError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	if errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &header) ||
		errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// kafkaLoggers adapt kafka-go's Printf loggers to log: its chatter at
// Debug, its errors at Warn. The messages carry topics, partitions, offsets
// and member ids, never payloads.
func kafkaLoggers(log *slog.Logger, attrs ...any) (info, errs kgo.Logger) {
	log = log.With(append([]any{"component", "kafka"}, attrs...)...)
	info = kgo.LoggerFunc(func(msg string, args ...any) {
		log.Debug(strings.TrimSpace(fmt.Sprintf(msg, args...)))
	})
	errs = kgo.LoggerFunc(func(msg string, args ...any) {
		text := strings.TrimSpace(fmt.Sprintf(msg, args...))
		// Under load kafka-go reports fetch deadlines as "unknown error ...
		// i/o timeout" and simply retries (its issues 726 and 998); a reader
		// being closed reports "context canceled". Noise, both.
		if strings.Contains(text, "i/o timeout") || strings.HasSuffix(text, context.Canceled.Error()) {
			log.Debug(text)
			return
		}
		log.Warn(text)
	})
	return info, errs
}

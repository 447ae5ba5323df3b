package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the bridge's configuration file (docs/configuration.md).
type Config struct {
	Kafka   KafkaConfig   `yaml:"kafka"`
	Audit   AuditConfig   `yaml:"audit"`
	API     APIConfig     `yaml:"api"`
	Ops     OpsConfig     `yaml:"ops"`
	Tracing TracingConfig `yaml:"tracing"`
	Routes  []RouteConfig `yaml:"routes"`
	// IdentifierSystem is the identifier.system of every Observation the
	// bridge writes; the value is the reading's deterministic key.
	// Default: DefaultIdentifierSystem.
	IdentifierSystem string `yaml:"identifier_system"`
	// ShutdownGrace is how long a delivery in flight may finish after a stop
	// was requested. Default: 10s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	Retry         RetryConfig   `yaml:"retry"`

	// Getenv reads secrets named by the configuration (keys, tokens).
	// ParseConfig sets it; nil reads nothing.
	Getenv func(string) string `yaml:"-"`
}

func (c Config) env(k string) string {
	if c.Getenv == nil {
		return ""
	}
	return c.Getenv(k)
}

// DefaultIdentifierSystem is the default Observation identifier system.
const DefaultIdentifierSystem = "https://github.com/fhir-bridge/fhir-bridge/sid/observation-key"

// KafkaConfig locates the Kafka cluster and says how to join it.
type KafkaConfig struct {
	// Brokers are host:port bootstrap addresses. Required.
	Brokers []string `yaml:"brokers"`
	// TLS, when set, connects to the brokers over TLS (optionally mutual).
	// Default: plaintext.
	TLS *TLSFiles `yaml:"tls"`
	// SASL, when set, authenticates to the brokers. Default: none.
	SASL *SASLConfig `yaml:"sasl"`
	// SessionTimeout is how long the group coordinator waits for a
	// heartbeat before it gives a silent member's partitions to another
	// instance: the bound on how long partitions of a crashed instance
	// stand still. The broker refuses values below its
	// group.min.session.timeout.ms (6s by default). Default: 6s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// HeartbeatInterval is how often a member tells the coordinator it is
	// alive; keep it at most a third of SessionTimeout. Default: 1s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// RebalanceTimeout bounds how long a rebalance waits for members to
	// rejoin (and so how long an instance may finish in-flight readings of
	// revoked partitions). Default: 10s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// MetadataRefresh is how often the bridge looks for a route's topic
	// that does not exist yet, and for partitions added to it.
	// Default: 5s.
	MetadataRefresh time.Duration `yaml:"metadata_refresh"`
}

// SASLConfig authenticates the bridge to Kafka.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. Required.
	Mechanism string `yaml:"mechanism"`
	// Username. Required.
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable holding the password;
	// secrets never sit in the file. Default: FHIR_BRIDGE_KAFKA_PASSWORD.
	PasswordEnv string `yaml:"password_env"`
}

// OpsConfig is the operations listener: /metrics, /healthz and /readyz,
// without authentication, for Prometheus and orchestrators.
type OpsConfig struct {
	// Listen is the address to serve on. Default: 127.0.0.1:9464. "off"
	// disables it. A non-loopback address exposes operational data (route
	// names, counters), never readings: put it on a management network.
	Listen string `yaml:"listen"`
}

// TracingConfig exports OpenTelemetry traces (one span per stage of a
// reading). Off unless Endpoint is set.
type TracingConfig struct {
	// Endpoint is an OTLP/HTTP collector URL, e.g.
	// http://127.0.0.1:4318. Default: off.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of stage spans sampled, 0 to 1 (each span
	// covers a batch and links to the producers' traces). Default: 0.01.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// AuditConfig locates the audit store.
type AuditConfig struct {
	// DSN is a PostgreSQL connection URL. Required. The environment variable
	// FHIR_BRIDGE_AUDIT_DSN overrides it, so the password need not sit in the file.
	DSN string `yaml:"dsn"`
}

// APIConfig configures the HTTP API (docs/api.md). It is off unless Listen
// is set.
type APIConfig struct {
	// Listen is the address to serve on, e.g. ":8443". Default: off.
	Listen string `yaml:"listen"`
	// TLSCertFile and TLSKeyFile serve HTTPS. Required unless Listen is a
	// loopback address or AllowPlaintext is set (behind a TLS proxy).
	TLSCertFile    string `yaml:"tls_cert_file"`
	TLSKeyFile     string `yaml:"tls_key_file"`
	AllowPlaintext bool   `yaml:"allow_plaintext"`
	// OIDC is the identity provider whose bearer tokens the API accepts.
	OIDC OIDCConfig `yaml:"oidc"`
	// MaxBody bounds request bodies in bytes. Default: 1 MiB.
	MaxBody int64 `yaml:"max_body"`
}

// OIDCConfig names the token issuer and the audience tokens must carry.
type OIDCConfig struct {
	Issuer   string `yaml:"issuer"`   // required with the API; discovery at <issuer>/.well-known/openid-configuration
	Audience string `yaml:"audience"` // required with the API
	// DeviceClaim lists the device ids a vendor's token may post for.
	// Default: "devices".
	DeviceClaim string `yaml:"device_claim"`
}

// RouteConfig is one flow: a source topic, its consumer group and one destination.
type RouteConfig struct {
	// Name identifies the route in logs, metrics and the audit trail. Required.
	Name string `yaml:"name"`
	// Topic is the Kafka topic the route consumes. Required.
	Topic string `yaml:"topic"`
	// GroupID is the route's consumer group. Default: "fhir-bridge." + Name.
	GroupID string `yaml:"group_id"`
	// DeadLetterTopic receives the messages the route rejects, with headers
	// saying why. Default: Topic + ".dead-letter".
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// Templates are the mapping files for the route's payloads. None: the
	// native JSON format (docs/native-format.md). Two JSON files: a MedTech
	// device mapping and FHIR mapping. A native YAML template (docs/templates.md).
	Templates []string `yaml:"templates"`
	// StartPosition is where the route starts reading when its consumer
	// group has no committed offset yet: "latest" (only readings produced
	// from now on: a route added to a topic with history does not replay
	// it), "earliest" (everything the topic holds), or an RFC 3339 time
	// (readings produced from then on). Once the group has committed, it
	// resumes where it stopped. Default: latest.
	StartPosition string `yaml:"start_position"`
	// InFlight bounds the readings each partition holds between read and
	// commit; a slow destination makes reading wait (back-pressure).
	InFlight InFlightConfig `yaml:"in_flight"`
	// DefaultPatient is the patient id for MedTech measurements whose
	// template has no patientIdExpression. Default: none (such readings are
	// rejected).
	DefaultPatient string            `yaml:"default_patient"`
	Destination    DestinationConfig `yaml:"destination"`
}

// InFlightConfig bounds the work a partition has in flight.
type InFlightConfig struct {
	// MaxReadings per partition. Default: 2000.
	MaxReadings int `yaml:"max_readings"`
	// MaxBytes of payload per partition. Default: 16 MiB.
	MaxBytes int `yaml:"max_bytes"`
}

// DestinationConfig names where a route delivers. Exactly one kind is set.
type DestinationConfig struct {
	FHIR *FHIRDestination `yaml:"fhir"`
	MLLP *MLLPDestination `yaml:"mllp"`
}

// MLLPDestination is an HL7 v2 interface engine reached over MLLP; readings
// are sent as ORU^R01 (IHE PCD-01).
type MLLPDestination struct {
	// Address is the engine's host:port. Required.
	Address string `yaml:"address"`
	// Connections is the number of persistent connections; a patient's
	// messages always use the same one. Default: 4.
	Connections int `yaml:"connections"`
	// AckTimeout bounds waiting for each acknowledgement. Default: 10s.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// TLS, when set, wraps connections in TLS (optionally mutual).
	TLS *TLSFiles `yaml:"tls"`
	// AllowPlaintext permits a connection without TLS to a non-loopback
	// host, for engines on a closed network. Default: false.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// MSH-3 to MSH-6. SendingApplication defaults to FHIRBRIDGE.
	SendingApplication   string `yaml:"sending_application"`
	SendingFacility      string `yaml:"sending_facility"`
	ReceivingApplication string `yaml:"receiving_application"`
	ReceivingFacility    string `yaml:"receiving_facility"`
	// PatientAuthority is PID-3.4 for patients known by FHIR logical id.
	// Default: FHIR.
	PatientAuthority string `yaml:"patient_authority"`
}

// TLSFiles locate PEM files for a TLS client.
type TLSFiles struct {
	CAFile     string `yaml:"ca_file"`     // trusted CAs; default: the system pool
	CertFile   string `yaml:"cert_file"`   // client certificate for mutual TLS
	KeyFile    string `yaml:"key_file"`    // its private key
	ServerName string `yaml:"server_name"` // default: the host of the address
}

// FHIRDestination is a FHIR R4 server.
type FHIRDestination struct {
	// BaseURL is the server base, e.g. https://ehr.example.org/fhir. Required.
	BaseURL string `yaml:"base_url"`
	// Timeout bounds each request. Default: 10s.
	Timeout time.Duration `yaml:"timeout"`
	// AllowPlainHTTP permits an http:// BaseURL on a non-loopback host, for
	// closed networks such as a compose stack. Default: false (https only).
	AllowPlainHTTP bool `yaml:"allow_plain_http"`
	// TLS sets trusted CAs and a client certificate (mutual TLS).
	// Default: the system roots, no client certificate.
	TLS *TLSFiles `yaml:"tls"`
	// Batch groups readings into batch Bundles.
	Batch BatchConfig `yaml:"batch"`
	// UpsertDevices writes each device's Device resource (PUT Device/<id>,
	// PHD identifiers) before its first Observation, for servers that
	// enforce references. Needs update-as-create. Default: false.
	UpsertDevices bool `yaml:"upsert_devices"`
	// Auth says how the bridge authenticates to the server. Default: none.
	Auth *FHIRAuth `yaml:"auth"`
}

// BatchConfig limits the batch Bundles a FHIR route posts. Readings that
// arrive within Linger of the first are sent together; their offsets are
// committed together once every entry is delivered or dead-lettered.
type BatchConfig struct {
	// MaxEntries per Bundle. 1 posts each reading on its own (servers
	// without batch support). Default: 100.
	MaxEntries int `yaml:"max_entries"`
	// MaxBytes per Bundle, roughly. Default: 1 MiB.
	MaxBytes int `yaml:"max_bytes"`
	// Linger is how long to wait for more readings after the first.
	// Default: 20ms.
	Linger time.Duration `yaml:"linger"`
	// Concurrency is how many Bundles each partition of the route posts at
	// once. Default: 4.
	Concurrency int `yaml:"concurrency"`
}

// FHIRAuth is how the bridge authenticates to a FHIR server: exactly one of
// its members (docs/smart-backend-services.md).
type FHIRAuth struct {
	SMARTBackend *SMARTBackend `yaml:"smart_backend"`
	ClientSecret *ClientSecret `yaml:"client_secret"`
	// BearerTokenEnv names an environment variable holding a static token.
	BearerTokenEnv string `yaml:"bearer_token_env"`
}

// SMARTBackend is SMART Backend Services: a client assertion signed with the
// bridge's private key, exchanged for an access token.
type SMARTBackend struct {
	ClientID string `yaml:"client_id"` // required
	// PrivateKeyFile is a PEM key (RSA >= 2048 bits or EC P-384). The
	// environment variable FHIR_BRIDGE_SMART_KEY (PEM text) is used instead
	// when set.
	PrivateKeyFile string `yaml:"private_key_file"`
	// KeyID is the kid of the key in the published JWKS. Default: the key's
	// JWK thumbprint (what fhir-bridge keys jwks publishes).
	KeyID string `yaml:"key_id"`
	// TokenURL is the token endpoint. Default: discovered from the server's
	// .well-known/smart-configuration.
	TokenURL string   `yaml:"token_url"`
	Scopes   []string `yaml:"scopes"` // default: system/Observation.c
}

// ClientSecret is the OAuth2 client-credentials grant with a shared secret,
// for servers without SMART Backend Services.
type ClientSecret struct {
	TokenURL string   `yaml:"token_url"` // required
	ClientID string   `yaml:"client_id"` // required
	Scopes   []string `yaml:"scopes"`
	// SecretEnv names the environment variable holding the secret; secrets
	// never sit in the file. Default: FHIR_BRIDGE_CLIENT_SECRET.
	SecretEnv string `yaml:"secret_env"`
}

// RetryConfig shapes the backoff between attempts at a retryable failure.
type RetryConfig struct {
	// Initial is the first wait. Default: 200ms.
	Initial time.Duration `yaml:"initial"`
	// Max caps the wait. Default: 30s.
	Max time.Duration `yaml:"max"`
}

// LoadConfig reads and validates a configuration file. getenv supplies
// environment overrides. The error lists every problem, each naming its field.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(data, getenv)
}

// ParseConfig decodes YAML, applies environment overrides and defaults, and
// validates the result.
func ParseConfig(data []byte, getenv func(string) string) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key is an error, not a silent default
	// An empty file decodes as io.EOF; let validation name what is missing.
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if v := getenv("FHIR_BRIDGE_AUDIT_DSN"); v != "" {
		c.Audit.DSN = v
	}
	c.Getenv = getenv
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// SetDefaults fills every unset field that has a documented default.
func (c *Config) SetDefaults() {
	if c.IdentifierSystem == "" {
		c.IdentifierSystem = DefaultIdentifierSystem
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.Retry.Initial == 0 {
		c.Retry.Initial = 200 * time.Millisecond
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = 30 * time.Second
	}
	k := &c.Kafka
	if k.SessionTimeout == 0 {
		k.SessionTimeout = 6 * time.Second
	}
	if k.HeartbeatInterval == 0 {
		k.HeartbeatInterval = time.Second
	}
	if k.RebalanceTimeout == 0 {
		k.RebalanceTimeout = 10 * time.Second
	}
	if k.MetadataRefresh == 0 {
		k.MetadataRefresh = 5 * time.Second
	}
	if k.SASL != nil && k.SASL.PasswordEnv == "" {
		k.SASL.PasswordEnv = "FHIR_BRIDGE_KAFKA_PASSWORD"
	}
	if c.Ops.Listen == "" {
		c.Ops.Listen = "127.0.0.1:9464"
	}
	if c.Tracing.Endpoint != "" && c.Tracing.SampleRatio == 0 {
		c.Tracing.SampleRatio = 0.01
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.GroupID == "" && r.Name != "" {
			r.GroupID = "fhir-bridge." + r.Name
		}
		if r.DeadLetterTopic == "" && r.Topic != "" {
			r.DeadLetterTopic = r.Topic + ".dead-letter"
		}
		if r.StartPosition == "" {
			r.StartPosition = StartLatest
		}
		if r.InFlight.MaxReadings == 0 {
			r.InFlight.MaxReadings = 2000
		}
		if r.InFlight.MaxBytes == 0 {
			r.InFlight.MaxBytes = 16 << 20
		}
		if r.Destination.FHIR != nil && r.Destination.FHIR.Timeout == 0 {
			r.Destination.FHIR.Timeout = 10 * time.Second
		}
		if f := r.Destination.FHIR; f != nil {
			if f.Batch.MaxEntries == 0 {
				f.Batch.MaxEntries = 100
			}
			if f.Batch.MaxBytes == 0 {
				f.Batch.MaxBytes = 1 << 20
			}
			if f.Batch.Linger == 0 {
				f.Batch.Linger = 20 * time.Millisecond
			}
			if f.Batch.Concurrency == 0 {
				f.Batch.Concurrency = 4
			}
		}
		if f := r.Destination.FHIR; f != nil && f.Auth != nil {
			if sb := f.Auth.SMARTBackend; sb != nil && len(sb.Scopes) == 0 {
				sb.Scopes = []string{"system/Observation.c"}
			}
			if cs := f.Auth.ClientSecret; cs != nil && cs.SecretEnv == "" {
				cs.SecretEnv = "FHIR_BRIDGE_CLIENT_SECRET"
			}
		}
		if m := r.Destination.MLLP; m != nil {
			if m.Connections == 0 {
				m.Connections = 4
			}
			if m.AckTimeout == 0 {
				m.AckTimeout = 10 * time.Second
			}
		}
	}
}

var (
	routeName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
)

// Validate checks the configuration and returns every problem found, each
// prefixed with its field path, e.g. "routes[0].destination.fhir.base_url".
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "required: at least one host:port")
	}
	for i, b := range c.Kafka.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if c.Audit.DSN == "" {
		bad("audit.dsn", "required (or set FHIR_BRIDGE_AUDIT_DSN)")
	} else if u, err := url.Parse(c.Audit.DSN); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Never echo the DSN: it may hold a password.
		bad("audit.dsn", "must be a postgres:// URL")
	}
	if u, err := url.Parse(c.IdentifierSystem); err != nil || !u.IsAbs() {
		bad("identifier_system", "%q must be an absolute URI", c.IdentifierSystem)
	}
	if c.ShutdownGrace < 0 {
		bad("shutdown_grace", "must not be negative")
	}
	if c.Retry.Initial < 0 || c.Retry.Max < c.Retry.Initial {
		bad("retry", "need 0 <= initial <= max, got initial %s max %s", c.Retry.Initial, c.Retry.Max)
	}
	k := c.Kafka
	if k.SessionTimeout < 0 || k.HeartbeatInterval < 0 || k.RebalanceTimeout < 0 || k.MetadataRefresh < 0 {
		bad("kafka", "session_timeout, heartbeat_interval, rebalance_timeout and metadata_refresh must not be negative")
	} else if k.HeartbeatInterval > 0 && k.SessionTimeout > 0 && 3*k.HeartbeatInterval > k.SessionTimeout {
		bad("kafka.heartbeat_interval", "%s must be at most a third of session_timeout (%s)", k.HeartbeatInterval, k.SessionTimeout)
	}
	if k.TLS != nil && (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
		bad("kafka.tls", "cert_file and key_file go together")
	}
	if s := k.SASL; s != nil {
		switch s.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			bad("kafka.sasl.mechanism", "%q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
		}
		if s.Username == "" {
			bad("kafka.sasl.username", "required")
		}
		if c.env(s.PasswordEnv) == "" {
			bad("kafka.sasl.password_env", "environment variable %s is empty", s.PasswordEnv)
		}
		if k.TLS == nil && s.Mechanism == "PLAIN" {
			// PLAIN sends the password as is.
			bad("kafka.sasl", "PLAIN needs kafka.tls: it sends the password in clear")
		}
	}
	if o := c.Ops.Listen; o != "off" {
		if _, _, err := net.SplitHostPort(o); err != nil {
			bad("ops.listen", "%q is not host:port (or off)", o)
		}
	}
	if t := c.Tracing; t.Endpoint != "" {
		if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("tracing.endpoint", "%q must be an http(s) URL", t.Endpoint)
		}
		if t.SampleRatio < 0 || t.SampleRatio > 1 {
			bad("tracing.sample_ratio", "must be between 0 and 1")
		}
	}
	if a := c.API; a.Listen != "" {
		host, _, err := net.SplitHostPort(a.Listen)
		if err != nil {
			bad("api.listen", "%q is not host:port", a.Listen)
		} else if a.TLSCertFile == "" && !a.AllowPlaintext && !isLoopback(host) {
			bad("api.tls_cert_file", "required to serve on a non-loopback address (or allow_plaintext behind a TLS proxy)")
		}
		if (a.TLSCertFile == "") != (a.TLSKeyFile == "") {
			bad("api", "tls_cert_file and tls_key_file go together")
		}
		if u, err := url.Parse(a.OIDC.Issuer); a.OIDC.Issuer == "" || err != nil || !u.IsAbs() {
			bad("api.oidc.issuer", "required: the identity provider's issuer URL")
		}
		if a.OIDC.Audience == "" {
			bad("api.oidc.audience", "required: the audience the API's tokens carry")
		}
	}
	if len(c.Routes) == 0 {
		bad("routes", "required: at least one route")
	}
	names := map[string]bool{}
	groups := map[string]bool{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			bad(p+".name", "required")
		case !routeName.MatchString(r.Name):
			bad(p+".name", "%q must be lower-case letters, digits, '.', '_' or '-' (max 63)", r.Name)
		case names[r.Name]:
			bad(p+".name", "%q is used by another route", r.Name)
		}
		names[r.Name] = true
		if r.Topic == "" {
			bad(p+".topic", "required")
		} else if !topicName.MatchString(r.Topic) {
			bad(p+".topic", "%q is not a valid Kafka topic name", r.Topic)
		}
		// A default derived from a bad topic would only repeat the topic's error.
		if r.DeadLetterTopic != "" && topicName.MatchString(r.Topic) && (!topicName.MatchString(r.DeadLetterTopic) || r.DeadLetterTopic == r.Topic) {
			bad(p+".dead_letter_topic", "%q must be a valid Kafka topic name other than the source topic", r.DeadLetterTopic)
		}
		if _, err := ParseStartPosition(r.StartPosition); err != nil {
			bad(p+".start_position", "%v", err)
		}
		if r.InFlight.MaxReadings < 0 || r.InFlight.MaxBytes < 0 {
			bad(p+".in_flight", "max_readings and max_bytes must not be negative")
		}
		if r.GroupID != "" && groups[r.GroupID] {
			bad(p+".group_id", "%q is used by another route; each route needs its own consumer group", r.GroupID)
		}
		groups[r.GroupID] = true
		if m := r.Destination.MLLP; m != nil {
			if r.Destination.FHIR != nil {
				bad(p+".destination", "set fhir or mllp, not both")
			}
			host, _, err := net.SplitHostPort(m.Address)
			switch {
			case m.Address == "":
				bad(p+".destination.mllp.address", "required")
			case err != nil:
				bad(p+".destination.mllp.address", "%q is not host:port", m.Address)
			case m.TLS == nil && !m.AllowPlaintext && !isLoopback(host):
				bad(p+".destination.mllp.tls", "required for a non-loopback engine (or set allow_plaintext on a closed network)")
			}
			if m.Connections < 0 || m.Connections > 64 {
				bad(p+".destination.mllp.connections", "must be between 1 and 64")
			}
			if m.AckTimeout < 0 {
				bad(p+".destination.mllp.ack_timeout", "must not be negative")
			}
			if m.TLS != nil && (m.TLS.CertFile == "") != (m.TLS.KeyFile == "") {
				bad(p+".destination.mllp.tls", "cert_file and key_file go together")
			}
			continue
		}
		f := r.Destination.FHIR
		if f == nil {
			bad(p+".destination", "required: set destination.fhir or destination.mllp")
			continue
		}
		if u, err := url.Parse(f.BaseURL); f.BaseURL == "" {
			bad(p+".destination.fhir.base_url", "required")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(p+".destination.fhir.base_url", "%q must be an absolute http(s) URL", f.BaseURL)
		} else if u.Scheme == "http" && !isLoopback(u.Hostname()) && !f.AllowPlainHTTP {
			// Readings are PHI: plain HTTP is allowed only where no wire is crossed.
			bad(p+".destination.fhir.base_url", "%q must use https (plain http only for loopback hosts or with allow_plain_http)", f.BaseURL)
		}
		if f.Timeout < 0 {
			bad(p+".destination.fhir.timeout", "must not be negative")
		}
		if f.Batch.MaxEntries < 0 || f.Batch.MaxEntries > 1000 {
			bad(p+".destination.fhir.batch.max_entries", "must be between 1 and 1000")
		}
		if f.Batch.Concurrency < 0 || f.Batch.Concurrency > 64 {
			bad(p+".destination.fhir.batch.concurrency", "must be between 1 and 64")
		}
		if f.Batch.MaxBytes < 0 || f.Batch.Linger < 0 {
			bad(p+".destination.fhir.batch", "max_bytes and linger must not be negative")
		}
		if f.TLS != nil && (f.TLS.CertFile == "") != (f.TLS.KeyFile == "") {
			bad(p+".destination.fhir.tls", "cert_file and key_file go together")
		}
		if a := f.Auth; a != nil {
			ap := p + ".destination.fhir.auth"
			n := 0
			for _, set := range []bool{a.SMARTBackend != nil, a.ClientSecret != nil, a.BearerTokenEnv != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				bad(ap, "set exactly one of smart_backend, client_secret, bearer_token_env")
			}
			if sb := a.SMARTBackend; sb != nil {
				if sb.ClientID == "" {
					bad(ap+".smart_backend.client_id", "required")
				}
				if sb.PrivateKeyFile == "" && c.env("FHIR_BRIDGE_SMART_KEY") == "" {
					bad(ap+".smart_backend.private_key_file", "required (or set FHIR_BRIDGE_SMART_KEY)")
				}
				if u, err := url.Parse(sb.TokenURL); sb.TokenURL != "" && (err != nil || !u.IsAbs()) {
					bad(ap+".smart_backend.token_url", "%q must be an absolute URL", sb.TokenURL)
				}
			}
			if cs := a.ClientSecret; cs != nil {
				if cs.ClientID == "" {
					bad(ap+".client_secret.client_id", "required")
				}
				if u, err := url.Parse(cs.TokenURL); err != nil || !u.IsAbs() {
					bad(ap+".client_secret.token_url", "required: an absolute URL")
				}
			}
		}
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start positions of a route without a committed offset.
const (
	StartLatest   = "latest"
	StartEarliest = "earliest"
)

// StartPosition is where a new consumer group starts: exactly one of
// Earliest, Latest or a non-zero At.
type StartPosition struct {
	Earliest bool
	At       time.Time
}

// Latest reports whether the group starts at the end of the topic.
func (s StartPosition) Latest() bool { return !s.Earliest && s.At.IsZero() }

// ParseStartPosition parses a route's start_position ("" means latest).
func ParseStartPosition(s string) (StartPosition, error) {
	switch s {
	case "", StartLatest:
		return StartPosition{}, nil
	case StartEarliest:
		return StartPosition{Earliest: true}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return StartPosition{}, fmt.Errorf("%q: want latest, earliest or an RFC 3339 time", s)
	}
	return StartPosition{At: t}, nil
}

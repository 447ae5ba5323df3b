package bridge

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// secret is the password in every test DSN; no error may ever show it.
const secret = "s3cr3t-pw"

const dsn = "postgres://bridge:" + secret + "@db.internal:5432/audit?sslmode=verify-full"

func noEnv(string) string { return "" }

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Config
	}{
		{
			name: "one route, defaults filled",
			yaml: `
kafka:
  brokers: ["kafka-1:9092", "10.0.0.2:9093"]
audit:
  dsn: ` + dsn + `
routes:
  - name: ward-7
    topic: vitals.ward-7
    destination:
      fhir:
        base_url: https://ehr.example.org/fhir
        timeout: 5s
`,
			want: Config{
				Kafka: KafkaConfig{Brokers: []string{"kafka-1:9092", "10.0.0.2:9093"}},
				Audit: AuditConfig{DSN: dsn},
				Routes: []RouteConfig{{
					Name:            "ward-7",
					Topic:           "vitals.ward-7",
					GroupID:         "fhir-bridge.ward-7",
					DeadLetterTopic: "vitals.ward-7.dead-letter",
					Destination:     DestinationConfig{FHIR: &FHIRDestination{BaseURL: "https://ehr.example.org/fhir", Timeout: 5 * time.Second, Batch: defaultBatch}},
				}},
				IdentifierSystem: DefaultIdentifierSystem,
				ShutdownGrace:    10 * time.Second,
				Retry:            RetryConfig{Initial: 200 * time.Millisecond, Max: 30 * time.Second},
			},
		},
		{
			name: "everything set, loopback http",
			yaml: `
kafka:
  brokers: ["localhost:9092"]
audit:
  dsn: postgresql://bridge@localhost/audit
identifier_system: urn:oid:1.2.3.4
shutdown_grace: 3s
retry:
  initial: 1s
  max: 1m
routes:
  - name: icu
    topic: vitals.icu
    group_id: custom-icu
    destination:
      fhir:
        base_url: http://127.0.0.1:8080/fhir
  - name: ward_2
    topic: Vitals-Ward_2
    destination:
      fhir:
        base_url: http://localhost:8080/fhir
        timeout: 250ms
  - name: lab
    topic: vitals.lab
    destination:
      fhir:
        base_url: http://[::1]:8080/fhir
`,
			want: Config{
				Kafka: KafkaConfig{Brokers: []string{"localhost:9092"}},
				Audit: AuditConfig{DSN: "postgresql://bridge@localhost/audit"},
				Routes: []RouteConfig{
					{Name: "icu", Topic: "vitals.icu", GroupID: "custom-icu", DeadLetterTopic: "vitals.icu.dead-letter",
						Destination: DestinationConfig{FHIR: &FHIRDestination{BaseURL: "http://127.0.0.1:8080/fhir", Timeout: 10 * time.Second, Batch: defaultBatch}}},
					{Name: "ward_2", Topic: "Vitals-Ward_2", GroupID: "fhir-bridge.ward_2", DeadLetterTopic: "Vitals-Ward_2.dead-letter",
						Destination: DestinationConfig{FHIR: &FHIRDestination{BaseURL: "http://localhost:8080/fhir", Timeout: 250 * time.Millisecond, Batch: defaultBatch}}},
					{Name: "lab", Topic: "vitals.lab", GroupID: "fhir-bridge.lab", DeadLetterTopic: "vitals.lab.dead-letter",
						Destination: DestinationConfig{FHIR: &FHIRDestination{BaseURL: "http://[::1]:8080/fhir", Timeout: 10 * time.Second, Batch: defaultBatch}}},
				},
				IdentifierSystem: "urn:oid:1.2.3.4",
				ShutdownGrace:    3 * time.Second,
				Retry:            RetryConfig{Initial: time.Second, Max: time.Minute},
			},
		},
		{
			name: "plain http to a remote host when allowed",
			yaml: `
kafka: {brokers: ["kafka:9092"]}
audit: {dsn: "postgres://bridge@postgres/audit"}
routes:
  - name: compose
    topic: vitals
    destination:
      fhir:
        base_url: http://hapi:8080/fhir
        allow_plain_http: true
`,
			want: Config{
				Kafka: KafkaConfig{Brokers: []string{"kafka:9092"}},
				Audit: AuditConfig{DSN: "postgres://bridge@postgres/audit"},
				Routes: []RouteConfig{{
					Name: "compose", Topic: "vitals", GroupID: "fhir-bridge.compose", DeadLetterTopic: "vitals.dead-letter",
					Destination: DestinationConfig{FHIR: &FHIRDestination{BaseURL: "http://hapi:8080/fhir", Timeout: 10 * time.Second, AllowPlainHTTP: true, Batch: defaultBatch}},
				}},
				IdentifierSystem: DefaultIdentifierSystem,
				ShutdownGrace:    10 * time.Second,
				Retry:            RetryConfig{Initial: 200 * time.Millisecond, Max: 30 * time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.yaml), noEnv)
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			got.Getenv = nil // a function; compared by what it returns elsewhere
			// The defaults every case shares.
			want := tt.want
			want.Kafka.SessionTimeout, want.Kafka.HeartbeatInterval = 6*time.Second, time.Second
			want.Kafka.RebalanceTimeout, want.Kafka.MetadataRefresh = 10*time.Second, 5*time.Second
			want.Ops.Listen = "127.0.0.1:9464"
			for i := range want.Routes {
				want.Routes[i].StartPosition = StartLatest
				want.Routes[i].InFlight = InFlightConfig{MaxReadings: 2000, MaxBytes: 16 << 20}
			}
			diff(t, "config", got, want)
		})
	}
}

const minimalRoutes = `
routes:
  - name: ward-7
    topic: vitals.ward-7
    destination:
      fhir:
        base_url: https://ehr.example.org/fhir
`

func TestParseConfigAuditDSNFromEnvironment(t *testing.T) {
	const envDSN = "postgres://bridge:env-" + secret + "@db.internal/audit"
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{"overrides the file", "kafka: {brokers: [k:9092]}\naudit: {dsn: '" + dsn + "'}\n" + minimalRoutes, map[string]string{"FHIR_BRIDGE_AUDIT_DSN": envDSN}, envDSN},
		{"replaces a missing one", "kafka: {brokers: [k:9092]}\n" + minimalRoutes, map[string]string{"FHIR_BRIDGE_AUDIT_DSN": envDSN}, envDSN},
		{"empty variable keeps the file's", "kafka: {brokers: [k:9092]}\naudit: {dsn: '" + dsn + "'}\n" + minimalRoutes, map[string]string{"FHIR_BRIDGE_AUDIT_DSN": ""}, dsn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.yaml), env(tt.env))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if got.Audit.DSN != tt.want {
				t.Errorf("Audit.DSN = %q, want %q", got.Audit.DSN, tt.want)
			}
		})
	}

	t.Run("an invalid one from the environment is reported, unquoted", func(t *testing.T) {
		_, err := ParseConfig([]byte("kafka: {brokers: [k:9092]}\naudit: {dsn: '"+dsn+"'}\n"+minimalRoutes),
			env(map[string]string{"FHIR_BRIDGE_AUDIT_DSN": "mysql://bridge:" + secret + "@db/audit"}))
		if err == nil || !strings.Contains(err.Error(), "audit.dsn") {
			t.Fatalf("ParseConfig error = %v, want one naming audit.dsn", err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the DSN's password: %v", err)
		}
	})
}

// fieldsOf returns the field paths of a Validate error's problems, one per
// "config: <field>: <reason>" line.
func fieldsOf(err error) []string {
	var out []string
	re := regexp.MustCompile(`^config: ([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): `)
	for _, line := range strings.Split(err.Error(), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			out = append(out, m[1])
		} else {
			out = append(out, "?"+line)
		}
	}
	slices.Sort(out)
	return out
}

var defaultBatch = BatchConfig{MaxEntries: 100, MaxBytes: 1 << 20, Linger: 20 * time.Millisecond, Concurrency: 4}

func TestParseConfigInvalid(t *testing.T) {
	const kafka = "kafka: {brokers: [kafka-1:9092]}\n"
	const auditOK = "audit: {dsn: '" + dsn + "'}\n"
	route := func(name, topic, rest string) string {
		return "  - name: " + name + "\n    topic: " + topic + "\n" + rest
	}
	fhirDest := func(baseURL string) string {
		return "    destination:\n      fhir:\n        base_url: " + baseURL + "\n"
	}
	okRoute := route("ward-7", "vitals.ward-7", fhirDest("https://ehr.example.org/fhir"))
	tests := []struct {
		name string
		yaml string
		want []string // every field path reported, and nothing else
	}{
		{"no kafka", auditOK + "routes:\n" + okRoute, []string{"kafka.brokers"}},
		{"empty brokers", "kafka: {brokers: []}\n" + auditOK + "routes:\n" + okRoute, []string{"kafka.brokers"}},
		{"broker without port", "kafka: {brokers: [kafka-1]}\n" + auditOK + "routes:\n" + okRoute, []string{"kafka.brokers[0]"}},
		{"second broker with empty port", "kafka: {brokers: ['kafka-1:9092', 'kafka-2:']}\n" + auditOK + "routes:\n" + okRoute, []string{"kafka.brokers[1]"}},
		{"no audit dsn", kafka + "routes:\n" + okRoute, []string{"audit.dsn"}},
		{"audit dsn not postgres", kafka + "audit: {dsn: 'mysql://bridge:" + secret + "@db/audit'}\nroutes:\n" + okRoute, []string{"audit.dsn"}},
		{"audit dsn not a URL", kafka + "audit: {dsn: 'host=db user=bridge password=" + secret + "'}\nroutes:\n" + okRoute, []string{"audit.dsn"}},
		{"audit dsn unparsable", kafka + "audit: {dsn: 'postgres://bridge:" + secret + "@db:port/audit'}\nroutes:\n" + okRoute, []string{"audit.dsn"}},
		{"no routes", kafka + auditOK, []string{"routes"}},
		{"empty routes", kafka + auditOK + "routes: []\n", []string{"routes"}},
		{"route without name", kafka + auditOK + "routes:\n" + route("''", "vitals", fhirDest("https://ehr.example.org/fhir")), []string{"routes[0].name"}},
		{"route name upper case", kafka + auditOK + "routes:\n" + route("Ward7", "vitals", fhirDest("https://ehr.example.org/fhir")), []string{"routes[0].name"}},
		{"route name too long", kafka + auditOK + "routes:\n" + route(strings.Repeat("a", 64), "vitals", fhirDest("https://ehr.example.org/fhir")), []string{"routes[0].name"}},
		{
			// Duplicate names also give duplicate default consumer groups.
			"duplicate route name",
			kafka + auditOK + "routes:\n" + okRoute + route("ward-7", "vitals.other", fhirDest("https://ehr.example.org/fhir")),
			[]string{"routes[1].group_id", "routes[1].name"},
		},
		{"route without topic", kafka + auditOK + "routes:\n" + route("ward-7", "''", fhirDest("https://ehr.example.org/fhir")), []string{"routes[0].topic"}},
		{"invalid topic", kafka + auditOK + "routes:\n" + route("ward-7", "'vitals ward 7'", fhirDest("https://ehr.example.org/fhir")), []string{"routes[0].topic"}},
		{
			"duplicate group id",
			kafka + auditOK + "routes:\n" + route("a", "vitals.a", "    group_id: shared\n"+fhirDest("https://ehr.example.org/fhir")) +
				route("b", "vitals.b", "    group_id: shared\n"+fhirDest("https://ehr.example.org/fhir")),
			[]string{"routes[1].group_id"},
		},
		{
			"group id equal to another route's default",
			kafka + auditOK + "routes:\n" + route("a", "vitals.a", "    group_id: fhir-bridge.b\n"+fhirDest("https://ehr.example.org/fhir")) +
				route("b", "vitals.b", fhirDest("https://ehr.example.org/fhir")),
			[]string{"routes[1].group_id"},
		},
		{"no destination", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", ""), []string{"routes[0].destination"}},
		{"empty destination", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", "    destination: {}\n"), []string{"routes[0].destination"}},
		{"no base url", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", "    destination: {fhir: {timeout: 5s}}\n"), []string{"routes[0].destination.fhir.base_url"}},
		{"relative base url", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", fhirDest("/fhir")), []string{"routes[0].destination.fhir.base_url"}},
		{"base url without host", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", fhirDest("'https:///fhir'")), []string{"routes[0].destination.fhir.base_url"}},
		{"ftp base url", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", fhirDest("ftp://ehr.example.org/fhir")), []string{"routes[0].destination.fhir.base_url"}},
		{"plain http to a remote host", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", fhirDest("http://ehr.example.org/fhir")), []string{"routes[0].destination.fhir.base_url"}},
		{"plain http to a private address", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", fhirDest("http://10.1.2.3:8080/fhir")), []string{"routes[0].destination.fhir.base_url"}},
		{"plain http with allow_plain_http false", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", "    destination: {fhir: {base_url: 'http://ehr.example.org/fhir', allow_plain_http: false}}\n"), []string{"routes[0].destination.fhir.base_url"}},
		{"allow_plain_http does not allow ftp", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", "    destination: {fhir: {base_url: 'ftp://ehr.example.org/fhir', allow_plain_http: true}}\n"), []string{"routes[0].destination.fhir.base_url"}},
		{"negative timeout", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", "    destination: {fhir: {base_url: 'https://ehr.example.org/fhir', timeout: -1s}}\n"), []string{"routes[0].destination.fhir.timeout"}},
		{"retry initial above the default max", kafka + auditOK + "retry: {initial: 1m}\nroutes:\n" + okRoute, []string{"retry"}},
		{"retry max below the default initial", kafka + auditOK + "retry: {max: 100ms}\nroutes:\n" + okRoute, []string{"retry"}},
		{"retry negative initial", kafka + auditOK + "retry: {initial: -1s, max: 1s}\nroutes:\n" + okRoute, []string{"retry"}},
		{"negative shutdown grace", kafka + auditOK + "shutdown_grace: -1s\nroutes:\n" + okRoute, []string{"shutdown_grace"}},
		{"relative identifier system", kafka + auditOK + "identifier_system: observation-key\nroutes:\n" + okRoute, []string{"identifier_system"}},
		{"heartbeat above a third of the session", "kafka: {brokers: [kafka-1:9092], session_timeout: 6s, heartbeat_interval: 3s}\n" + auditOK + "routes:\n" + okRoute, []string{"kafka.heartbeat_interval"}},
		{"negative session timeout", "kafka: {brokers: [kafka-1:9092], session_timeout: -1s}\n" + auditOK + "routes:\n" + okRoute, []string{"kafka"}},
		{"sasl unknown mechanism", "kafka: {brokers: [kafka-1:9092], tls: {}, sasl: {mechanism: GSSAPI, username: u}}\n" + auditOK + "routes:\n" + okRoute, []string{"kafka.sasl.mechanism", "kafka.sasl.password_env"}},
		{"sasl plain without tls", "kafka: {brokers: [kafka-1:9092], sasl: {mechanism: PLAIN}}\n" + auditOK + "routes:\n" + okRoute, []string{"kafka.sasl", "kafka.sasl.password_env", "kafka.sasl.username"}},
		{"kafka client cert without key", "kafka: {brokers: [kafka-1:9092], tls: {cert_file: c.pem}}\n" + auditOK + "routes:\n" + okRoute, []string{"kafka.tls"}},
		{"bad start position", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", "    start_position: yesterday\n"+fhirDest("https://ehr.example.org/fhir")), []string{"routes[0].start_position"}},
		{"negative in-flight bound", kafka + auditOK + "routes:\n" + route("ward-7", "vitals", "    in_flight: {max_readings: -1}\n"+fhirDest("https://ehr.example.org/fhir")), []string{"routes[0].in_flight"}},
		{"ops listen not host:port", kafka + auditOK + "ops: {listen: 9464}\nroutes:\n" + okRoute, []string{"ops.listen"}},
		{"tracing endpoint not http", kafka + auditOK + "tracing: {endpoint: 'grpc://collector:4317'}\nroutes:\n" + okRoute, []string{"tracing.endpoint"}},
		{"tracing ratio above 1", kafka + auditOK + "tracing: {endpoint: 'http://collector:4318', sample_ratio: 2}\nroutes:\n" + okRoute, []string{"tracing.sample_ratio"}},
		{
			"every problem at once",
			"kafka: {brokers: [kafka-1]}\naudit: {dsn: 'mysql://u:" + secret + "@db/a'}\nidentifier_system: key\nshutdown_grace: -1s\nretry: {initial: 2s, max: 1s}\nroutes:\n" +
				route("Bad", "'bad topic'", fhirDest("http://ehr.example.org/fhir")) +
				route("'b'", "''", "") +
				route("b", "vitals.b", fhirDest("/relative")),
			[]string{
				"audit.dsn", "identifier_system", "kafka.brokers[0]", "retry",
				"routes[0].destination.fhir.base_url", "routes[0].name", "routes[0].topic",
				"routes[1].destination", "routes[1].topic",
				"routes[2].destination.fhir.base_url", "routes[2].group_id", "routes[2].name",
				"shutdown_grace",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), noEnv)
			if err == nil {
				t.Fatalf("ParseConfig succeeded, want errors for %v", tt.want)
			}
			want := slices.Clone(tt.want)
			slices.Sort(want)
			diff(t, "fields reported in "+err.Error(), fieldsOf(err), want)
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the DSN's password: %v", err)
			}
		})
	}
}

func TestParseConfigRejectsUnknownKeys(t *testing.T) {
	base := "kafka: {brokers: [kafka-1:9092]}\naudit: {dsn: '" + dsn + "'}\n"
	tests := []struct {
		name, yaml, key string
	}{
		{"misspelt top-level key", base + minimalRoutes + "shutdown_grce: 5s\n", "shutdown_grce"},
		{"misspelt nested key", "kafka: {brokers: [kafka-1:9092], tsl: true}\naudit: {dsn: '" + dsn + "'}\n" + minimalRoutes, "tsl"},
		{"misspelt audit key", "kafka: {brokers: [kafka-1:9092]}\naudit: {dns: '" + dsn + "'}\n" + minimalRoutes, "dns"},
		{"misspelt route key", base + "routes:\n  - name: a\n    topik: vitals\n    destination: {fhir: {base_url: 'https://ehr.example.org/fhir'}}\n", "topik"},
		{"misspelt destination key", base + "routes:\n  - name: a\n    topic: vitals\n    destination: {fhir: {baseurl: 'https://ehr.example.org/fhir'}}\n", "baseurl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("ParseConfig error = %v, want one naming the unknown key %q", err, tt.key)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the DSN's password: %v", err)
			}
		})
	}
}

// TestParseConfigNeverShowsTheDSN feeds the DSN where the decoder or the
// validator will choke on it, and checks no error quotes it.
func TestParseConfigNeverShowsTheDSN(t *testing.T) {
	tests := map[string]string{
		"dsn as the audit section": "kafka: {brokers: [k:9092]}\naudit: '" + dsn + "'\n" + minimalRoutes,
		"dsn as a list":            "kafka: {brokers: [k:9092]}\naudit: {dsn: ['" + dsn + "']}\n" + minimalRoutes,
		"dsn with a bad scheme":    "kafka: {brokers: [k:9092]}\naudit: {dsn: 'postgres-x://bridge:" + secret + "@db/audit'}\n" + minimalRoutes,
		"dsn with a bad port":      "kafka: {brokers: [k:9092]}\naudit: {dsn: 'postgres://bridge:" + secret + "@db:xx/audit'}\n" + minimalRoutes,
		"dsn with a space":         "kafka: {brokers: [k:9092]}\naudit: {dsn: 'postgres ://bridge:" + secret + "@db/audit'}\n" + minimalRoutes,
	}
	for name, yaml := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(yaml), noEnv)
			if err == nil {
				t.Fatal("ParseConfig succeeded, want an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the DSN's password: %v", err)
			}
		})
	}
}

// TestParseConfigEmpty: an empty file is a configuration with every required
// field missing, and the error should say which.
func TestParseConfigEmpty(t *testing.T) {
	for _, yaml := range []string{"", "# nothing yet\n"} {
		_, err := ParseConfig([]byte(yaml), noEnv)
		if err == nil {
			t.Fatalf("ParseConfig(%q) succeeded", yaml)
		}
		diff(t, "fields reported for "+strconv.Quote(yaml)+" ("+err.Error()+")", fieldsOf(err), []string{"audit.dsn", "kafka.brokers", "routes"})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(path, []byte("kafka: {brokers: [kafka-1:9092]}\n"+minimalRoutes), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path, env(map[string]string{"FHIR_BRIDGE_AUDIT_DSN": dsn}))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if c.Audit.DSN != dsn || len(c.Routes) != 1 || c.Routes[0].GroupID != "fhir-bridge.ward-7" {
		t.Errorf("LoadConfig = %+v, want the file with the environment's DSN and defaults", c)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml"), noEnv); err == nil || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("LoadConfig of a missing file = %v, want a config: error", err)
	}
}

// TestExampleConfigs keeps the documented example configurations valid.
func TestExampleConfigs(t *testing.T) {
	paths, err := filepath.Glob("../docs/examples/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no example configurations found: %v", err)
	}
	for _, p := range paths {
		if _, err := LoadConfig(p, env(map[string]string{"FHIR_BRIDGE_AUDIT_DSN": dsn})); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

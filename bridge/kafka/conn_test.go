package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge"
	kgo "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fhir-bridge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by the CA.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage, dns ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDialerMutualTLS: the dialer's TLS configuration trusts the CA file,
// presents the client certificate and verifies the configured server name,
// shown by a handshake with a server that requires a client certificate.
func TestDialerMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	srvCert, srvKey := ca.issue(t, "broker", x509.ExtKeyUsageServerAuth, "kafka.test")
	cliCert, cliKey := ca.issue(t, "fhir-bridge", x509.ExtKeyUsageClientAuth)
	k := bridge.KafkaConfig{Brokers: []string{"127.0.0.1:9093"}, TLS: &bridge.TLSFiles{
		CAFile:     writeFile(t, dir, "ca.pem", ca.pem),
		CertFile:   writeFile(t, dir, "client.pem", cliCert),
		KeyFile:    writeFile(t, dir, "client-key.pem", cliKey),
		ServerName: "kafka.test",
	}}
	d, err := NewDialer(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.TLS == nil || d.TLS.MinVersion != tls.VersionTLS12 || d.TLS.ServerName != "kafka.test" || d.SASLMechanism != nil {
		t.Fatalf("dialer TLS %+v SASL %v", d.TLS, d.SASLMechanism)
	}
	tr, err := NewTransport(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.TLS == nil || tr.TLS.ServerName != "kafka.test" || tr.SASL != nil {
		t.Fatalf("transport TLS %+v SASL %v", tr.TLS, tr.SASL)
	}

	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			peer <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			peer <- "handshake: " + err.Error()
			return
		}
		peer <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), d.TLS)
	if err != nil {
		t.Fatalf("handshake with the dialer's TLS config: %v", err)
	}
	c.Close()
	if got := <-peer; got != "fhir-bridge" {
		t.Errorf("server saw client %q, want fhir-bridge", got)
	}

	// The same server under another name is refused.
	other := d.TLS.Clone()
	other.ServerName = "other.test"
	go func() {
		if c, err := ln.Accept(); err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	if c, err := tls.Dial("tcp", ln.Addr().String(), other); err == nil {
		c.Close()
		t.Error("handshake succeeded for a name the certificate does not carry")
	} else if retryable(err) {
		t.Errorf("certificate error %v classified as retryable", err)
	}
}

func TestTLSFileErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := writeFile(t, dir, "ca.txt", []byte("not a certificate"))
	tests := map[string]struct {
		files bridge.TLSFiles
		want  string
	}{
		"missing CA":   {bridge.TLSFiles{CAFile: filepath.Join(dir, "absent.pem")}, "kafka.tls.ca_file"},
		"CA not PEM":   {bridge.TLSFiles{CAFile: notPEM}, "no PEM certificate"},
		"cert alone":   {bridge.TLSFiles{CertFile: notPEM}, "cert_file and key_file go together"},
		"bad key pair": {bridge.TLSFiles{CertFile: notPEM, KeyFile: notPEM}, "kafka.tls: client certificate"},
	}
	for name, tt := range tests {
		files := tt.files
		_, err := NewDialer(bridge.KafkaConfig{Brokers: []string{"b:9093"}, TLS: &files}, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", name, err, tt.want)
		}
	}
	// No CA file: the system roots.
	d, err := NewDialer(bridge.KafkaConfig{Brokers: []string{"b:9093"}, TLS: &bridge.TLSFiles{}}, nil)
	if err != nil || d.TLS.RootCAs != nil || len(d.TLS.Certificates) != 0 {
		t.Errorf("empty TLS files: %v, %+v", err, d)
	}
}

func TestSASL(t *testing.T) {
	const password = "s3cret-Pa55"
	getenv := func(k string) string {
		if k == "KAFKA_PW" {
			return password
		}
		return ""
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		k := bridge.KafkaConfig{Brokers: []string{"b:9093"}, SASL: &bridge.SASLConfig{Mechanism: mech, Username: "bridge", PasswordEnv: "KAFKA_PW"}}
		d, err := NewDialer(k, getenv)
		if err != nil {
			t.Fatalf("%s: %v", mech, err)
		}
		tr, err := NewTransport(k, getenv)
		if err != nil {
			t.Fatalf("%s: %v", mech, err)
		}
		if d.SASLMechanism == nil || d.SASLMechanism.Name() != mech || tr.SASL == nil || tr.SASL.Name() != mech {
			t.Fatalf("%s: dialer %v transport %v", mech, d.SASLMechanism, tr.SASL)
		}
		if d.TLS != nil {
			t.Errorf("%s: TLS set without kafka.tls", mech)
		}
		if mech == "PLAIN" {
			if got := d.SASLMechanism.(plain.Mechanism); got.Username != "bridge" || got.Password != password {
				t.Errorf("PLAIN credentials %q/%q", got.Username, got.Password)
			}
			continue
		}
		// The client-first message of a SCRAM exchange names the user.
		_, first, err := d.SASLMechanism.Start(context.Background())
		if err != nil || !strings.HasPrefix(string(first), "n,,n=bridge,r=") {
			t.Errorf("%s: first message %q, %v", mech, first, err)
		}
	}

	// The default variable name, filled as bridge.Config.SetDefaults does,
	// without writing into the caller's SASLConfig.
	sc := &bridge.SASLConfig{Mechanism: "PLAIN", Username: "bridge"}
	d, err := NewDialer(bridge.KafkaConfig{Brokers: []string{"b:9093"}, SASL: sc}, func(k string) string {
		if k == "FHIR_BRIDGE_KAFKA_PASSWORD" {
			return password
		}
		return ""
	})
	if err != nil || d.SASLMechanism.(plain.Mechanism).Password != password {
		t.Errorf("default password_env: %v", err)
	}
	if sc.PasswordEnv != "" {
		t.Errorf("the caller's SASLConfig was changed: password_env %q", sc.PasswordEnv)
	}
}

func TestSASLErrors(t *testing.T) {
	const bad = "zq\u0007xv" // SASLprep prohibits control characters
	getenv := func(k string) string {
		switch k {
		case "GOOD":
			return "fine"
		case "BAD":
			return bad
		}
		return ""
	}
	tests := map[string]struct {
		sasl bridge.SASLConfig
		want string
	}{
		"empty password": {bridge.SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordEnv: "UNSET"}, "environment variable UNSET is empty"},
		"mechanism":      {bridge.SASLConfig{Mechanism: "GSSAPI", Username: "u", PasswordEnv: "GOOD"}, `"GSSAPI"`},
		"no user":        {bridge.SASLConfig{Mechanism: "PLAIN", PasswordEnv: "GOOD"}, "kafka.sasl.username"},
		"saslprep":       {bridge.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", PasswordEnv: "BAD"}, "SASLprep rejects"},
	}
	for name, tt := range tests {
		s := tt.sasl
		_, err := NewDialer(bridge.KafkaConfig{Brokers: []string{"b:9093"}, SASL: &s}, getenv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", name, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "zq") || strings.Contains(err.Error(), "fine") {
			t.Errorf("%s: error %q quotes the password", name, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	src, err := NewSource(bridge.KafkaConfig{Brokers: []string{"b:9092"}}, testRoute("r", "t", "g", ""), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := src.s.k
	if k.SessionTimeout != 6*time.Second || k.HeartbeatInterval != time.Second || k.RebalanceTimeout != 10*time.Second || k.MetadataRefresh != 5*time.Second {
		t.Errorf("defaults: session %s heartbeat %s rebalance %s metadata %s", k.SessionTimeout, k.HeartbeatInterval, k.RebalanceTimeout, k.MetadataRefresh)
	}
	if !src.start.Latest() {
		t.Error("empty start position is not latest")
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{kgo.RebalanceInProgress, true},
		{fmt.Errorf("wrapped: %w", kgo.NotCoordinatorForGroup), true},
		{kgo.LeaderNotAvailable, true},
		{kgo.UnknownMemberId, true},
		{kgo.InvalidSessionTimeout, false},
		{kgo.GroupAuthorizationFailed, false},
		{kgo.SASLAuthenticationFailed, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
		{x509.UnknownAuthorityError{}, false},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, false},
		{errors.New("unable to find selected balancer"), false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

func runMapArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"fhir-bridge", "map"}, args...), func(string) string { return "" }, &out, &out)
	return out.String(), err
}

func TestMapNativeToFHIRBundle(t *testing.T) {
	out, err := runMapArgs(t, "../../testdata/devices/blood-pressure/full.json")
	if err != nil {
		t.Fatalf("map: %v\n%s", err, out)
	}
	codec, _ := fhir.NewCodec()
	msg, err := codec.Decode([]byte(out))
	if err != nil {
		t.Fatalf("output is not valid R4: %v", err)
	}
	b := msg.(*crpb.ContainedResource).GetBundle()
	if b == nil || len(b.GetEntry()) != 2 {
		t.Fatalf("want a Bundle with the Observation and its Device, got %s", out)
	}
	if b.GetEntry()[0].GetResource().GetObservation() == nil || b.GetEntry()[1].GetResource().GetDevice() == nil {
		t.Errorf("entries are not Observation then Device")
	}
}

func TestMapMedTechPairToHL7(t *testing.T) {
	dir := "../../mappers/medtech/testdata/compat/templates/basic/"
	out, err := runMapArgs(t, "--format", "hl7", "--patient", "synthetic-patient-1",
		"--template", dir+"devicecontent.json", "--template", dir+"fhirmapping.json", "../../testdata/medtech/payloads/basic_all.json")
	if err != nil {
		t.Fatalf("map: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "MSH|^~\\&|") || !strings.Contains(out, "\nOBX|2|NM|149546^MDC_PULS_RATE_NON_INV^MDC^8867-4^Heart rate^LN|") {
		t.Errorf("unexpected HL7:\n%s", out)
	}
}

func TestMapBadInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(path, []byte(`{"kind":"heart-rate","device":"d1","patient":"p1","time":"2026-11-25T10:00:00Z","value":"fast"}`), 0o600)
	out, err := runMapArgs(t, path)
	if err == nil || !strings.Contains(err.Error(), `field "value"`) {
		t.Fatalf("err %v, want one naming field \"value\"; output %q", err, out)
	}
	var buf bytes.Buffer
	if code := exitCode(err, &buf); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if strings.Contains(buf.String(), "goroutine") || strings.Contains(buf.String(), "panic") {
		t.Errorf("stack trace printed: %s", buf.String())
	}
	_, err = runMapArgs(t, "--format", "xml", path)
	if code := exitCode(err, &buf); code != 2 {
		t.Errorf("--format xml: exit %d, want 2", code)
	}
	_, err = runMapArgs(t, "--template", "a.json", "--template", "b.json", "--template", "c.yaml", path)
	if err == nil {
		t.Error("three templates accepted")
	}
}

func TestKeysGenerateAndJWKS(t *testing.T) {
	for _, alg := range []string{"ES384", "RS384"} {
		var pemOut bytes.Buffer
		if err := run(context.Background(), []string{"fhir-bridge", "keys", "generate", "--alg", alg}, func(string) string { return "" }, &pemOut, &pemOut); err != nil {
			t.Fatalf("generate %s: %v", alg, err)
		}
		path := filepath.Join(t.TempDir(), "key.pem")
		os.WriteFile(path, pemOut.Bytes(), 0o600)
		var out bytes.Buffer
		if err := run(context.Background(), []string{"fhir-bridge", "keys", "jwks", path}, func(string) string { return "" }, &out, &out); err != nil {
			t.Fatalf("jwks: %v", err)
		}
		if !strings.Contains(out.String(), `"alg": "`+alg+`"`) || strings.Contains(out.String(), `"d":`) {
			t.Errorf("%s JWKS %s: want the public key with its alg and no private member", alg, out.String())
		}
	}
}

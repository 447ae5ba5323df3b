package mappers_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	"github.com/fhir-bridge/fhir-bridge/mappers"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// Patterns of FHIR R4 primitive types, copied from the specification
// (datatypes.html). google/fhir's own checks are looser (its dateTime accepts
// year 0000), so the fuzz target checks the output against the spec.
var (
	fhirIDPattern       = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	fhirDateTimePattern = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`)
	fhirDecimalPattern  = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

// FuzzParseNative feeds arbitrary payloads to the native parser. Properties:
// it never panics; a refusal is a *FieldError whose message is safe for the
// audit trail (valid UTF-8, no NUL); an accepted reading has a catalogue kind
// and FHIR ids, and maps to an Observation that passes the vital-signs rules,
// encodes, and survives google/fhir's strict validating unmarshaller
// unchanged, so the bridge never sends an EHR something it must reject.
func FuzzParseNative(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(devicesDir, "*", "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed payloads under %s: %v", devicesDir, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"kind":`,
		string(reading("value", `"72"`)),
		string(reading("value", `7.2e1`)),
		string(reading("value", `1e400`)),
		string(reading("value", `-0.0`)),
		string(reading("value", `401`)),
		string(reading("time", `"2026-11-25T10:15:00+14:00"`)),
		string(reading("time", `"2026-11-25T10:15:00+23:59"`)),
		string(reading("time", `"0001-01-01T00:00:00.999999999Z"`)),
		string(reading("time", `"9999-12-31T23:59:59.999999-14:00"`)),
		string(reading("time", `"0000-12-31T23:59:59Z"`)),
		string(reading("time", `"2026-11-25T10:15:00"`)),
		string(reading("device", `"a b"`)),
		string(reading("devce", `"x"`)),
		string(reading("unit", `"bpm"`)),
		string(reading("d\u0000x", `1`)),
		string(reading()) + ` x`,
	} {
		f.Add([]byte(s))
	}
	codec, err := fhir.NewCodec()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := mappers.ParseNative(data)
		if err != nil {
			var fe *mappers.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseNative(%q): error %T %v, want *FieldError", data, err, err)
			}
			msg := err.Error()
			if !utf8.ValidString(msg) || strings.ContainsRune(msg, 0) {
				t.Fatalf("ParseNative(%q): error %q is not printable UTF-8", data, msg)
			}
			return
		}
		if _, ok := mappers.Lookup(m.Kind); !ok {
			t.Fatalf("ParseNative(%q): kind %q not in the catalogue", data, m.Kind)
		}
		if !fhirIDPattern.MatchString(m.Device.ID) || (m.Subject.ID != "" && !fhirIDPattern.MatchString(m.Subject.ID)) {
			t.Fatalf("ParseNative(%q): device %q / patient %q are not FHIR ids", data, m.Device.ID, m.Subject.ID)
		}
		if again, err := mappers.ParseNative(data); err != nil || again.Key() != m.Key() {
			t.Fatalf("ParseNative(%q) is not deterministic: %v", data, err)
		}
		obs, err := mappers.Observation(m, identifierSystem)
		if err != nil {
			t.Fatalf("Observation(%+v): %v", m, err)
		}
		if v, _ := mappers.Lookup(m.Kind); v.Category == "vital-signs" {
			if !fhir.ClaimsVitalSigns(obs) {
				t.Fatalf("Observation of %q is a vital sign but claims no vital-signs profile", data)
			}
			if issues := fhir.CheckVitalSigns(obs); len(issues) > 0 {
				t.Fatalf("Observation of %q breaks the vital-signs rules: %v", data, issues)
			}
		}
		b, err := codec.Encode(obs)
		if err != nil {
			t.Fatalf("Encode of the Observation of %q: %v", data, err)
		}
		var out struct {
			EffectiveDateTime string
			EffectivePeriod   struct{ Start string }
			ValueQuantity     *struct{ Value json.Number }
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("Encode output is not JSON: %v\n%s", err, b)
		}
		if out.EffectiveDateTime == "" {
			out.EffectiveDateTime = out.EffectivePeriod.Start
		}
		if !fhirDateTimePattern.MatchString(out.EffectiveDateTime) {
			t.Fatalf("the Observation of %q has effectiveDateTime %q, not a FHIR dateTime", data, out.EffectiveDateTime)
		}
		if out.ValueQuantity != nil && !fhirDecimalPattern.MatchString(out.ValueQuantity.Value.String()) {
			t.Fatalf("the Observation of %q has value %q, not a FHIR decimal", data, out.ValueQuantity.Value)
		}
		decoded, err := codec.Decode(b)
		if err != nil {
			t.Fatalf("the Observation of %q does not pass the validating unmarshaller: %v\n%s", data, err, b)
		}
		fresh, err := mappers.Observation(m, identifierSystem)
		if err != nil {
			t.Fatal(err)
		}
		got := decoded.(*crpb.ContainedResource).GetObservation()
		if y := m.Time.UTC().Year(); y < 1678 || y > 2261 {
			// google/fhir's unmarshaller drops the fraction of a second of
			// instants beyond int64 nanoseconds (jsonpbhelper.GetTimestampUsec).
			// The JSON the bridge sends is right; compare whole seconds.
			wholeSeconds(fresh)
			wholeSeconds(got)
		}
		if diff := cmp.Diff(fresh, got, protocmp.Transform()); diff != "" {
			t.Fatalf("the Observation of %q changes in a JSON round trip (-sent +received):\n%s", data, diff)
		}
	})
}

// wholeSeconds rounds an Observation's effectiveDateTime down to the second.
func wholeSeconds(o *observationpb.Observation) {
	if dt := o.GetEffective().GetDateTime(); dt != nil {
		dt.ValueUs = time.UnixMicro(dt.ValueUs).Truncate(time.Second).UnixMicro()
	}
}

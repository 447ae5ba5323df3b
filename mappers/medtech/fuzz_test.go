package medtech

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzTemplates are the device mappings the payload fuzzer maps through:
// every fixture and in-repo template, so every template type is exercised.
func fuzzTemplates(f *testing.F) []*DeviceTemplate {
	f.Helper()
	paths, err := filepath.Glob(compatDir + "/documentation/*_Template.json")
	if err != nil {
		f.Fatal(err)
	}
	paths = append(paths,
		compatDir+"/templates/basic/devicecontent.json",
		compatDir+"/templates/healthkitOnFhir/devicecontent.json",
		compatDir+"/templates/sandbox/devicecontent.json",
		"testdata/templates/iothub/devicecontent.json",
		"testdata/templates/calculated/devicecontent.json",
	)
	var out []*DeviceTemplate
	for _, p := range paths {
		out = append(out, loadTemplate(f, p))
	}
	return out
}

func seedPayloads(f *testing.F) {
	f.Helper()
	for _, pattern := range []string{compatDir + "/documentation/*_Payload.json", payloadDir + "/*.json"} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			f.Add(readFile(f, p))
		}
	}
	for _, s := range []string{``, `null`, `[]`, `{}`, `"x"`, `{"matchedToken": 1, "heartRate": 1}`,
		`{"Body": {"heartRate": {"a": 1}, "deviceId": ["x"], "endDate": 5}}`, `{"heartrate": 1, "deviceid": "d", "measurementdatetime": "2019-02-01"}`} {
		f.Add([]byte(s))
	}
}

func checkMapResult(t *testing.T, payload []byte, ms []Measurement, err error) {
	t.Helper()
	body := bytes.TrimPrefix(payload, []byte("\xEF\xBB\xBF"))
	var pe *PayloadError
	var ee *EvalError
	switch {
	case err == nil:
		if !json.Valid(body) {
			t.Fatalf("mapped a payload encoding/json rejects: %q", payload)
		}
		for _, m := range ms {
			if m.Type == "" || m.DeviceID == "" || m.Timestamp.IsZero() {
				t.Fatalf("incomplete measurement %+v", m)
			}
			for _, v := range m.Values {
				if v.Name == "" || v.Value == "" {
					t.Fatalf("empty value in %+v", m)
				}
			}
		}
	case errors.As(err, &pe):
		if ms != nil {
			t.Fatalf("measurements returned with an error")
		}
		valid := json.Valid(body)
		syntax := strings.Contains(pe.Msg, "not valid JSON")
		if syntax && valid && !strings.Contains(pe.Msg, "nested deeper") {
			t.Fatalf("rejected valid JSON %q: %v", payload, err)
		}
		if !syntax && !valid {
			t.Fatalf("accepted invalid JSON %q: %v", payload, err)
		}
	case errors.As(err, &ee):
		if ms != nil {
			t.Fatalf("measurements returned with an error")
		}
		if ee.TemplateType == "" || ee.TypeName == "" || ee.Field == "" || ee.Err == nil {
			t.Fatalf("undescriptive error %#v", ee)
		}
	default:
		t.Fatalf("untyped error %T: %v", err, err)
	}
}

// FuzzDeviceTemplateMap maps arbitrary payloads through fixed templates: it
// must never panic, must accept exactly the JSON encoding/json accepts (up
// to the nesting limit), and must fail only with typed, descriptive errors.
func FuzzDeviceTemplateMap(f *testing.F) {
	templates := fuzzTemplates(f)
	seedPayloads(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, dt := range templates {
			ms, err := dt.Map(payload)
			checkMapResult(t, payload, ms, err)
		}
	})
}

// FuzzLoadDeviceTemplate loads arbitrary template bytes: loading must never
// panic and must fail only with *LoadError; a template that loads must map
// the sample payloads without panicking.
func FuzzLoadDeviceTemplate(f *testing.F) {
	paths, _ := filepath.Glob(compatDir + "/documentation/*_Template.json")
	paths = append(paths,
		compatDir+"/templates/basic/devicecontent.json",
		compatDir+"/templates/sandbox/devicecontent.json",
		"testdata/templates/iothub/devicecontent.json",
		"testdata/templates/calculated/devicecontent.json",
	)
	for _, p := range paths {
		f.Add(readFile(f, p))
	}
	// Small templates with every expression form, so mutations reach them.
	for _, s := range []string{
		collection(`{"templateType":"CalculatedContent","template":{"typeName":"t","defaultExpressionLanguage":"JmesPath","typeMatchExpression":"Body[?v]","deviceIdExpression":"Body[0].d","timestampExpression":"fromUnixTimestamp(matchedToken.t)","values":[{"valueName":"v","valueExpression":{"value":"$.matchedToken.v","language":"JsonPath"},"required":"true"}]}}`),
		collection(`{"templateType":"IotCentralJsonPathContent","template":{"typeName":"t","typeMatchExpression":"$..[?(@telemetry.a > 1 && @telemetry.b =~ /x/i)]","values":[{"valueName":"a","valueExpression":"$.telemetry.a"}]}}`),
		collection(`{"templateType":"CollectionContent","template":[{"templateType":"IotJsonPathContent","template":{"typeName":"t","typeMatchExpression":"$..[?(@Body.hr)]"}}]}`),
	} {
		f.Add([]byte(s))
	}
	payloads := [][]byte{
		readFile(f, payloadDir+"/calculated_jmespath.json"),
		readFile(f, payloadDir+"/basic_all.json"),
		readFile(f, docDir+"MultipleMatches_Payload.json"),
	}
	f.Fuzz(func(t *testing.T, tpl []byte) {
		dt, err := LoadDeviceTemplate(tpl)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if le.Msg == "" {
				t.Fatalf("empty message: %#v", le)
			}
			return
		}
		for _, p := range payloads {
			ms, err := dt.Map(p)
			checkMapResult(t, p, ms, err)
		}
	})
}

// FuzzJSONPath compiles arbitrary expressions and evaluates those that
// compile against a fixed document: no panics, bounded results.
func FuzzJSONPath(f *testing.F) {
	doc, err := parseJSON([]byte(pathDoc))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"$", "$..[?(@heartRate)]", "$..[?(@systolic && @diastolic)]", "$.Body.telemetry[?(@.type == 'heartRate')]",
		"$.Body.data[?(@.n > 1 || @.unit =~ /in/i)].n", "$..*", "$.Body.data[::-1]", "$['Body']['a','b']", "@.x", "$.matchedToken.endDate",
		"$..[?(@.n >= $.Body.data[0].n)]", "$.SystemProperties.iothub-connection-device-id", "$[?(@ != null)]", "$..[0,1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		jp, err := compileJSONPath(expr)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid JSONPath") {
				t.Fatalf("unexpected error form: %v", err)
			}
			return
		}
		res, err := jp.selectTokens(doc, doc)
		if err != nil {
			return
		}
		if len(res) > maxPathResults {
			t.Fatalf("%d results", len(res))
		}
		for _, n := range res {
			if n == nil {
				t.Fatal("nil result")
			}
		}
	})
}

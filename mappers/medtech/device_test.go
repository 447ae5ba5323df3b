package medtech

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// collection wraps leaf templates in a CollectionContent.
func collection(templates ...string) string {
	return `{"templateType": "CollectionContent", "template": [` + strings.Join(templates, ",") + `]}`
}

func TestLoadDeviceTemplateErrors(t *testing.T) {
	const hr = `{"templateType": "JsonPathContent", "template": {"typeName": "hr", "typeMatchExpression": "$..[?(@hr)]", "deviceIdExpression": "$.id", "timestampExpression": "$.ts", "values": [{"valueName": "hr", "valueExpression": "$.hr", "required": true}]}}`
	tests := []struct {
		name, tpl string
		path      string
		line, col int
		msg       string
	}{
		{name: "not json", tpl: `{"templateType": `, line: 1, col: 18, msg: "invalid JSON"},
		{name: "root array", tpl: `[]`, line: 1, col: 1, msg: "expected an object"},
		{name: "root type", tpl: `{"templateType": "JsonPathContent", "template": []}`, path: "templateType", msg: `must be "CollectionContent"`},
		{name: "root template not array", tpl: `{"templateType": "CollectionContent", "template": {}}`, path: "template", msg: "expected an array"},
		{name: "unknown type", tpl: collection(hr, `{"templateType": "FancyContent", "template": {}}`), path: "template[1].templateType", msg: `unknown templateType "FancyContent"`},
		{name: "missing typeName", tpl: collection(`{"templateType": "JsonPathContent", "template": {"typeMatchExpression": "$", "deviceIdExpression": "$", "timestampExpression": "$"}}`), path: "template[0].template.typeName", msg: "required property"},
		{name: "missing deviceId", tpl: collection(`{"templateType": "CalculatedContent", "template": {"typeName": "x", "typeMatchExpression": "$", "timestampExpression": "$"}}`), path: "template[0].template.deviceIdExpression", msg: "required property"},
		{name: "bad JSONPath", tpl: collection(hr, strings.Replace(hr, `"$.hr"`, `"$.hr["`, 1)), path: "template[1].template.values[0].valueExpression", msg: "open indexer"},
		{name: "bad JMESPath", tpl: collection(`{"templateType": "CalculatedContent", "template": {"typeName": "x", "defaultExpressionLanguage": "JmesPath", "typeMatchExpression": "Body[", "deviceIdExpression": "a", "timestampExpression": "b"}}`), path: "template[0].template.typeMatchExpression", msg: "invalid JMESPath"},
		{name: "JMESPath in JsonPathContent", tpl: collection(`{"templateType": "JsonPathContent", "template": {"typeName": "x", "typeMatchExpression": {"value": "Body", "language": "JmesPath"}, "deviceIdExpression": "$.a", "timestampExpression": "$.b"}}`), path: "template[0].template.typeMatchExpression.value", msg: "only supported by CalculatedContent"},
		{name: "unknown language", tpl: collection(`{"templateType": "CalculatedContent", "template": {"typeName": "x", "typeMatchExpression": {"value": "Body", "language": "XPath"}, "deviceIdExpression": "$.a", "timestampExpression": "$.b"}}`), path: "template[0].template.typeMatchExpression.language", msg: `unknown expression language "XPath"`},
		{name: "bad required", tpl: collection(strings.Replace(hr, `"required": true`, `"required": "maybe"`, 1)), path: "template[0].template.values[0].required", msg: "expected true or false"},
		{name: "empty valueName", tpl: collection(strings.Replace(hr, `"valueName": "hr"`, `"valueName": " "`, 1)), path: "template[0].template.values[0].valueName", msg: "must not be empty"},
		{name: "required value without expression", tpl: collection(strings.Replace(hr, `"valueExpression": "$.hr", `, ``, 1)), path: "template[0].template.values[0].valueExpression", msg: "has no valueExpression"},
		{name: "nested error path", tpl: collection(`{"templateType": "CollectionContent", "template": [` + hr + `, {"templateType": "JsonPathContent", "template": 5}]}`), path: "template[0].template[1].template", msg: "expected an object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadDeviceTemplate([]byte(tc.tpl))
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v (%T), want *LoadError", err, err)
			}
			if le.Path != tc.path || !strings.Contains(le.Msg, tc.msg) {
				t.Errorf("got path %q msg %q, want path %q msg containing %q", le.Path, le.Msg, tc.path, tc.msg)
			}
			if tc.line != 0 && (le.Line != tc.line || le.Column != tc.col) {
				t.Errorf("got line %d column %d, want %d:%d", le.Line, le.Column, tc.line, tc.col)
			}
			if le.Line == 0 {
				t.Errorf("error has no line: %v", le)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("message %q does not name the path", err)
			}
		})
	}
}

func TestLoadDeviceTemplateLineColumn(t *testing.T) {
	tpl := "\uFEFF{\n  \"templateType\": \"CollectionContent\",\n  \"template\": [\n    {\"templateType\": \"Nope\", \"template\": {}}\n  ]\n}"
	_, err := LoadDeviceTemplate([]byte(tpl))
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatal(err)
	}
	if le.Line != 4 || le.Column != 22 {
		t.Errorf("got %d:%d, want 4:22 (%v)", le.Line, le.Column, err)
	}
}

func TestLoadDeviceTemplateLenient(t *testing.T) {
	// Spellings MedTech accepts: any case, "Template" suffix, property names
	// in any case, "required" as a string, unknown properties ignored,
	// nested collections (an extension).
	tpl := `{"TemplateType": "collectioncontenttemplate", "Template": [
	  {"templateType": "JSONPATHCONTENT", "template": {"TypeName": "hr", "TypeMatchExpression": "$..[?(@hr)]",
	    "DeviceIdExpression": "$.id", "TimestampExpression": "$.ts", "comment": "ignored",
	    "Values": [{"ValueName": "hr", "ValueExpression": "$.hr", "Required": "True"}]}},
	  {"templateType": "CollectionContent", "template": [
	    {"templateType": "CalculatedContentTemplate", "template": {"typeName": "hr2", "typeMatchExpression": "$..[?(@hr)]",
	      "deviceIdExpression": "$.matchedToken.id", "timestampExpression": "$.matchedToken.ts", "patientIdExpression": "  "}}
	  ]}
	]}`
	dt, err := LoadDeviceTemplate([]byte(tpl))
	if err != nil {
		t.Fatal(err)
	}
	want := []TemplateInfo{
		{Path: "Template[0].template", Type: TypeJSONPathContent, TypeName: "hr", ValueNames: []string{"hr"}},
		{Path: "Template[1].template[0].template", Type: TypeCalculatedContent, TypeName: "hr2"},
	}
	if diff := cmp.Diff(want, dt.Templates()); diff != "" {
		t.Errorf("Templates() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"hr", "hr2"}, dt.TypeNames()); diff != "" {
		t.Errorf("TypeNames() (-want +got):\n%s", diff)
	}
	ms, err := dt.Map([]byte(`{"hr": 70, "id": "d", "ts": "2024-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Values[0].Value != "70" || ms[1].Type != "hr2" || ms[1].PatientID != "" {
		t.Errorf("unexpected measurements %+v", ms)
	}
}

func mustLoad(t *testing.T, tpl string) *DeviceTemplate {
	t.Helper()
	dt, err := LoadDeviceTemplate([]byte(tpl))
	if err != nil {
		t.Fatal(err)
	}
	return dt
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestMapSemantics(t *testing.T) {
	jsonPathHR := collection(`{"templateType": "JsonPathContent", "template": {"typeName": "heartrate",
		"typeMatchExpression": "$..[?(@heartRate)]", "deviceIdExpression": "$.deviceId", "timestampExpression": "$.endDate",
		"patientIdExpression": "$.patientId", "encounterIdExpression": "$.encounterId",
		"values": [{"valueName": "hr", "valueExpression": "$.heartRate", "required": true},
		           {"valueName": "note", "valueExpression": "$.note", "required": false}]}}`)
	calcHR := collection(`{"templateType": "CalculatedContent", "template": {"typeName": "heartrate",
		"typeMatchExpression": "$..[?(@heartRate)]", "deviceIdExpression": "$.Body.deviceId", "timestampExpression": "$.matchedToken.endDate",
		"correlationIdExpression": "$.matchedToken.session",
		"values": [{"valueName": "hr", "valueExpression": {"value": "matchedToken.heartRate", "language": "JmesPath"}, "required": true}]}}`)
	tests := []struct {
		name, tpl, payload string
		want               []Measurement
		err                string // substring of the error
		errIs              error
	}{
		{
			name: "JsonPathContent relative to matched token",
			tpl:  jsonPathHR,
			payload: `{"Body": [{"heartRate": 78, "deviceId": "d1", "endDate": "2019-02-01T22:46:01.8750000Z", "patientId": "p1", "encounterId": "e1", "note": "ok"},
			                    {"heartRate": "80.0", "deviceId": "d1", "endDate": "2019-02-01T23:46:01+02:00"}]}`,
			want: []Measurement{
				{Type: "heartrate", DeviceID: "d1", PatientID: "p1", EncounterID: "e1", Timestamp: ts("2019-02-01T22:46:01.875Z"), Values: []Value{{"hr", "78"}, {"note", "ok"}}},
				{Type: "heartrate", DeviceID: "d1", Timestamp: ts("2019-02-01T23:46:01+02:00"), Values: []Value{{"hr", "80.0"}}},
			},
		},
		{
			name:    "no match is no measurement",
			tpl:     jsonPathHR,
			payload: `{"Body": {"steps": 1}}`,
			want:    nil,
		},
		{
			name:    "required value null",
			tpl:     jsonPathHR,
			payload: `{"heartRate": null, "deviceId": "d1", "endDate": "2019-02-01T22:46:01Z"}`,
			err:     `JsonPathContent "heartrate" (template[0].template): required value "hr": expression "$.heartRate": required value not found`,
			errIs:   ErrRequiredValueMissing,
		},
		{
			name:    "required value empty string",
			tpl:     jsonPathHR,
			payload: `{"heartRate": "", "deviceId": "d1", "endDate": "2019-02-01T22:46:01Z"}`,
			errIs:   ErrRequiredValueMissing,
		},
		{
			name:    "required value is an object",
			tpl:     jsonPathHR,
			payload: `{"heartRate": {"v": 1}, "deviceId": "d1", "endDate": "2019-02-01T22:46:01Z"}`,
			err:     "not a single value",
		},
		{
			name:    "optional value that is an object is omitted",
			tpl:     jsonPathHR,
			payload: `{"heartRate": 1, "note": [1], "deviceId": "d1", "endDate": "2019-02-01T22:46:01Z"}`,
			want:    []Measurement{{Type: "heartrate", DeviceID: "d1", Timestamp: ts("2019-02-01T22:46:01Z"), Values: []Value{{"hr", "1"}}}},
		},
		{
			name:    "missing device id",
			tpl:     jsonPathHR,
			payload: `{"heartRate": 1, "endDate": "2019-02-01T22:46:01Z"}`,
			err:     `deviceIdExpression: expression "$.deviceId": required value not found`,
		},
		{
			name:    "numeric timestamp",
			tpl:     jsonPathHR,
			payload: `{"heartRate": 1, "deviceId": "d", "endDate": 1548000000}`,
			err:     "not a date-time string",
		},
		{
			name:    "unparseable timestamp",
			tpl:     jsonPathHR,
			payload: `{"heartRate": 1, "deviceId": "d", "endDate": "yesterday"}`,
			err:     `"yesterday" is not an ISO 8601 date-time`,
		},
		{
			name:    "timestamp without offset is UTC; numbers keep their literal; booleans",
			tpl:     jsonPathHR,
			payload: `{"heartRate": 1.50, "note": true, "deviceId": 42, "endDate": "2019-02-01 22:46:01.5"}`,
			want:    []Measurement{{Type: "heartrate", DeviceID: "42", Timestamp: ts("2019-02-01T22:46:01.5Z"), Values: []Value{{"hr", "1.50"}, {"note", "true"}}}},
		},
		{
			name:    "several device ids",
			tpl:     strings.Replace(jsonPathHR, `"$.deviceId"`, `"$..deviceId"`, 1),
			payload: `{"heartRate": 1, "deviceId": "a", "x": {"deviceId": "b"}, "endDate": "2019-02-01T22:46:01Z"}`,
			errIs:   ErrMultipleTokens,
		},
		{
			name:    "CalculatedContent sees payload and matchedToken",
			tpl:     calcHR,
			payload: `{"Body": {"deviceId": "dev", "data": [{"heartRate": 60, "endDate": "2021-07-13T17:29:01.061144Z", "session": "s1"}, {"heartRate": 61.5, "endDate": "2021-07-13T17:30:01Z", "session": 7}]}}`,
			want: []Measurement{
				{Type: "heartrate", DeviceID: "dev", CorrelationID: "s1", Timestamp: ts("2021-07-13T17:29:01.061144Z"), Values: []Value{{"hr", "60"}}},
				{Type: "heartrate", DeviceID: "dev", CorrelationID: "7", Timestamp: ts("2021-07-13T17:30:01Z"), Values: []Value{{"hr", "61.5"}}},
			},
		},
		{
			name:    "defined correlation id is required",
			tpl:     calcHR,
			payload: `{"Body": {"deviceId": "dev", "heartRate": 60, "endDate": "2021-07-13T17:29:01Z"}}`,
			err:     `correlationIdExpression: expression "$.matchedToken.session": required value not found`,
		},
		{
			name:    "CalculatedContent on an array payload",
			tpl:     calcHR,
			payload: `[{"heartRate": 60}]`,
			err:     "needs a JSON object payload",
		},
		{
			name:    "payload already has matchedToken",
			tpl:     calcHR,
			payload: `{"matchedToken": 1, "Body": {"heartRate": 60}}`,
			err:     "already has a property named matchedToken",
		},
		{
			name:    "not JSON",
			tpl:     jsonPathHR,
			payload: `{"heartRate": 1,}`,
			err:     "invalid payload (line 1, column 17)",
		},
		{
			name:    "scalar payload",
			tpl:     jsonPathHR,
			payload: `"heartRate"`,
			err:     "expected a JSON object or array, got string",
		},
		{
			name:    "empty payload",
			tpl:     jsonPathHR,
			payload: ``,
			err:     "empty document",
		},
		{
			name: "IotJsonPathContent falls back to the enqueued time",
			tpl: collection(`{"templateType": "IotJsonPathContent", "template": {"typeName": "hr", "typeMatchExpression": "$..[?(@Body.hr)]",
				"deviceIdExpression": "$.ignored", "values": [{"valueName": "hr", "valueExpression": "$.Body.hr", "required": true}]}}`),
			payload: `{"Body": {"hr": 70}, "Properties": {"iothub-creation-time-utc": "not a date"}, "SystemProperties": {"iothub-connection-device-id": "dev", "iothub-enqueuedtime": "2019-02-01T22:46:02Z"}}`,
			want:    []Measurement{{Type: "hr", DeviceID: "dev", Timestamp: ts("2019-02-01T22:46:02Z"), Values: []Value{{"hr", "70"}}}},
		},
		{
			name: "IotJsonPathContent without any timestamp",
			tpl: collection(`{"templateType": "IotJsonPathContent", "template": {"typeName": "hr", "typeMatchExpression": "$..[?(@Body.hr)]",
				"values": [{"valueName": "hr", "valueExpression": "$.Body.hr", "required": true}]}}`),
			payload: `{"Body": {"hr": 70}, "SystemProperties": {"iothub-connection-device-id": "dev"}}`,
			err:     `expression "$.Properties.iothub-creation-time-utc,$.SystemProperties.iothub-enqueuedtime": required value not found`,
		},
		{
			name: "IotCentralJsonPathContent",
			tpl: collection(`{"templateType": "IotCentralJsonPathContent", "template": {"typeName": "bp",
				"typeMatchExpression": "$..[?(@telemetry.BloodPressure.Diastolic && @telemetry.BloodPressure.Systolic)]",
				"values": [{"valueName": "d", "valueExpression": "$.telemetry.BloodPressure.Diastolic", "required": true}]}}`),
			payload: `{"deviceId": "c1", "enqueuedTime": "2020-08-05T22:26:55.455Z", "telemetry": {"BloodPressure": {"Diastolic": 7, "Systolic": 71}}}`,
			want:    []Measurement{{Type: "bp", DeviceID: "c1", Timestamp: ts("2020-08-05T22:26:55.455Z"), Values: []Value{{"d", "7"}}}},
		},
		{
			name: "JMESPath typeMatch: a projection yields each element",
			tpl: collection(`{"templateType": "CalculatedContent", "template": {"typeName": "t", "defaultExpressionLanguage": "JmesPath",
				"typeMatchExpression": "Body[?v > ` + "`1`" + `]", "deviceIdExpression": "Body[0].d", "timestampExpression": "fromUnixTimestamp(matchedToken.t)",
				"values": [{"valueName": "v", "valueExpression": "matchedToken.v", "required": true}]}}`),
			payload: `{"Body": [{"v": 1, "t": 0, "d": "x"}, {"v": 2, "t": 60}, {"v": 3.5, "t": 120}]}`,
			want: []Measurement{
				{Type: "t", DeviceID: "x", Timestamp: ts("1970-01-01T00:01:00Z"), Values: []Value{{"v", "2"}}},
				{Type: "t", DeviceID: "x", Timestamp: ts("1970-01-01T00:02:00Z"), Values: []Value{{"v", "3.5"}}},
			},
		},
		{
			name: "JMESPath value that projects several tokens",
			tpl: collection(`{"templateType": "CalculatedContent", "template": {"typeName": "t", "defaultExpressionLanguage": "JmesPath",
				"typeMatchExpression": "Body", "deviceIdExpression": "Body.d", "timestampExpression": "Body.t",
				"values": [{"valueName": "v", "valueExpression": "Body.list[*].v", "required": false}]}}`),
			payload: `{"Body": {"d": "x", "t": "2024-01-01T00:00:00Z", "list": [{"v": 1}, {"v": 2}]}}`,
			errIs:   ErrMultipleTokens,
		},
		{
			name: "JMESPath function error names the value",
			tpl: collection(`{"templateType": "CalculatedContent", "template": {"typeName": "t", "defaultExpressionLanguage": "JmesPath",
				"typeMatchExpression": "Body", "deviceIdExpression": "Body.d", "timestampExpression": "Body.t",
				"values": [{"valueName": "ratio", "valueExpression": "divide(Body.a, Body.b)", "required": true}]}}`),
			payload: `{"Body": {"d": "x", "t": "2024-01-01T00:00:00Z", "a": 1, "b": 0}}`,
			err:     `CalculatedContent "t" (template[0].template): required value "ratio": expression "divide(Body.a, Body.b)": divide: division by zero`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dt := mustLoad(t, tc.tpl)
			got, err := dt.Map([]byte(tc.payload))
			if tc.err != "" || tc.errIs != nil {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				if tc.err != "" && !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %q does not contain %q", err, tc.err)
				}
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Errorf("error %q is not %v", err, tc.errIs)
				}
				var ee *EvalError
				var pe *PayloadError
				if !errors.As(err, &ee) && !errors.As(err, &pe) {
					t.Errorf("error %T is neither *EvalError nor *PayloadError", err)
				}
				if got != nil {
					t.Errorf("got measurements %+v alongside the error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := map[string]string{
		"2019-02-01T22:46:01.8750000Z":   "2019-02-01T22:46:01.875Z",
		"2019-02-01T22:46:01Z":           "2019-02-01T22:46:01Z",
		"2019-02-01T22:46:01+01:00":      "2019-02-01T22:46:01+01:00",
		"2019-02-01T22:46:01-0530":       "2019-02-01T22:46:01-05:30",
		"2019-02-01T22:46:01+02":         "2019-02-01T22:46:01+02:00",
		"2019-02-01T22:46:01.123456789Z": "2019-02-01T22:46:01.123456789Z",
		"2019-02-01 22:46:01":            "2019-02-01T22:46:01Z",
		"2019-02-01T22:46":               "2019-02-01T22:46:00Z",
		"2019-02-01":                     "2019-02-01T00:00:00Z",
		" 2019-02-01T22:46:01+00:00 ":    "2019-02-01T22:46:01Z",
	}
	for in, want := range tests {
		got, err := parseTimestamp(in)
		if err != nil {
			t.Errorf("parseTimestamp(%q): %v", in, err)
			continue
		}
		if s := got.Format(time.RFC3339Nano); s != want {
			t.Errorf("parseTimestamp(%q) = %s, want %s", in, s, want)
		}
	}
	for _, bad := range []string{"", "2019-02-01T24:46:01Z", "02/01/2019", "1548000000", "2019-02-01T22:46:01.Z"} {
		if _, err := parseTimestamp(bad); err == nil {
			t.Errorf("parseTimestamp(%q) succeeded", bad)
		}
	}
}

func TestMapIsDeterministicAndConcurrent(t *testing.T) {
	dt := loadTemplate(t, "testdata/templates/calculated/devicecontent.json")
	payload := readFile(t, payloadDir+"/calculated_jmespath.json")
	first, err := dt.Map(payload)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []Measurement)
	for i := 0; i < 8; i++ {
		go func() {
			ms, err := dt.Map(payload)
			if err != nil {
				t.Error(err)
			}
			done <- ms
		}()
	}
	for i := 0; i < 8; i++ {
		if diff := cmp.Diff(first, <-done); diff != "" {
			t.Errorf("concurrent Map differs:\n%s", diff)
		}
	}
}

func TestEnvelope(t *testing.T) {
	env, err := Envelope([]byte("\uFEFF{\"heartRate\": 78}"), map[string]any{"k": "v"}, map[string]any{"iothub-connection-device-id": "dev"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Body":{"heartRate":78},"Properties":{"k":"v"},"SystemProperties":{"iothub-connection-device-id":"dev"}}`
	if string(env) != want {
		t.Errorf("got %s, want %s", env, want)
	}
	env, err = Envelope(nil, nil, nil)
	if err != nil || string(env) != `{"Body":null,"Properties":{},"SystemProperties":{}}` {
		t.Errorf("empty envelope: %s, %v", env, err)
	}
	var pe *PayloadError
	if _, err := Envelope([]byte("{"), nil, nil); !errors.As(err, &pe) {
		t.Errorf("bad body: got %v, want *PayloadError", err)
	}
	// A legacy JsonPathContent template maps the wrapped body unchanged.
	dt := loadTemplate(t, docDir+"HeartRate_Template.json")
	env, _ = Envelope([]byte(`{"heartRate": "78", "endDate": "2019-02-01T22:46:01.8750000Z", "deviceId": "device123"}`), nil, nil)
	ms, err := dt.Map(env)
	if err != nil || len(ms) != 1 || ms[0].Values[0].Value != "78" {
		t.Errorf("mapping an envelope: %+v, %v", ms, err)
	}
}

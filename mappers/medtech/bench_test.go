package medtech

import "testing"

// BenchmarkDeviceTemplateMap maps the documentation's heart-rate payload
// through a JsonPathContent template and through an all-JmesPath
// CalculatedContent template.
func BenchmarkDeviceTemplateMap(b *testing.B) {
	payload := readFile(b, docDir+"HeartRate_Payload.json")
	cases := []struct{ name, tpl string }{
		{"JsonPathContent", collection(`{"templateType": "JsonPathContent", "template": {"typeName": "heartrate",
			"typeMatchExpression": "$..[?(@heartRate)]", "deviceIdExpression": "$.deviceId", "timestampExpression": "$.endDate",
			"values": [{"required": "true", "valueExpression": "$.heartRate", "valueName": "hr"}]}}`)},
		{"CalculatedContentJmesPath", collection(`{"templateType": "CalculatedContent", "template": {"typeName": "heartrate",
			"defaultExpressionLanguage": "JmesPath", "typeMatchExpression": "Body", "deviceIdExpression": "matchedToken.deviceId",
			"timestampExpression": "matchedToken.endDate",
			"values": [{"required": "true", "valueExpression": "multiply(to_number(matchedToken.heartRate), ` + "`1`" + `)", "valueName": "hr"}]}}`)},
	}
	for _, bc := range cases {
		dt, err := LoadDeviceTemplate([]byte(bc.tpl))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ms, err := dt.Map(payload)
				if err != nil || len(ms) != 1 {
					b.Fatal(ms, err)
				}
			}
		})
	}
}

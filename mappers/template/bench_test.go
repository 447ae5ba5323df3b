package template_test

import (
	"testing"

	"github.com/fhir-bridge/fhir-bridge/mappers/template"
)

// BenchmarkMap maps one acme-rpm payload with three readings (a blood
// pressure panel, a pulse and a weight in pounds) to Inputs.
func BenchmarkMap(b *testing.B) {
	tpl := loadFile(b, templatesDir+"/acme-rpm.yaml")
	payload := []byte(`{
  "hub": {"serial": "HUB-0042", "cuffModel": "Acme BP-200"},
  "patient": {"id": "synthetic-patient-1"},
  "readings": [
    {"type": "bp", "deviceId": "acme-bp-0001", "ts": "2026-11-25T08:00:00+01:00", "sys": 128, "dia": 82, "map": 97},
    {"type": "pulse", "deviceId": "acme-bp-0001", "ts": "2026-11-25T08:00:00+01:00", "value": 64},
    {"type": "weight", "deviceId": "acme-scale-0002", "ts": "2026-11-25T08:05:12+01:00", "value": 172.4, "unit": "lb"}
  ]
}`)
	b.ReportAllocs()
	for b.Loop() {
		ins, err := tpl.Map(payload)
		if err != nil || len(ins) != 3 {
			b.Fatal(ins, err)
		}
	}
}

// BenchmarkLoad loads the acme-rpm sample template.
func BenchmarkLoad(b *testing.B) {
	src := readFile(b, templatesDir+"/acme-rpm.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := template.Load(src); err != nil {
			b.Fatal(err)
		}
	}
}

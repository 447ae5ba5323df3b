package bridge

import (
	"fmt"
	"os"

	"github.com/fhir-bridge/fhir-bridge/mappers"
	"github.com/fhir-bridge/fhir-bridge/mappers/template"
)

// nativeTemplate maps payloads with a native YAML template
// (docs/templates.md).
type nativeTemplate struct {
	t *template.Template
}

func loadNativeTemplate(paths []string) (PayloadMapper, error) {
	if len(paths) != 1 {
		return nil, fmt.Errorf("templates %v: give none (native JSON), one native YAML template, or a MedTech pair (device mapping and FHIR mapping)", paths)
	}
	data, err := os.ReadFile(paths[0])
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	t, err := template.Load(data)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", paths[0], err)
	}
	return nativeTemplate{t}, nil
}

// Map extracts the readings and checks each against the catalogue; the first
// reading that fails makes the whole payload fail, naming it.
func (n nativeTemplate) Map(payload []byte) ([]mappers.Measurement, error) {
	ins, err := n.t.Map(payload)
	if err != nil {
		return nil, err
	}
	out := make([]mappers.Measurement, 0, len(ins))
	for i, in := range ins {
		m, err := in.Measurement()
		if err != nil {
			return nil, fmt.Errorf("reading %d (%s): %w", i, in.Provenance.Template, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// MapEach extracts the readings and checks each against the catalogue on
// its own: a reading that fails is refused alone, naming its index and
// template; the others go on.
func (n nativeTemplate) MapEach(payload []byte) ([]mappers.Result, error) {
	got, err := n.t.MapEach(payload)
	if err != nil {
		return nil, err
	}
	out := make([]mappers.Result, 0, len(got))
	for i, g := range got {
		if g.Err != nil {
			// The EvalError names the template reading, match and field.
			out = append(out, mappers.Result{Index: i, Err: fmt.Errorf("reading %d: %w", i, g.Err)})
			continue
		}
		m, err := g.Input.Measurement()
		if err != nil {
			err = fmt.Errorf("reading %d (%s): %w", i, g.Input.Provenance.Template, err)
		}
		out = append(out, mappers.Result{Index: i, Measurement: m, Err: err})
	}
	return out, nil
}

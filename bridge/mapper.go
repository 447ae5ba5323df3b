package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/fhir-bridge/fhir-bridge/mappers"
)

// MapperOptions adjust template loading.
type MapperOptions struct {
	// DefaultPatientID is used for MedTech measurements without a patient.
	DefaultPatientID string
}

// PayloadMapper maps payloads with a route's templates: all readings or
// none (Map, for the map command), or each reading on its own (MapEach, for
// the pipeline).
type PayloadMapper interface {
	Map(payload []byte) ([]mappers.Measurement, error)
	Mapper
}

// LoadMapper returns the mapper for a list of template files: none means the
// native JSON format; two JSON files are a MedTech pair (device mapping and
// FHIR mapping, in either order).
func LoadMapper(paths []string, opts MapperOptions) (PayloadMapper, error) {
	switch len(paths) {
	case 0:
		return mappers.Native{}, nil
	case 2:
		a, err := os.ReadFile(paths[0])
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		b, err := os.ReadFile(paths[1])
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		dev, fm := a, b
		switch {
		case isFHIRMapping(a) && !isFHIRMapping(b):
			dev, fm = b, a
		case !isFHIRMapping(b):
			return nil, fmt.Errorf("templates %s, %s: need one MedTech device mapping and one FHIR mapping (templateType CollectionFhir)", paths[0], paths[1])
		}
		m, err := mappers.LoadMedTech(dev, fm, mappers.MedTechOptions{DefaultPatientID: opts.DefaultPatientID})
		if err != nil {
			return nil, fmt.Errorf("templates %s, %s: %w", paths[0], paths[1], err)
		}
		return m, nil
	default:
		return loadNativeTemplate(paths)
	}
}

// isFHIRMapping reports whether data is a MedTech FHIR mapping.
func isFHIRMapping(data []byte) bool {
	var head struct {
		TemplateType string `json:"templateType"`
	}
	_ = json.Unmarshal(bytes.TrimPrefix(data, []byte("\uFEFF")), &head)
	return head.TemplateType == "CollectionFhir" || head.TemplateType == "CodeValueFhir"
}

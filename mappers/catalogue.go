package mappers

// Vital describes one kind of reading the bridge maps: its codes, its unit and
// the profile its Observation claims.
type Vital struct {
	Kind    string // catalogue key used in payloads
	LOINC   string
	Display string   // LOINC display
	UCUM    string   // unit of the Observation value
	Profile string   // FHIR profile canonical URL
	Min     float64  // lowest plausible value, inclusive
	Max     float64  // highest plausible value, inclusive
	Aliases []string // vendor spellings of UCUM accepted on input
}

// catalogue lists every vital the bridge maps, keyed by Kind. Plausibility
// ranges reject readings no device can produce (a 900 /min heart rate is a
// vendor bug, not a patient); they are not clinical alarm limits.
var catalogue = map[string]Vital{
	"heart-rate": {
		Kind:    "heart-rate",
		LOINC:   "8867-4",
		Display: "Heart rate",
		UCUM:    "/min",
		Profile: "http://hl7.org/fhir/StructureDefinition/heartrate",
		Min:     0,
		Max:     400,
		Aliases: []string{"bpm", "beats/min", "{beats}/min", "1/min", "/min"},
	},
}

// Lookup returns the catalogue entry for kind.
func Lookup(kind string) (Vital, bool) {
	v, ok := catalogue[kind]
	return v, ok
}

// Kinds returns the catalogue keys.
func Kinds() []string {
	out := make([]string, 0, len(catalogue))
	for k := range catalogue {
		out = append(out, k)
	}
	return out
}

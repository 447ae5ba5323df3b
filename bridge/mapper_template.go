package bridge

import "fmt"

func loadNativeTemplate(paths []string) (Mapper, error) {
	return nil, fmt.Errorf("templates %v: give no template (native JSON) or a MedTech pair (device mapping and FHIR mapping)", paths)
}

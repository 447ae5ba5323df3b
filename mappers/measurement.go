// Package mappers turns vendor device payloads into the bridge's canonical
// Measurement and a Measurement into a FHIR R4 Observation that follows the
// vital-signs profiles (LOINC codes, UCUM units). Mapping is pure and
// deterministic: no I/O, no clock, no random ids, so the same payload always
// gives byte-identical output and a redelivered reading gets the same
// Observation identifier, which the destination uses to deduplicate.
package mappers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Measurement is one reading from one device, in canonical form.
type Measurement struct {
	// Kind is the catalogue key, e.g. "heart-rate".
	Kind string
	// DeviceID is the FHIR logical id of the reporting Device.
	DeviceID string
	// PatientID is the FHIR logical id of the Patient the reading is about.
	PatientID string
	// Time is when the reading was taken, in the device's UTC offset.
	Time time.Time
	// Value is the decimal literal as the device sent it, so precision is kept.
	Value string
	// Unit is the UCUM code of Value, already normalised to the catalogue unit.
	Unit string
}

// Key is the deterministic identity of the reading: the same physical reading
// always yields the same key, whichever route or bridge instance carries it
// and however often it is redelivered. It hashes device, patient, code and
// effective time (the PHD IG's conditionalCreate recipe, minus the PHD-owned
// system), so no patient identifier appears in the identifier value.
func (m Measurement) Key() string {
	v, _ := Lookup(m.Kind)
	h := sha256.New()
	// Fields are length-prefixed so "ab"+"c" and "a"+"bc" differ.
	for _, part := range []string{m.DeviceID, m.PatientID, v.LOINC, m.Time.UTC().Format(time.RFC3339Nano)} {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

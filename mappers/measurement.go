// Package mappers turns vendor device payloads into the bridge's canonical
// Measurement, and a Measurement into a FHIR R4 Observation that follows the
// vital-signs profiles (LOINC codes, UCUM units, IEEE 11073 MDC codings), a
// PHD-style Device resource, and the OBX rows of an IHE PCD-01 ORU^R01.
//
// Mapping is pure and deterministic: no I/O, no clock, no random ids, so the
// same payload always gives the same output and a redelivered reading gets
// the same Observation identifier, which the destination uses to deduplicate.
package mappers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Measurement is one reading from one device, in canonical form: values are
// already in the catalogue unit of their kind.
type Measurement struct {
	// Kind is the catalogue key, e.g. "heart-rate" or "blood-pressure".
	Kind   string
	Device Device
	// Subject is who or what the reading is about: a Patient for vital signs,
	// a Device or Location for cold-chain and device-health readings.
	Subject Subject
	// Time is when the reading was taken (or the start of its period), in the
	// device's UTC offset.
	Time time.Time
	// End is the end of the reading's period; zero for a point reading.
	End time.Time
	// Value is a decimal literal in Unit; empty for panels and absent values.
	Value string
	// Unit is the UCUM code of Value.
	Unit string
	// Absent is a data-absent-reason code, set when there is no Value.
	Absent string
	// Components are the parts of a panel, e.g. systolic and diastolic.
	Components []Component
	// Status is the FHIR Observation status; empty means "final".
	Status string
	// Custom describes a reading outside the catalogue (Kind is KindCustom),
	// as a template defines it.
	Custom     *Custom
	Provenance Provenance
}

// KindCustom marks a reading whose codes come from its template rather than
// the catalogue.
const KindCustom = "custom"

// Custom is a reading outside the catalogue, defined by a template (a MedTech
// FHIR mapping with its own codes, e.g. heart-rate variability). Its
// Observation carries the template's codes and categories and claims no
// profile; values are written as the template says, without unit checks.
type Custom struct {
	Codes    []Code
	Category []Code
	// ValueType is "Quantity" (default), "String" or "CodeableConcept".
	ValueType string
	// Unit, UnitSystem and UnitCode describe a Quantity's unit as given.
	Unit, UnitSystem, UnitCode string
	// ValueCodes is the value of a CodeableConcept reading.
	ValueCodes []Code
	ValueText  string
}

// Device identifies the reporting device.
type Device struct {
	// ID is the FHIR logical id of the Device at the destination.
	ID           string
	Serial       string
	EUI64        string // 16 hex digits, any case, with or without separators
	MAC          string // 12 hex digits (EUI-48)
	Model        string
	Manufacturer string
}

// Subject is a reference by logical id, or a patient by business identifier.
type Subject struct {
	Type string // "Patient", "Device" or "Location"
	ID   string // logical id; empty when Identifier is used
	// IdentifierSystem and IdentifierValue identify a patient by business
	// identifier (e.g. an MRN) when the logical id is unknown.
	IdentifierSystem string
	IdentifierValue  string
}

// Reference renders the subject as "Type/id", or "Type?identifier=sys|val".
func (s Subject) Reference() string {
	if s.ID != "" {
		return s.Type + "/" + s.ID
	}
	return s.Type + "?identifier=" + s.IdentifierSystem + "|" + s.IdentifierValue
}

// Component is one part of a panel reading.
type Component struct {
	Kind   string // catalogue key, e.g. "systolic"
	Value  string // decimal literal in the component's catalogue unit
	Unit   string
	Absent string // data-absent-reason code when Value is empty
}

// Provenance records where a reading came from, for the audit trail.
type Provenance struct {
	Route     string
	Topic     string
	Partition int
	Offset    int64
	Template  string // template (type name) that produced the reading
}

// Key is the deterministic identity of the reading: the same physical reading
// always yields the same key, whichever route or bridge instance carries it
// and however often it is redelivered. It hashes device, subject, code and
// effective time (the PHD IG's conditionalCreate recipe, minus the PHD-owned
// system), so no patient identifier appears in the identifier value.
// See docs/adr/0001-observation-identifier.md.
func (m Measurement) Key() string {
	code := m.code()
	h := sha256.New()
	parts := []string{m.Device.ID, m.Subject.Reference(), code.System + "|" + code.Code, m.Time.UTC().Format(time.RFC3339Nano)}
	if !m.End.IsZero() {
		parts = append(parts, m.End.UTC().Format(time.RFC3339Nano))
	}
	// Length-prefixed so "ab"+"c" and "a"+"bc" differ.
	for _, part := range parts {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Revision is the digest of what a reading says, as opposed to which
// reading it is (Key): its status and its values (value, unit, absent
// reason, components, a custom reading's value). A redelivery has the same
// key and revision; a correction (a new value, or status amended, corrected
// or entered-in-error) has the same key and a new revision.
// See docs/adr/0004-reading-revisions.md.
func (m Measurement) Revision() string {
	h := sha256.New()
	status := m.Status
	if status == "" {
		status = "final"
	}
	parts := []string{status, m.Value, m.Unit, m.Absent}
	for _, c := range m.Components {
		parts = append(parts, c.Kind, c.Value, c.Unit, c.Absent)
	}
	if c := m.Custom; c != nil {
		parts = append(parts, c.ValueText)
		for _, v := range c.ValueCodes {
			parts = append(parts, v.System+"|"+v.Code)
		}
	}
	for _, part := range parts {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Revises reports whether the reading explicitly revises an earlier one
// (status amended, corrected or entered-in-error).
func (m Measurement) Revises() bool { return RevisesStatus(m.Status) }

// RevisesStatus reports whether a FHIR Observation status says the reading
// revises an earlier one: amended, corrected or entered-in-error.
func RevisesStatus(status string) bool {
	switch status {
	case "amended", "corrected", "entered-in-error":
		return true
	}
	return false
}

// code is the reading's primary code.
func (m Measurement) code() Code {
	if m.Kind == KindCustom && m.Custom != nil && len(m.Custom.Codes) > 0 {
		return m.Custom.Codes[0]
	}
	v, _ := Lookup(m.Kind)
	return v.Code
}

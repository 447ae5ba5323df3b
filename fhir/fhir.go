// Package fhir is the bridge's FHIR R4 toolkit over github.com/google/fhir/go:
// builders for the datatypes vital-sign Observations need (LOINC and MDC codings,
// UCUM quantities, typed references), a validating codec, and a REST client for
// create with conditional create (If-None-Exist) that classifies failures as
// retryable or permanent.
//
// It is a leaf package: it never imports the pipeline or the mappers.
// Specifications: FHIR R4 (4.0.1) http.html for REST semantics, the R4
// vital-signs profiles for Observation content.
package fhir

import (
	"time"

	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// Code systems and value sets the bridge writes.
const (
	SystemLOINC               = "http://loinc.org"
	SystemUCUM                = "http://unitsofmeasure.org"
	SystemMDC                 = "urn:iso:std:iso:11073:10101"
	SystemObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
	SystemDataAbsentReason    = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
)

// Coding returns a Coding; display may be empty.
func Coding(system, code, display string) *dtpb.Coding {
	c := &dtpb.Coding{
		System: &dtpb.Uri{Value: system},
		Code:   &dtpb.Code{Value: code},
	}
	if display != "" {
		c.Display = &dtpb.String{Value: display}
	}
	return c
}

// Concept returns a CodeableConcept holding the given codings.
func Concept(codings ...*dtpb.Coding) *dtpb.CodeableConcept {
	return &dtpb.CodeableConcept{Coding: codings}
}

// Quantity returns a UCUM quantity. value is a decimal literal kept as given,
// so a device's precision survives ("72.0" stays "72.0").
func Quantity(value, ucum string) *dtpb.Quantity {
	return &dtpb.Quantity{
		Value:  &dtpb.Decimal{Value: value},
		Unit:   &dtpb.String{Value: ucum},
		System: &dtpb.Uri{Value: SystemUCUM},
		Code:   &dtpb.Code{Value: ucum},
	}
}

// Identifier returns an Identifier with a system and value.
func Identifier(system, value string) *dtpb.Identifier {
	return &dtpb.Identifier{
		System: &dtpb.Uri{Value: system},
		Value:  &dtpb.String{Value: value},
	}
}

// Canonical returns a canonical URL, e.g. a profile in meta.profile.
func Canonical(url string) *dtpb.Canonical {
	return &dtpb.Canonical{Value: url}
}

// PatientRef returns a literal reference Patient/<id>.
func PatientRef(id string) *dtpb.Reference {
	return &dtpb.Reference{Reference: &dtpb.Reference_PatientId{PatientId: &dtpb.ReferenceId{Value: id}}}
}

// DeviceRef returns a literal reference Device/<id>.
func DeviceRef(id string) *dtpb.Reference {
	return &dtpb.Reference{Reference: &dtpb.Reference_DeviceId{DeviceId: &dtpb.ReferenceId{Value: id}}}
}

// LocationRef returns a literal reference Location/<id>.
func LocationRef(id string) *dtpb.Reference {
	return &dtpb.Reference{Reference: &dtpb.Reference_LocationId{LocationId: &dtpb.ReferenceId{Value: id}}}
}

// DateTime returns a dateTime with the instant and UTC offset of t, at
// microsecond precision when t has sub-second digits and second precision
// otherwise. The offset is kept so the EHR shows the device's local time.
func DateTime(t time.Time) *dtpb.DateTime {
	p := dtpb.DateTime_SECOND
	if t.Nanosecond() != 0 {
		p = dtpb.DateTime_MICROSECOND
		if t.Nanosecond()%int(time.Millisecond) == 0 {
			p = dtpb.DateTime_MILLISECOND
		}
	}
	return &dtpb.DateTime{ValueUs: t.UnixMicro(), Timezone: Offset(t), Precision: p}
}

// Offset renders t's zone as "Z" for UTC or "+hh:mm".
func Offset(t time.Time) string {
	_, off := t.Zone()
	if off == 0 {
		return "Z"
	}
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	h, m := off/3600, off%3600/60
	return string([]byte{sign, byte('0' + h/10), byte('0' + h%10), ':', byte('0' + m/10), byte('0' + m%10)})
}

// Package hl7 will hold the bridge's HL7 v2 toolkit: the ORU^R01 message model
// (IHE PCD-01 over v2.6), escaping, the encoder, the ACK parser and the MLLP
// client. It is a leaf package: standard library only, no cgo.
//
// Nothing is implemented yet; the walking skeleton delivers FHIR only.
package hl7

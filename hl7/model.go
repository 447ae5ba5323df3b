package hl7

import "time"

// Coding system names used in CWE components 3 and 6 (HL7 table 0396).
const (
	SystemMDC   = "MDC"  // ISO/IEEE 11073-10101 nomenclature
	SystemLOINC = "LN"   // LOINC
	SystemUCUM  = "UCUM" // Unified Code for Units of Measure
)

// UniversalIDTypeEUI64 is the HL7 table 0301 universal ID type of an IEEE
// EUI-64 (16 hex digits), added for IHE PCD in MSH-3, OBR-2, OBR-3 and
// OBX-18.
const UniversalIDTypeEUI64 = "EUI-64"

// HD is a hierarchic designator: a namespace id and/or a universal id with
// its type, for example AcmeInc^ACDE48234567ABCD^EUI-64 in MSH-3.
type HD struct {
	NamespaceID     string // HD-1
	UniversalID     string // HD-2, e.g. an OID or an EUI-64
	UniversalIDType string // HD-3, table 0301, e.g. "ISO" or "EUI-64"; required with UniversalID
}

// EI is an entity identifier, for example the order numbers of OBR-2/OBR-3
// (AB12345^AcmePHGInc^ACDE48234567ABCD^EUI-64) and the equipment of OBX-18.
type EI struct {
	EntityID        string // EI-1
	NamespaceID     string // EI-2
	UniversalID     string // EI-3
	UniversalIDType string // EI-4, table 0301; required with UniversalID
}

// EUI64 returns the entity identifier of a device known by its IEEE EUI-64
// (16 hex digits), in the form EUI^^EUI^EUI-64 used for OBX-18: the EUI is
// both the entity id and the universal id, and EI-4 names its type.
func EUI64(eui string) EI {
	return EI{EntityID: eui, UniversalID: eui, UniversalIDType: UniversalIDTypeEUI64}
}

// CWE is a coded value with an optional alternate coding (components 1-3
// and 4-6 of the v2.6 CWE type). For OBX-3 the bridge puts the MDC code
// first, e.g. 150456^MDC_PULS_OXIM_SAT_O2^MDC, with LOINC as the alternate;
// for OBX-6 a UCUM unit, e.g. %^%^UCUM, optionally with the MDC unit as the
// alternate. The zero CWE is an absent value.
type CWE struct {
	Code      string // CWE-1 identifier
	Text      string // CWE-2 text; for MDC the reference id, e.g. MDC_PULS_OXIM_SAT_O2
	System    string // CWE-3 coding system, e.g. SystemMDC
	AltCode   string // CWE-4
	AltText   string // CWE-5
	AltSystem string // CWE-6, e.g. SystemLOINC
}

// IsZero reports whether c has no component set.
func (c CWE) IsZero() bool { return c == CWE{} }

// ORU is one device report, encoded by Append as an ORU^R01 message
// following IHE PCD-01 on HL7 v2.6. Fields marked required make Append fail
// with a *FieldError when they are missing.
type ORU struct {
	// ControlID is MSH-10, echoed in the acknowledgement's MSA-2. Required;
	// at most 199 characters, printable ASCII without the delimiters |^~\&,
	// because partners often echo it without unescaping. The caller derives
	// it deterministically, so a resent message keeps its id.
	ControlID string
	// Timestamp is MSH-7, the time the message was created. Required.
	Timestamp time.Time

	SendingApplication   HD // MSH-3, required: the bridge or gateway, e.g. RPMBridge^0A1B2C3D4E5F6071^EUI-64
	SendingFacility      HD // MSH-4, optional
	ReceivingApplication HD // MSH-5, optional
	ReceivingFacility    HD // MSH-6, optional

	// ProcessingID is MSH-11: "P" production, "D" debugging, "T" training.
	// Default: "P".
	ProcessingID string
	// AcceptAckType is MSH-15 (table 0155: AL, ER, NE, SU). Default: "NE".
	AcceptAckType string
	// ApplicationAckType is MSH-16 (table 0155). Default: "AL".
	ApplicationAckType string
	// Profile is MSH-21, the message profile identifier. Default:
	// IHE PCD ORU-R01 2006^HL7^1.3.6.1.4.1.19376.1.6.1.1.1^ISO (PCD-01).
	Profile EI

	// Patient is written to PID.
	Patient Patient
	// PatientClass is PV1-2 (table 0004, e.g. "I", "O", "R"). When empty the
	// PV1 segment is omitted, which PCD-01 allows.
	PatientClass string

	// Order is written to the single OBR.
	Order Order
	// Observations are written as OBX segments, OBX-1 numbered from 1.
	// At least one is required.
	Observations []OBX
}

// Patient is the PID segment.
type Patient struct {
	// ID is PID-3.1. Required.
	ID string
	// AssigningAuthority is PID-3.4, written as subcomponents
	// Namespace&UniversalID&Type. Required (namespace or universal id).
	AssigningAuthority HD
	// IdentifierType is PID-3.5 (table 0203), e.g. "MR" or "PI". Required.
	IdentifierType string
	// FamilyName and GivenName are PID-5.1 and PID-5.2, both optional. When
	// both are empty PID-5 is ^^^^^^U (name type unspecified).
	FamilyName string
	GivenName  string
}

// Order is the OBR segment: the group the observations belong to.
type Order struct {
	// PlacerOrderNumber is OBR-2. Optional; unsolicited device results often
	// repeat the filler number here.
	PlacerOrderNumber EI
	// FillerOrderNumber is OBR-3, e.g. a report id in the gateway's EUI-64
	// namespace: RPM-000123^RPMBridge^0A1B2C3D4E5F6071^EUI-64. Required.
	FillerOrderNumber EI
	// UniversalServiceID is OBR-4. Required. PCD-01 feeds use the MDS or
	// device specialization code (69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC,
	// 528391^MDC_DEV_SPEC_PROFILE_BP^MDC), a LOINC panel
	// (44616-1^Pulse oximetry panel^LN) or SNOMED CT
	// 182777000^monitoring of patient^SNOMED-CT; the package does not choose.
	UniversalServiceID CWE
	// ObservationTime is OBR-7, the start of the group. Required.
	ObservationTime time.Time
	// ObservationEndTime is OBR-8, the end of the group. Optional.
	ObservationEndTime time.Time
}

// OBX is one observation row. In PCD-01 a row is either a metric with a
// value or a header row (MDS, VMD, channel) of the containment tree, which
// has no value type, no value and result status X; see the package
// documentation for the OBX-4 layout.
type OBX struct {
	// ValueType is OBX-2: "NM" (numeric), "ST" (string), "TX" (text), "DTM"
	// (date/time) or "CWE" (coded, from CodedValue). Empty for a row with no
	// value. Other types are rejected.
	ValueType string
	// Identifier is OBX-3: the MDC code (code^reference id^MDC) with LOINC
	// as the alternate triplet (code^display^LN). Required: code and system.
	Identifier CWE
	// Hierarchy is OBX-4, the dotted containment path, e.g. "1.0.0.1".
	// Required by PCD-01; digits separated by single dots.
	Hierarchy string
	// Value is OBX-5 for NM, ST, TX and DTM, already formatted by the
	// caller: an NM value is a decimal literal ([+-]digits[.digits]) and keeps
	// the precision the device reported.
	Value string
	// CodedValue is OBX-5 when ValueType is "CWE".
	CodedValue CWE
	// Units is OBX-6, e.g. /min^/min^UCUM. Optional.
	Units CWE
	// ReferenceRange is OBX-7, e.g. "30.0-40.0". Optional.
	ReferenceRange string
	// AbnormalFlags is OBX-8 (table 0078: L, H, LL, HH, N, A, ...), written
	// as repetitions. Optional.
	AbnormalFlags []string
	// ResultStatus is OBX-11 (table 0085). Default: "F" when the row has a
	// value, "X" when it has none. A row with a value type but no value must
	// carry a status that explains it: X, N, I or D.
	ResultStatus string
	// ObservationTime is OBX-14; it overrides OBR-7/OBR-8 for this row.
	// Optional.
	ObservationTime time.Time
	// EquipmentID is OBX-18, the device instance; see EUI64. Optional.
	EquipmentID EI
	// ObservationSite is OBX-20, e.g. 49521004^left ear structure^SCT.
	// Optional.
	ObservationSite CWE
}

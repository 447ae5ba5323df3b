package fhirjson

import (
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// Target types allowed for each reference element (R4 valid_reference_type
// annotations, checked against the protos by TestReferenceTargets). nil:
// any resource.
var (
	refObservationBasedOn   = []string{"CarePlan", "DeviceRequest", "ImmunizationRecommendation", "MedicationRequest", "NutritionOrder", "ServiceRequest"}
	refObservationPartOf    = []string{"MedicationAdministration", "MedicationDispense", "MedicationStatement", "Procedure", "Immunization", "ImagingStudy"}
	refObservationSubject   = []string{"Patient", "Group", "Device", "Location"}
	refObservationFocus     = []string{"Resource"}
	refObservationEncounter = []string{"Encounter"}
	refObservationPerformer = []string{"Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "RelatedPerson"}
	refObservationSpecimen  = []string{"Specimen"}
	refObservationDevice    = []string{"Device", "DeviceMetric"}
	refObservationHasMember = []string{"Observation", "QuestionnaireResponse", "MolecularSequence"}
	refObservationDerived   = []string{"DocumentReference", "ImagingStudy", "Media", "QuestionnaireResponse", "Observation", "MolecularSequence"}
	refDeviceDefinition     = []string{"DeviceDefinition"}
	refPatient              = []string{"Patient"}
	refOrganization         = []string{"Organization"}
	refLocation             = []string{"Location"}
	refDevice               = []string{"Device"}
	refAnnotationAuthor     = []string{"Practitioner", "Patient", "RelatedPerson", "Organization"}
)

// referenceMember writes `"name":{...}` for a non-nil Reference. A typed
// reference (patientId, deviceId, ...) is written as "reference":
// "Type/id[/_history/v]" like google/fhir's DenormalizeReference, but
// without rewriting the message; a fragment as "#id". The target type is
// checked against allowed ("Resource" in it allows any), as google/fhir's
// validator does.
func referenceMember(b []byte, start int, name string, r *dtpb.Reference, allowed []string) ([]byte, error) {
	if r == nil {
		return b, nil
	}
	b, err := appendReference(key(b, start, name), r, allowed)
	if err != nil {
		return b, in(err, name)
	}
	return b, nil
}

func referenceMembers(b []byte, start int, name string, rs []*dtpb.Reference, allowed []string) ([]byte, error) {
	if len(rs) == 0 {
		return b, nil
	}
	b = append(key(b, start, name), '[')
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		if r == nil {
			return b, errAt(name, "nil list item")
		}
		var err error
		if b, err = appendReference(b, r, allowed); err != nil {
			return b, inAt(err, name, i)
		}
	}
	return append(b, ']'), nil
}

func appendReference(b []byte, r *dtpb.Reference, allowed []string) ([]byte, error) {
	if r.Reference == nil && r.Identifier == nil && r.Display == nil && r.Type == nil && r.Id == nil && len(r.Extension) == 0 {
		return b, errAt("", reasonEmptyRef)
	}
	b = append(b, '{')
	start := len(b)
	b, err := appendElementBase(b, start, r.Id, r.Extension)
	if err != nil {
		return b, err
	}
	if r.Reference != nil {
		if b, err = appendReferenceTarget(b, start, r, allowed); err != nil {
			return b, err
		}
	}
	if b, err = appendURIMember(b, start, "type", r.Type); err != nil {
		return b, err
	}
	if b, err = member(b, start, "identifier", r.Identifier, appendIdentifier); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "display", r.Display); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendReferenceTarget(b []byte, start int, r *dtpb.Reference, allowed []string) ([]byte, error) {
	if typ, id, ok := typedReference(r); ok {
		if id == nil {
			return b, errAt("reference", "empty reference id")
		}
		if primitiveExt(id.Id, id.Extension) {
			return b, errAt("reference", reasonPrimitiveExt)
		}
		if reason := checkID(id.Value); reason != "" {
			return b, errAt("reference", "reference id is "+reason)
		}
		if !allowedTarget(typ, allowed) {
			return b, errAt("reference", "invalid reference to a "+typ+" resource")
		}
		b = append(key(b, start, "reference"), '"')
		b = append(b, typ...)
		b = append(b, '/')
		b = append(b, id.Value...)
		if h := id.History; h != nil && h.Value != "" {
			if primitiveExt(h.Id, h.Extension) {
				return b, errAt("reference", reasonPrimitiveExt)
			}
			if reason := checkID(h.Value); reason != "" {
				return b, errAt("reference", "history version is "+reason)
			}
			b = append(b, "/_history/"...)
			b = append(b, h.Value...)
		}
		return append(b, '"'), nil
	}
	switch x := r.Reference.(type) {
	case *dtpb.Reference_Uri:
		if x.Uri == nil {
			return b, errAt("reference", "empty reference")
		}
		return appendStringMember(b, start, "reference", x.Uri)
	case *dtpb.Reference_Fragment:
		f := x.Fragment
		if f == nil {
			return b, errAt("reference", "empty reference")
		}
		if primitiveExt(f.Id, f.Extension) {
			return b, errAt("reference", reasonPrimitiveExt)
		}
		if reason := checkString(f.Value); reason != "" {
			return b, errAt("reference", reason)
		}
		b = append(key(b, start, "reference"), '"', '#')
		return append(appendStringBody(b, f.Value), '"'), nil
	}
	return b, errAt("reference", reasonUnsupported)
}

func allowedTarget(typ string, allowed []string) bool {
	if allowed == nil {
		return true
	}
	for _, a := range allowed {
		if a == typ || a == "Resource" {
			return true
		}
	}
	return false
}

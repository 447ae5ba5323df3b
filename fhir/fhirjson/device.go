package fhirjson

import (
	devicepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/device_go_proto"
)

// deviceStatus is FHIRDeviceStatusCode by enum number.
var deviceStatus = [...]string{1: "active", 2: "inactive", 3: "entered-in-error", 4: "unknown"}

// deviceNameType is DeviceNameTypeCode by enum number.
var deviceNameType = [...]string{1: "udi-label-name", 2: "user-friendly-name", 3: "patient-reported-name",
	4: "manufacturer-name", 5: "model-name", 6: "other"}

// EncodeDevice returns the FHIR R4 JSON of d in a new slice, or nil and an
// *Error.
func EncodeDevice(d *devicepb.Device) ([]byte, error) {
	b, err := AppendDevice(make([]byte, 0, 1024), d)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendDevice appends the compact FHIR R4 JSON of d to dst. On error it
// returns dst as given and an *Error naming the element at fault.
func AppendDevice(dst []byte, d *devicepb.Device) ([]byte, error) {
	if d == nil {
		return dst, errAt("Device", "nil resource")
	}
	b, err := appendDevice(dst, d)
	if err != nil {
		return dst, in(err, "Device")
	}
	return b, nil
}

func appendDevice(b []byte, d *devicepb.Device) ([]byte, error) {
	b = append(b, `{"resourceType":"Device"`...)
	start := len(b) - 1
	b, err := appendResourceBase(b, start, d.Id, d.Meta, d.ImplicitRules, d.Language, d.Text, len(d.Contained), d.Extension, d.ModifierExtension)
	if err != nil {
		return b, err
	}
	if b, err = members(b, start, "identifier", d.Identifier, appendIdentifier); err != nil {
		return b, err
	}
	if b, err = referenceMember(b, start, "definition", d.Definition, refDeviceDefinition); err != nil {
		return b, err
	}
	if len(d.UdiCarrier) > 0 {
		return b, errAt("udiCarrier", reasonUnsupported)
	}
	if s := d.Status; s != nil {
		if primitiveExt(s.Id, s.Extension) {
			return b, errAt("status", reasonPrimitiveExt)
		}
		// google/fhir omits an unset (zero) code; status is optional.
		if v := int(s.Value); v != 0 {
			if v < 0 || v >= len(deviceStatus) {
				return b, errAt("status", "unknown code")
			}
			b = appendString(key(b, start, "status"), deviceStatus[v])
		}
	}
	if b, err = members(b, start, "statusReason", d.StatusReason, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "distinctIdentifier", d.DistinctIdentifier); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "manufacturer", d.Manufacturer); err != nil {
		return b, err
	}
	if b, err = appendDateTimeMember(b, start, "manufactureDate", d.ManufactureDate); err != nil {
		return b, err
	}
	if b, err = appendDateTimeMember(b, start, "expirationDate", d.ExpirationDate); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "lotNumber", d.LotNumber); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "serialNumber", d.SerialNumber); err != nil {
		return b, err
	}
	if b, err = members(b, start, "deviceName", d.DeviceName, appendDeviceName); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "modelNumber", d.ModelNumber); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "partNumber", d.PartNumber); err != nil {
		return b, err
	}
	if b, err = member(b, start, "type", d.Type, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = members(b, start, "specialization", d.Specialization, appendDeviceSpecialization); err != nil {
		return b, err
	}
	if b, err = members(b, start, "version", d.Version, appendDeviceVersion); err != nil {
		return b, err
	}
	if b, err = members(b, start, "property", d.Property, appendDeviceProperty); err != nil {
		return b, err
	}
	if b, err = referenceMember(b, start, "patient", d.Patient, refPatient); err != nil {
		return b, err
	}
	if b, err = referenceMember(b, start, "owner", d.Owner, refOrganization); err != nil {
		return b, err
	}
	if len(d.Contact) > 0 {
		return b, errAt("contact", reasonUnsupported)
	}
	if b, err = referenceMember(b, start, "location", d.Location, refLocation); err != nil {
		return b, err
	}
	if b, err = appendURIMember(b, start, "url", d.Url); err != nil {
		return b, err
	}
	if b, err = members(b, start, "note", d.Note, appendAnnotation); err != nil {
		return b, err
	}
	if b, err = members(b, start, "safety", d.Safety, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = referenceMember(b, start, "parent", d.Parent, refDevice); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendDeviceName(b []byte, n *devicepb.Device_DeviceName) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendBackboneBase(b, start, n.Id, n.Extension, n.ModifierExtension)
	if err != nil {
		return b, err
	}
	if n.Name == nil {
		return b, errAt("name", reasonRequired)
	}
	if b, err = appendStringMember(b, start, "name", n.Name); err != nil {
		return b, err
	}
	t := n.Type
	if t == nil || t.Value == 0 {
		return b, errAt("type", reasonRequired)
	}
	if primitiveExt(t.Id, t.Extension) {
		return b, errAt("type", reasonPrimitiveExt)
	}
	if v := int(t.Value); v < 0 || v >= len(deviceNameType) {
		return b, errAt("type", "unknown code")
	}
	b = appendString(key(b, start, "type"), deviceNameType[t.Value])
	return append(b, '}'), nil
}

func appendDeviceSpecialization(b []byte, s *devicepb.Device_Specialization) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendBackboneBase(b, start, s.Id, s.Extension, s.ModifierExtension)
	if err != nil {
		return b, err
	}
	if s.SystemType == nil {
		return b, errAt("systemType", reasonRequired)
	}
	if b, err = member(b, start, "systemType", s.SystemType, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = appendStringMember(b, start, "version", s.Version); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendDeviceVersion(b []byte, v *devicepb.Device_Version) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendBackboneBase(b, start, v.Id, v.Extension, v.ModifierExtension)
	if err != nil {
		return b, err
	}
	if b, err = member(b, start, "type", v.Type, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = member(b, start, "component", v.Component, appendIdentifier); err != nil {
		return b, err
	}
	if v.Value == nil {
		return b, errAt("value", reasonRequired)
	}
	if b, err = appendStringMember(b, start, "value", v.Value); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendDeviceProperty(b []byte, p *devicepb.Device_Property) ([]byte, error) {
	b = append(b, '{')
	start := len(b)
	b, err := appendBackboneBase(b, start, p.Id, p.Extension, p.ModifierExtension)
	if err != nil {
		return b, err
	}
	if p.Type == nil {
		return b, errAt("type", reasonRequired)
	}
	if b, err = member(b, start, "type", p.Type, appendCodeableConcept); err != nil {
		return b, err
	}
	if b, err = members(b, start, "valueQuantity", p.ValueQuantity, appendQuantity); err != nil {
		return b, err
	}
	if b, err = members(b, start, "valueCode", p.ValueCode, appendCodeableConcept); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

package mappers

import (
	"strings"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	devicepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/device_go_proto"
)

// PHD IG device identifier systems and type codes (standards.md 2.3).
const (
	systemEUI64        = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
	systemBluetoothMAC = "http://hl7.org/fhir/sid/eui-48/bluetooth"
	systemContinuaID   = "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers"
	profilePhdDevice   = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"
)

// DeviceResource builds the Device the Observations reference, with the PHD
// IG's identifier slices: the EUI-64 system id (SYSID) and the Bluetooth MAC
// (BTMAC), the serial number in serialNumber (not identifier), manufacturer
// and model. Its id is the device's logical id, so it can be written with an
// update (PUT Device/<id>) before or with the Observations.
func DeviceResource(d Device) *devicepb.Device {
	r := &devicepb.Device{
		Id:     &dtpb.Id{Value: d.ID},
		Meta:   &dtpb.Meta{Profile: []*dtpb.Canonical{fhir.Canonical(profilePhdDevice)}},
		Status: &devicepb.Device_StatusCode{Value: codespb.FHIRDeviceStatusCode_ACTIVE},
		Type:   fhir.Concept(fhir.Coding(fhir.SystemMDC, "65573", "MDC_MOC_VMS_MDS_SIMP")),
	}
	if d.EUI64 != "" {
		id := fhir.Identifier(systemEUI64, dashed(d.EUI64))
		id.Type = fhir.Concept(fhir.Coding(systemContinuaID, "SYSID", "IEEE 11073 System Identifier"))
		r.Identifier = append(r.Identifier, id)
	}
	if d.MAC != "" {
		id := fhir.Identifier(systemBluetoothMAC, dashed(d.MAC))
		id.Type = fhir.Concept(fhir.Coding(systemContinuaID, "BTMAC", "Bluetooth MAC Address"))
		r.Identifier = append(r.Identifier, id)
	}
	if d.Serial != "" {
		r.SerialNumber = &dtpb.String{Value: d.Serial}
	}
	if d.Manufacturer != "" {
		r.Manufacturer = &dtpb.String{Value: d.Manufacturer}
	}
	if d.Model != "" {
		r.ModelNumber = &dtpb.String{Value: d.Model}
	}
	return r
}

// dashed renders bare hex as upper-case pairs joined by dashes (FE-ED-AB-...).
func dashed(hex string) string {
	var b strings.Builder
	for i := 0; i+1 < len(hex); i += 2 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(strings.ToUpper(hex[i : i+2]))
	}
	return b.String()
}

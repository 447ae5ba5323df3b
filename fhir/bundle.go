package fhir

import (
	"fmt"

	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	devicepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/device_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"google.golang.org/protobuf/proto"
)

// Contain wraps a resource the bridge emits in a ContainedResource, the form
// Bundle entries take.
func Contain(res proto.Message) (*crpb.ContainedResource, error) {
	switch r := res.(type) {
	case *observationpb.Observation:
		return &crpb.ContainedResource{OneofResource: &crpb.ContainedResource_Observation{Observation: r}}, nil
	case *devicepb.Device:
		return &crpb.ContainedResource{OneofResource: &crpb.ContainedResource_Device{Device: r}}, nil
	case *crpb.ContainedResource:
		return r, nil
	default:
		return nil, fmt.Errorf("contain %s: unsupported resource type", resourceName(res))
	}
}

// CollectionBundle returns a Bundle of type collection holding resources in
// order, e.g. the output of the map testbench.
func CollectionBundle(resources ...proto.Message) (*crpb.Bundle, error) {
	b := &crpb.Bundle{Type: &crpb.Bundle_TypeCode{Value: codespb.BundleTypeCode_COLLECTION}}
	for _, r := range resources {
		cr, err := Contain(r)
		if err != nil {
			return nil, err
		}
		b.Entry = append(b.Entry, &crpb.Bundle_Entry{Resource: cr})
	}
	return b, nil
}

package auditevent

import (
	"strings"
	"testing"
	"time"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	aepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/audit_event_go_proto"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

var at = time.Date(2026, 11, 25, 10, 15, 0, 123456000, time.UTC)

var opts = Options{
	BridgeID:       "bridge-1",
	BridgeIDSystem: "urn:fhir-bridge:instance",
	BridgeHost:     "bridge-1.icu.example",
	Site:           "icu",
	Destinations:   map[string]string{"hr": "https://ehr.example/fhir"},
	OIDCIssuer:     "https://idp.example",
}

func delivered() audit.Event {
	return audit.Event{
		ID: 42, Time: at, Action: audit.ActionDelivered, Outcome: audit.OutcomeSuccess, Actor: audit.ActorSystem,
		Route: "hr", Topic: "vitals", Partition: 2, Offset: 17,
		Device: "Device/hrm-1", Patient: "Patient/p-42", Resource: "urn:bridge:obs|hrm-1-8867-4-20261125",
		Status: 201, Location: "Observation/o-9/_history/1", CorrelationID: "vitals/2/17",
	}
}

func codec(t *testing.T) *fhir.Codec {
	t.Helper()
	c, err := fhir.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip encodes ae and decodes it with the validating unmarshaller.
func roundTrip(t *testing.T, ae proto.Message) proto.Message {
	t.Helper()
	c := codec(t)
	b, err := c.Encode(proto.Clone(ae))
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := c.Decode(b)
	if err != nil {
		t.Fatalf("Decode(%s): %v", b, err)
	}
	cr, ok := got.(*crpb.ContainedResource)
	if !ok {
		t.Fatalf("decoded %T", got)
	}
	switch r := cr.GetOneofResource().(type) {
	case *crpb.ContainedResource_AuditEvent:
		return r.AuditEvent
	case *crpb.ContainedResource_Bundle:
		return r.Bundle
	}
	t.Fatalf("decoded %T", cr.GetOneofResource())
	return nil
}

func coding(system, code, display string) *dtpb.Coding { return fhir.Coding(system, code, display) }
func s(v string) *dtpb.String                          { return &dtpb.String{Value: v} }

func clientAgent() *aepb.AuditEvent_Agent {
	return &aepb.AuditEvent_Agent{
		Type: fhir.Concept(coding(SystemDICOM, "110153", "Source Role ID")),
		Who: &dtpb.Reference{Identifier: fhir.Identifier("urn:fhir-bridge:instance", "bridge-1"),
			Display: s("bridge-1")},
		Requestor: &dtpb.Boolean{Value: false},
		Network: &aepb.AuditEvent_Agent_Network{Address: s("bridge-1.icu.example"),
			Type: &aepb.AuditEvent_Agent_Network_TypeCode{Value: codespb.AuditEventAgentNetworkTypeCode_MACHINE_NAME}},
	}
}

func serverAgentWant() *aepb.AuditEvent_Agent {
	return &aepb.AuditEvent_Agent{
		Type:      fhir.Concept(coding(SystemDICOM, "110152", "Destination Role ID")),
		Who:       &dtpb.Reference{Identifier: fhir.Identifier(SystemURI, "https://ehr.example/fhir"), Display: s("https://ehr.example/fhir")},
		Requestor: &dtpb.Boolean{Value: false},
		Network: &aepb.AuditEvent_Agent_Network{Address: s("https://ehr.example/fhir"),
			Type: &aepb.AuditEvent_Agent_Network_TypeCode{Value: codespb.AuditEventAgentNetworkTypeCode_URI}},
	}
}

func source() *aepb.AuditEvent_Source {
	return &aepb.AuditEvent_Source{
		Site: s("icu"),
		Observer: &dtpb.Reference{Identifier: fhir.Identifier("urn:fhir-bridge:instance", "bridge-1"),
			Display: s("bridge-1")},
		Type: []*dtpb.Coding{coding(SystemSourceType, "4", "Application Server")},
	}
}

func correlation(v string) []*aepb.AuditEvent_Entity_Detail { return details("correlation-id", v) }

// details builds entity details from type, value pairs.
func details(kv ...string) []*aepb.AuditEvent_Entity_Detail {
	var out []*aepb.AuditEvent_Entity_Detail
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &aepb.AuditEvent_Entity_Detail{Type: s(kv[i]),
			Value: &aepb.AuditEvent_Entity_Detail_ValueX{Choice: &aepb.AuditEvent_Entity_Detail_ValueX_StringValue{StringValue: s(kv[i+1])}}})
	}
	return out
}

func patientEntity() *aepb.AuditEvent_Entity {
	return &aepb.AuditEvent_Entity{
		What: fhir.PatientRef("p-42"),
		Type: coding(SystemEntityType, "1", "Person"),
		Role: coding(SystemObjectRole, "1", "Patient"),
	}
}

func check(t *testing.T, e audit.Event, want *aepb.AuditEvent) {
	t.Helper()
	got, err := ToAuditEvent(e, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("AuditEvent mismatch (-want +got):\n%s", diff)
	}
	dec := roundTrip(t, got)
	ae, ok := dec.(*aepb.AuditEvent)
	if !ok {
		t.Fatalf("decoded %T", dec)
	}
	if diff := cmp.Diff(want, ae, protocmp.Transform()); diff != "" {
		t.Errorf("AuditEvent after JSON round trip (-want +got):\n%s", diff)
	}
}

func TestDelivered(t *testing.T) {
	check(t, delivered(), &aepb.AuditEvent{
		Id:       &dtpb.Id{Value: "42"},
		Meta:     &dtpb.Meta{Profile: []*dtpb.Canonical{{Value: ProfilePatientCreate}}},
		Type:     coding(SystemAuditEventType, "rest", "Restful Operation"),
		Subtype:  []*dtpb.Coding{coding(SystemRestfulInteraction, "create", "create")},
		Action:   &aepb.AuditEvent_ActionCode{Value: codespb.AuditEventActionCode_C},
		Recorded: &dtpb.Instant{ValueUs: at.UnixMicro(), Timezone: "Z", Precision: dtpb.Instant_MICROSECOND},
		Outcome:  &aepb.AuditEvent_OutcomeCode{Value: codespb.AuditEventOutcomeCode_SUCCESS},
		Agent:    []*aepb.AuditEvent_Agent{clientAgent(), serverAgentWant()},
		Source:   source(),
		Entity: []*aepb.AuditEvent_Entity{
			{
				What: &dtpb.Reference{
					Type:       &dtpb.Uri{Value: "Observation"},
					Identifier: fhir.Identifier("urn:bridge:obs", "hrm-1-8867-4-20261125"),
					Reference:  &dtpb.Reference_ObservationId{ObservationId: &dtpb.ReferenceId{Value: "o-9", History: &dtpb.Id{Value: "1"}}},
				},
				Type:   coding(SystemEntityType, "2", "System Object"),
				Role:   coding(SystemObjectRole, "4", "Domain Resource"),
				Detail: correlation("vitals/2/17"),
			},
			patientEntity(),
		},
	})
}

func TestDeliveredWithoutPatientAbsoluteLocation(t *testing.T) {
	e := delivered()
	e.Patient, e.Route = "", "other"
	e.Location = "https://ehr2.example/r4/Observation/o-1/_history/3"
	got, err := ToAuditEvent(e, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.GetMeta().GetProfile()[0].GetValue(); p != ProfileCreate {
		t.Errorf("profile %s, want %s", p, ProfileCreate)
	}
	if n := len(got.GetEntity()); n != 1 {
		t.Errorf("%d entities, want only data", n)
	}
	if a := got.GetAgent()[1].GetNetwork().GetAddress().GetValue(); a != "https://ehr2.example/r4" {
		t.Errorf("server address %q", a)
	}
	roundTrip(t, got)
}

func TestRejected(t *testing.T) {
	e := delivered()
	e.Action, e.Outcome, e.Status, e.Location = audit.ActionRejected, audit.OutcomeFailure, 422, ""
	e.Detail = "HTTP 422: Observation.code: unknown code"
	e.Stage, e.Reason, e.Attempts = "deliver", "http-422", 2
	e.ReceivedAt = at.Add(-1500 * time.Millisecond)
	check(t, e, &aepb.AuditEvent{
		Period: &dtpb.Period{
			Start: &dtpb.DateTime{ValueUs: at.Add(-1500 * time.Millisecond).UnixMicro(), Timezone: "Z", Precision: dtpb.DateTime_MICROSECOND},
			End:   &dtpb.DateTime{ValueUs: at.UnixMicro(), Timezone: "Z", Precision: dtpb.DateTime_MICROSECOND},
		},
		Id:          &dtpb.Id{Value: "42"},
		Meta:        &dtpb.Meta{Profile: []*dtpb.Canonical{{Value: ProfilePatientCreate}}},
		Type:        coding(SystemAuditEventType, "rest", "Restful Operation"),
		Subtype:     []*dtpb.Coding{coding(SystemRestfulInteraction, "create", "create")},
		Action:      &aepb.AuditEvent_ActionCode{Value: codespb.AuditEventActionCode_C},
		Recorded:    &dtpb.Instant{ValueUs: at.UnixMicro(), Timezone: "Z", Precision: dtpb.Instant_MICROSECOND},
		Outcome:     &aepb.AuditEvent_OutcomeCode{Value: codespb.AuditEventOutcomeCode_SERIOUS_FAILURE},
		OutcomeDesc: s("HTTP 422: Observation.code: unknown code"),
		Agent:       []*aepb.AuditEvent_Agent{clientAgent(), serverAgentWant()},
		Source:      source(),
		Entity: []*aepb.AuditEvent_Entity{
			{
				What: &dtpb.Reference{Type: &dtpb.Uri{Value: "Observation"},
					Identifier: fhir.Identifier("urn:bridge:obs", "hrm-1-8867-4-20261125")},
				Type:   coding(SystemEntityType, "2", "System Object"),
				Role:   coding(SystemObjectRole, "4", "Domain Resource"),
				Detail: details("correlation-id", "vitals/2/17", "attempts", "2", "stage", "deliver", "reason", "http-422"),
			},
			patientEntity(),
		},
	})
}

func TestReplayed(t *testing.T) {
	e := audit.Event{
		ID: 7, Time: at, Action: audit.ActionReplayed, Outcome: audit.OutcomeSuccess, Actor: "oidc:alice",
		Route: "hr", Topic: "vitals.dlq", Partition: 0, Offset: 3, Device: "Device/hrm-1",
		Location: "vitals", Detail: "deliver: HTTP 422", CorrelationID: "vitals.dlq/0/3",
	}
	check(t, e, &aepb.AuditEvent{
		Id:       &dtpb.Id{Value: "7"},
		Type:     coding(SystemDICOM, "110100", "Application Activity"),
		Action:   &aepb.AuditEvent_ActionCode{Value: codespb.AuditEventActionCode_C},
		Recorded: &dtpb.Instant{ValueUs: at.UnixMicro(), Timezone: "Z", Precision: dtpb.Instant_MICROSECOND},
		Outcome:  &aepb.AuditEvent_OutcomeCode{Value: codespb.AuditEventOutcomeCode_SUCCESS},
		Agent: []*aepb.AuditEvent_Agent{clientAgent(), {
			Type:      fhir.Concept(coding(SystemParticipation, "AUT", "author (originator)")),
			Who:       &dtpb.Reference{Identifier: fhir.Identifier("https://idp.example", "alice"), Display: s("oidc:alice")},
			Name:      s("oidc:alice"),
			Requestor: &dtpb.Boolean{Value: true},
		}},
		Source: source(),
		Entity: []*aepb.AuditEvent_Entity{
			{
				What:   &dtpb.Reference{Identifier: fhir.Identifier(SystemKafkaPosition, "vitals.dlq/0/3")},
				Type:   coding(SystemEntityType, "2", "System Object"),
				Name:   s("source message"),
				Detail: correlation("vitals.dlq/0/3"),
			},
			{
				What: fhir.DeviceRef("hrm-1"),
				Type: coding(SystemEntityType, "2", "System Object"),
				Role: coding(SystemObjectRole, "4", "Domain Resource"),
			},
		},
	})
}

func TestEveryActionValidates(t *testing.T) {
	actions := []string{audit.ActionReceived, audit.ActionMapped, audit.ActionDelivered, audit.ActionRejected,
		audit.ActionDeadLettered, audit.ActionReplayed, audit.ActionSkipped, audit.ActionCorrected, audit.ActionRetracted, "api-access"}
	var events []audit.Event
	for i, a := range actions {
		for _, actor := range []string{audit.ActorSystem, "cli:bob", "oidc:sub-1", "anonymous"} {
			e := delivered()
			e.ID = int64(i + 1)
			e.Action, e.Actor = a, actor
			if a == audit.ActionRejected {
				e.Outcome, e.Status, e.Detail, e.Stage = audit.OutcomeFailure, 0, "field \"hr\": out of range", "map"
			}
			if a == audit.ActionSkipped {
				e.Patient, e.Resource, e.Device = "", "", "weird device id"
			}
			events = append(events, e)
			got, err := ToAuditEvent(e, opts)
			if err != nil {
				t.Fatalf("%s by %s: %v", a, actor, err)
			}
			roundTrip(t, got)
			user := len(got.GetAgent()) > 0 && got.GetAgent()[len(got.GetAgent())-1].GetRequestor().GetValue()
			if wantUser := strings.HasPrefix(actor, "cli:") || strings.HasPrefix(actor, "oidc:"); user != wantUser {
				t.Errorf("%s by %s: user agent %v, want %v", a, actor, user, wantUser)
			}
		}
	}
	e := delivered()
	e.Location, e.DestKind = "", "mllp"
	got, err := ToAuditEvent(e, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c := got.GetType().GetCode().GetValue(); c != "110106" || got.GetMeta() != nil {
		t.Errorf("MLLP delivery: type %s meta %v", c, got.GetMeta())
	}

	b, err := Bundle(events, opts)
	if err != nil {
		t.Fatal(err)
	}
	dec, ok := roundTrip(t, b).(*crpb.Bundle)
	if !ok {
		t.Fatal("bundle decoded to another type")
	}
	if dec.GetType().GetValue() != codespb.BundleTypeCode_SEARCHSET || dec.GetTotal().GetValue() != uint32(len(events)) ||
		len(dec.GetEntry()) != len(events) {
		t.Fatalf("bundle type %v total %d entries %d", dec.GetType().GetValue(), dec.GetTotal().GetValue(), len(dec.GetEntry()))
	}
	for i, en := range dec.GetEntry() {
		if en.GetSearch().GetMode().GetValue() != codespb.SearchEntryModeCode_MATCH || en.GetResource().GetAuditEvent() == nil {
			t.Errorf("entry %d: %v", i, en)
		}
	}
}

func TestRequiresBridgeID(t *testing.T) {
	if _, err := ToAuditEvent(delivered(), Options{}); err == nil {
		t.Fatal("no error without BridgeID")
	}
}

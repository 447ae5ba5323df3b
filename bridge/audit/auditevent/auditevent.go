// Package auditevent exports the audit trail as FHIR R4 AuditEvent resources
// following IHE Basic Audit Log Patterns (BALP); see standards.md section 6.
//
// Mapping of audit.Event to AuditEvent:
//
//	Event                        type                           subtype                 action  profile
//	delivered (FHIR)             audit-event-type#rest          restful-interaction#create  C   BALP PatientCreate (patient known) / Create
//	rejected at delivery         audit-event-type#rest          restful-interaction#create  C   BALP PatientCreate / Create (outcome 8)
//	delivered/rejected via MLLP  DCM#110106 Export              -                        C      -
//	received                     DCM#110100 Application Activity -                       E      -
//	mapped                       DCM#110100 Application Activity -                       E      -
//	rejected (before delivery)   DCM#110100 Application Activity -                       E      -
//	skipped                      DCM#110100 Application Activity -                       E      -
//	dead-lettered                DCM#110100 Application Activity -                       C      - (creates a dead-letter record)
//	replayed                     DCM#110100 Application Activity -                       C      - (re-creates the source message)
//	anything else (api access…)  DCM#110100 Application Activity -                       E      -
//
// A rejection counts as "at delivery" when its typed Stage is "deliver"; an
// MLLP delivery is one whose DestKind is "mllp". (Events written before those
// fields existed have them empty and export as application activity or REST.)
//
// Common to all: recorded = event time (UTC, µs); outcome 0 (success) or 8
// (serious failure) from Event.Outcome, outcomeDesc = Detail on failure;
// source.observer = the bridge (identifier Options.BridgeID), source.type
// security-source-type#4 (Application Server), source.site = Options.Site.
//
// Agents: the client (the bridge; DCM#110153 Source Role ID, who.identifier =
// BridgeID, requestor false, network = BridgeHost, type 1 machine name); on
// delivery events the server (DCM#110152 Destination Role ID, who.display and
// who.identifier = the destination base URL, network = the base, type 5 URI);
// and when Actor is "oidc:<sub>" or "cli:<user>" a user agent
// (v3-ParticipationType#AUT, who.identifier = the subject, requestor true).
//
// Entities: data (audit-entity-type#2, object-role#4, what.identifier = the
// Observation identifier "system|value" from Resource, what.type Observation,
// plus the literal reference when Location names Observation/<id>); patient
// (audit-entity-type#1, object-role#1, what = Reference(Patient)) when
// Patient is set. Non-REST events also carry the device (type 2, role 4) and
// the source message (type 2, what.identifier = urn:fhir-bridge:kafka
// "topic/partition/offset"). The correlation id goes into entity.detail
// "correlation-id" of the data (or message) entity, and so do the number of
// delivery attempts ("attempts") and the stage and reason of a refusal
// ("stage", "reason"). An outcome row's receive time makes period.start
// (the activity ran from receipt to the recorded outcome: period.end).
package auditevent

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/fhir-bridge/fhir-bridge/bridge/audit"
	"github.com/fhir-bridge/fhir-bridge/fhir"
	codespb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	aepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/audit_event_go_proto"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
)

// Code systems and profiles.
const (
	SystemAuditEventType     = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	SystemRestfulInteraction = "http://hl7.org/fhir/restful-interaction"
	SystemDICOM              = "http://dicom.nema.org/resources/ontology/DCM"
	SystemEntityType         = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	SystemObjectRole         = "http://terminology.hl7.org/CodeSystem/object-role"
	SystemSourceType         = "http://terminology.hl7.org/CodeSystem/security-source-type"
	SystemParticipation      = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	SystemURI                = "urn:ietf:rfc:3986"
	SystemKafkaPosition      = "urn:fhir-bridge:kafka"

	ProfileCreate        = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Create"
	ProfilePatientCreate = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientCreate"
)

// Options describe the bridge instance that writes the records.
type Options struct {
	// BridgeID identifies the bridge (client agent and source observer).
	// Required.
	BridgeID string
	// BridgeIDSystem is the identifier system of BridgeID; empty means none.
	BridgeIDSystem string
	// BridgeHost is the bridge's host name (client agent network, type 1).
	BridgeHost string
	// Site is source.site, e.g. the hospital or deployment name.
	Site string
	// Destinations maps a route name to its destination base URL (server
	// agent). Without an entry, an absolute Location's base is used.
	Destinations map[string]string
	// OIDCIssuer is the identifier system of OIDC subjects ("oidc:<sub>").
	OIDCIssuer string
	// Codec validates the output; nil uses a shared one.
	Codec *fhir.Codec
}

var sharedCodec = sync.OnceValues(fhir.NewCodec)

func (o Options) codec() (*fhir.Codec, error) {
	if o.Codec != nil {
		return o.Codec, nil
	}
	return sharedCodec()
}

// ToAuditEvent converts one audit event; see the package comment for the
// mapping. The result passes the codec's validation.
func ToAuditEvent(e audit.Event, o Options) (*aepb.AuditEvent, error) {
	if o.BridgeID == "" {
		return nil, fmt.Errorf("auditevent: Options.BridgeID is required")
	}
	ae := build(e, o)
	c, err := o.codec()
	if err != nil {
		return nil, err
	}
	// Encode rewrites references in place; validate a copy.
	if _, err := c.Encode(proto.Clone(ae)); err != nil {
		return nil, fmt.Errorf("auditevent: event %d: %w", e.ID, err)
	}
	return ae, nil
}

// Bundle converts events into a searchset Bundle (entries in order, search
// mode match, total = len(events)).
func Bundle(events []audit.Event, o Options) (*crpb.Bundle, error) {
	b := &crpb.Bundle{
		Type:  &crpb.Bundle_TypeCode{Value: codespb.BundleTypeCode_SEARCHSET},
		Total: &dtpb.UnsignedInt{Value: uint32(len(events))},
	}
	for _, e := range events {
		ae, err := ToAuditEvent(e, o)
		if err != nil {
			return nil, err
		}
		b.Entry = append(b.Entry, &crpb.Bundle_Entry{
			Resource: &crpb.ContainedResource{OneofResource: &crpb.ContainedResource_AuditEvent{AuditEvent: ae}},
			Search: &crpb.Bundle_Entry_Search{Mode: &crpb.Bundle_Entry_Search_ModeCode{
				Value: codespb.SearchEntryModeCode_MATCH}},
		})
	}
	c, err := o.codec()
	if err != nil {
		return nil, err
	}
	if _, err := c.Encode(proto.Clone(b)); err != nil {
		return nil, fmt.Errorf("auditevent: bundle: %w", err)
	}
	return b, nil
}

type kind int

const (
	kindRest   kind = iota // FHIR create (BALP)
	kindExport             // MLLP delivery
	kindApp                // application activity
)

func classify(e audit.Event) kind {
	switch e.Action {
	case audit.ActionDelivered, audit.ActionCorrected, audit.ActionRetracted:
	case audit.ActionRejected:
		if e.Stage != "deliver" {
			return kindApp
		}
	default:
		return kindApp
	}
	if e.DestKind == "mllp" {
		return kindExport
	}
	return kindRest
}

func str(s string) *dtpb.String { return &dtpb.String{Value: s} }

func build(e audit.Event, o Options) *aepb.AuditEvent {
	k := classify(e)
	ae := &aepb.AuditEvent{
		Recorded: &dtpb.Instant{ValueUs: e.Time.UnixMicro(), Timezone: "Z", Precision: dtpb.Instant_MICROSECOND},
		Outcome:  &aepb.AuditEvent_OutcomeCode{Value: codespb.AuditEventOutcomeCode_SUCCESS},
		Action:   &aepb.AuditEvent_ActionCode{Value: codespb.AuditEventActionCode_E},
	}
	if e.ID > 0 {
		ae.Id = &dtpb.Id{Value: strconv.FormatInt(e.ID, 10)}
	}
	if e.Outcome != audit.OutcomeSuccess {
		ae.Outcome.Value = codespb.AuditEventOutcomeCode_SERIOUS_FAILURE
		if e.Detail != "" {
			ae.OutcomeDesc = str(e.Detail)
		}
	}
	switch k {
	case kindRest:
		profile := ProfileCreate
		if e.Patient != "" {
			profile = ProfilePatientCreate
		}
		ae.Meta = &dtpb.Meta{Profile: []*dtpb.Canonical{fhir.Canonical(profile)}}
		ae.Type = fhir.Coding(SystemAuditEventType, "rest", "Restful Operation")
		ae.Subtype = []*dtpb.Coding{fhir.Coding(SystemRestfulInteraction, "create", "create")}
		ae.Action.Value = codespb.AuditEventActionCode_C
		if e.Action == audit.ActionCorrected || e.Action == audit.ActionRetracted {
			// A new version of the stored Observation (BALP has no
			// patient-update profile beyond the generic one).
			ae.Meta = nil
			ae.Subtype = []*dtpb.Coding{fhir.Coding(SystemRestfulInteraction, "update", "update")}
			ae.Action.Value = codespb.AuditEventActionCode_U
		}
	case kindExport:
		ae.Type = fhir.Coding(SystemDICOM, "110106", "Export")
		ae.Action.Value = codespb.AuditEventActionCode_C
	default:
		ae.Type = fhir.Coding(SystemDICOM, "110100", "Application Activity")
		if e.Action == audit.ActionDeadLettered || e.Action == audit.ActionReplayed {
			ae.Action.Value = codespb.AuditEventActionCode_C
		}
	}

	bridgeRef := &dtpb.Reference{Identifier: bridgeIdentifier(o), Display: str(o.BridgeID)}
	client := &aepb.AuditEvent_Agent{
		Type:      fhir.Concept(fhir.Coding(SystemDICOM, "110153", "Source Role ID")),
		Who:       bridgeRef,
		Requestor: &dtpb.Boolean{Value: false},
	}
	if o.BridgeHost != "" {
		client.Network = &aepb.AuditEvent_Agent_Network{Address: str(o.BridgeHost),
			Type: &aepb.AuditEvent_Agent_Network_TypeCode{Value: codespb.AuditEventAgentNetworkTypeCode_MACHINE_NAME}}
	}
	ae.Agent = append(ae.Agent, client)
	if k != kindApp {
		ae.Agent = append(ae.Agent, serverAgent(e, o))
	}
	if u := userAgent(e.Actor, o); u != nil {
		ae.Agent = append(ae.Agent, u)
	}
	ae.Source = &aepb.AuditEvent_Source{
		Observer: proto.Clone(bridgeRef).(*dtpb.Reference),
		Type:     []*dtpb.Coding{fhir.Coding(SystemSourceType, "4", "Application Server")},
	}
	if o.Site != "" {
		ae.Source.Site = str(o.Site)
	}

	var correlationOn *aepb.AuditEvent_Entity
	if k == kindApp {
		msg := &aepb.AuditEvent_Entity{
			What: &dtpb.Reference{Identifier: fhir.Identifier(SystemKafkaPosition,
				e.Topic+"/"+strconv.Itoa(e.Partition)+"/"+strconv.FormatInt(e.Offset, 10))},
			Type: fhir.Coding(SystemEntityType, "2", "System Object"),
			Name: str("source message"),
		}
		ae.Entity = append(ae.Entity, msg)
		correlationOn = msg
	}
	if e.Resource != "" || k == kindRest {
		data := &aepb.AuditEvent_Entity{
			What: observationRef(e),
			Type: fhir.Coding(SystemEntityType, "2", "System Object"),
			Role: fhir.Coding(SystemObjectRole, "4", "Domain Resource"),
		}
		ae.Entity = append(ae.Entity, data)
		if correlationOn == nil {
			correlationOn = data
		}
	}
	if e.Patient != "" {
		ae.Entity = append(ae.Entity, &aepb.AuditEvent_Entity{
			What: typedRef(e.Patient, "Patient", func(id string) *dtpb.Reference { return fhir.PatientRef(id) }),
			Type: fhir.Coding(SystemEntityType, "1", "Person"),
			Role: fhir.Coding(SystemObjectRole, "1", "Patient"),
		})
	}
	if e.Device != "" && k == kindApp {
		ae.Entity = append(ae.Entity, &aepb.AuditEvent_Entity{
			What: typedRef(e.Device, "Device", func(id string) *dtpb.Reference { return fhir.DeviceRef(id) }),
			Type: fhir.Coding(SystemEntityType, "2", "System Object"),
			Role: fhir.Coding(SystemObjectRole, "4", "Domain Resource"),
		})
	}
	if correlationOn != nil {
		detail := func(typ, value string) {
			if value != "" {
				correlationOn.Detail = append(correlationOn.Detail, &aepb.AuditEvent_Entity_Detail{
					Type: str(typ),
					Value: &aepb.AuditEvent_Entity_Detail_ValueX{Choice: &aepb.AuditEvent_Entity_Detail_ValueX_StringValue{
						StringValue: str(value)}},
				})
			}
		}
		detail("correlation-id", e.CorrelationID)
		if e.Attempts > 0 {
			detail("attempts", strconv.Itoa(e.Attempts))
		}
		if e.Outcome != audit.OutcomeSuccess {
			detail("stage", e.Stage)
			detail("reason", e.Reason)
		}
	}
	if !e.ReceivedAt.IsZero() && !e.ReceivedAt.After(e.Time) {
		ae.Period = &dtpb.Period{
			Start: &dtpb.DateTime{ValueUs: e.ReceivedAt.UnixMicro(), Timezone: "Z", Precision: dtpb.DateTime_MICROSECOND},
			End:   &dtpb.DateTime{ValueUs: e.Time.UnixMicro(), Timezone: "Z", Precision: dtpb.DateTime_MICROSECOND},
		}
	}
	return ae
}

func bridgeIdentifier(o Options) *dtpb.Identifier {
	id := &dtpb.Identifier{Value: str(o.BridgeID)}
	if o.BridgeIDSystem != "" {
		id.System = &dtpb.Uri{Value: o.BridgeIDSystem}
	}
	return id
}

// destinationBase returns the route's destination base URL, or the base of
// an absolute Location ("https://ehr/fhir/Observation/1/_history/1" gives
// "https://ehr/fhir").
func destinationBase(e audit.Event, o Options) string {
	if b := o.Destinations[e.Route]; b != "" {
		return b
	}
	if u, err := url.Parse(e.Location); err == nil && u.Scheme != "" && u.Host != "" {
		if i := strings.Index(u.Path, "/Observation/"); i >= 0 {
			u.Path = u.Path[:i]
		}
		u.RawQuery, u.Fragment = "", ""
		return u.String()
	}
	return ""
}

func serverAgent(e audit.Event, o Options) *aepb.AuditEvent_Agent {
	a := &aepb.AuditEvent_Agent{
		Type:      fhir.Concept(fhir.Coding(SystemDICOM, "110152", "Destination Role ID")),
		Requestor: &dtpb.Boolean{Value: false},
	}
	base := destinationBase(e, o)
	if base == "" {
		a.Who = &dtpb.Reference{Display: str("destination of route " + e.Route)}
		return a
	}
	a.Who = &dtpb.Reference{Identifier: fhir.Identifier(SystemURI, base), Display: str(base)}
	a.Network = &aepb.AuditEvent_Agent_Network{Address: str(base),
		Type: &aepb.AuditEvent_Agent_Network_TypeCode{Value: codespb.AuditEventAgentNetworkTypeCode_URI}}
	return a
}

// userAgent returns the agent for a person actor ("oidc:<sub>", "cli:<user>"),
// or nil for the system and anonymous callers.
func userAgent(actor string, o Options) *aepb.AuditEvent_Agent {
	var id *dtpb.Identifier
	if sub, ok := strings.CutPrefix(actor, "oidc:"); ok && sub != "" {
		id = &dtpb.Identifier{Value: str(sub)}
		if o.OIDCIssuer != "" {
			id.System = &dtpb.Uri{Value: o.OIDCIssuer}
		}
	} else if u, ok := strings.CutPrefix(actor, "cli:"); ok && u != "" {
		id = &dtpb.Identifier{Value: str(u)}
	} else {
		return nil
	}
	return &aepb.AuditEvent_Agent{
		Type:      fhir.Concept(fhir.Coding(SystemParticipation, "AUT", "author (originator)")),
		Who:       &dtpb.Reference{Identifier: id, Display: str(actor)},
		Name:      str(actor),
		Requestor: &dtpb.Boolean{Value: true},
	}
}

// observationRef references the Observation by identifier ("system|value")
// and, when Location names it, literally.
func observationRef(e audit.Event) *dtpb.Reference {
	r := &dtpb.Reference{Type: &dtpb.Uri{Value: "Observation"}}
	if e.Resource != "" {
		sys, val, ok := strings.Cut(e.Resource, "|")
		if !ok {
			sys, val = "", e.Resource
		}
		r.Identifier = &dtpb.Identifier{Value: str(val)}
		if sys != "" {
			r.Identifier.System = &dtpb.Uri{Value: sys}
		}
	}
	if e.Action == audit.ActionDelivered {
		if id, hist, ok := observationLocation(e.Location); ok {
			ref := &dtpb.ReferenceId{Value: id}
			if hist != "" {
				ref.History = &dtpb.Id{Value: hist}
			}
			r.Reference = &dtpb.Reference_ObservationId{ObservationId: ref}
		}
	}
	return r
}

// observationLocation parses "[base/]Observation/<id>[/_history/<v>]".
func observationLocation(loc string) (id, hist string, ok bool) {
	i := strings.LastIndex(loc, "Observation/")
	if i < 0 || (i > 0 && loc[i-1] != '/') {
		return "", "", false
	}
	parts := strings.Split(loc[i+len("Observation/"):], "/")
	switch {
	case len(parts) == 1 && validID(parts[0]):
		return parts[0], "", true
	case len(parts) == 3 && parts[1] == "_history" && validID(parts[0]) && validID(parts[2]):
		return parts[0], parts[2], true
	}
	return "", "", false
}

// validID checks the FHIR id rule [A-Za-z0-9\-\.]{1,64}.
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// typedRef makes "Type/<id>" a literal reference; anything else is kept as
// the reference's display.
func typedRef(s, typ string, literal func(string) *dtpb.Reference) *dtpb.Reference {
	if id, ok := strings.CutPrefix(s, typ+"/"); ok && validID(id) {
		return literal(id)
	}
	return &dtpb.Reference{Type: &dtpb.Uri{Value: typ}, Display: str(s)}
}

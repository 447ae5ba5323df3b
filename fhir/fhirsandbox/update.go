package fhirsandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/fhir-bridge/fhir-bridge/fhir"
	crpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// update handles PUT [type]/[id]: create or replace a resource with a
// client-assigned id (update-as-create, which servers such as HAPI allow).
// The body's id must equal the URL's.
func (s *Server) update(w http.ResponseWriter, r *http.Request, resourceType, id string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeOutcome(w, http.StatusRequestEntityTooLarge, "too-long", "", "body too large or unreadable")
		return
	}
	msg, err := s.codec.Decode(body)
	if err != nil {
		writeOutcome(w, http.StatusBadRequest, "invalid", "", "invalid resource")
		return
	}
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	_ = json.Unmarshal(body, &head)
	cr, ok := msg.(*crpb.ContainedResource)
	if !ok || head.ResourceType != resourceType || head.ID != id {
		writeOutcome(w, http.StatusBadRequest, "invalid", "id", "body type and id must match the URL")
		return
	}
	var identifiers []string
	if obs := cr.GetObservation(); obs != nil {
		if issues := fhir.CheckVitalSigns(obs); len(issues) > 0 {
			writeOO(w, http.StatusBadRequest, issuesOO(issues))
			return
		}
		for _, ident := range obs.GetIdentifier() {
			identifiers = append(identifiers, ident.GetSystem().GetValue()+"|"+ident.GetValue().GetValue())
		}
	}
	key := resourceType + "/" + id
	s.mu.Lock()
	_, existed := s.byID[key]
	if m := r.Header.Get("If-Match"); m != "" && m != `W/"`+strconv.Itoa(s.version[key])+`"` {
		s.mu.Unlock()
		writeOutcome(w, http.StatusPreconditionFailed, "conflict", "", "If-Match "+m+" is not the current version")
		return
	}
	s.byID[key] = body
	s.version[key]++
	v := s.version[key]
	if !existed {
		s.order = append(s.order, key)
	}
	for _, ident := range identifiers {
		s.byIdent[resourceType+"|"+ident] = key
	}
	s.stats.Updates++
	s.mu.Unlock()
	w.Header().Set("Location", "/"+key+"/_history/"+strconv.Itoa(v))
	w.Header().Set("ETag", `W/"`+strconv.Itoa(v)+`"`)
	if existed {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

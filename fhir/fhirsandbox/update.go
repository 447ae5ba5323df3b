package fhirsandbox

import (
	"encoding/json"
	"io"
	"net/http"

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
	if _, ok := msg.(*crpb.ContainedResource); !ok || head.ResourceType != resourceType || head.ID != id {
		writeOutcome(w, http.StatusBadRequest, "invalid", "id", "body type and id must match the URL")
		return
	}
	key := resourceType + "/" + id
	s.mu.Lock()
	_, existed := s.byID[key]
	s.byID[key] = body
	if !existed {
		s.order = append(s.order, key)
	}
	s.stats.Updates++
	s.mu.Unlock()
	w.Header().Set("Location", "/"+key+"/_history/1")
	if existed {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

package simulator

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// secretPrefix starts every Standard Webhooks secret; the base64 key follows it.
const secretPrefix = "whsec_"

// CreateEndpointRequest is the body of POST /v1/callback_endpoints.
type CreateEndpointRequest struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"` // empty makes the simulator generate one
}

// Endpoint is a callback endpoint as POST /v1/callback_endpoints returns it.
type Endpoint struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"` // empty in listings
}

// endpointRecord is a stored callback endpoint.
type endpointRecord struct {
	Endpoint
	key     string // Idempotency-Key of the create
	request CreateEndpointRequest
	signer  *standardwebhooks.Webhook
}

// validateEndpointRequest returns the error message for an invalid create, or "".
func validateEndpointRequest(req CreateEndpointRequest) string {
	parsed, err := url.Parse(req.URL)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return fmt.Sprintf("invalid url %q: must be an absolute http or https URL", req.URL)
	}
	if req.Secret == "" {
		return ""
	}
	if !strings.HasPrefix(req.Secret, secretPrefix) {
		return fmt.Sprintf("invalid secret: must start with %q followed by a base64 key", secretPrefix)
	}
	if _, err := standardwebhooks.NewWebhook(req.Secret); err != nil {
		return fmt.Sprintf("invalid secret: the part after %q must be a non-empty standard base64 key", secretPrefix)
	}
	return ""
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) {
	key, ok := readIdempotencyKey(w, r)
	if !ok {
		return
	}
	var req CreateEndpointRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if message := validateEndpointRequest(req); message != "" {
		writeError(w, http.StatusBadRequest, ErrorInvalidRequest, message)
		return
	}

	endpoint, replayed, apiErr := s.storeEndpoint(key, req)
	switch {
	case apiErr != nil:
		apiErr.write(w)
	case replayed:
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, http.StatusOK, endpoint)
	default:
		writeJSON(w, http.StatusOK, endpoint)
	}
}

// storeEndpoint creates a callback endpoint, or returns the existing endpoint created
// with the same key and replayed set. Another create with the same key and another url
// or secret is an idempotency_error.
func (s *Server) storeEndpoint(key string, req CreateEndpointRequest) (Endpoint, bool, *apiError) {
	secret := req.Secret
	if secret == "" {
		secret = newSecret()
	}
	signer, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		// validateEndpointRequest accepted the secret, or newSecret made it.
		return Endpoint{}, false, &apiError{http.StatusInternalServerError, ErrorAPI,
			fmt.Sprintf("failed to load the endpoint secret: %v", err)}
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	if earlier := s.endpointsByKey[key]; earlier != nil {
		if earlier.request != req {
			return Endpoint{}, false, &apiError{http.StatusConflict, ErrorIdempotency, fmt.Sprintf(
				"Idempotency-Key %q was already used for endpoint %s with a different url or secret; use a new key for a new endpoint",
				key, earlier.ID)}
		}
		return earlier.Endpoint, true, nil
	}

	record := &endpointRecord{
		Endpoint: Endpoint{ID: newID("we_"), URL: req.URL, Secret: secret},
		key:      key,
		request:  req,
		signer:   signer,
	}
	s.endpoints[record.ID] = record
	s.endpointOrder = append(s.endpointOrder, record)
	s.endpointsByKey[key] = record
	return record.Endpoint, false, nil
}

func (s *Server) listEndpoints(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	endpoints := make([]Endpoint, 0, len(s.endpointOrder))
	for _, record := range s.endpointOrder {
		endpoints = append(endpoints, Endpoint{ID: record.ID, URL: record.URL})
	}
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, listBody[Endpoint]{Data: endpoints})
}

// deleteEndpoint removes an endpoint together with its idempotency key, so pending
// callbacks to it are dropped and the key can create a new endpoint.
func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")

	s.mu.Lock()
	record := s.endpoints[id]
	if record != nil {
		delete(s.endpoints, id)
		delete(s.endpointsByKey, record.key)
		s.endpointOrder = slices.DeleteFunc(s.endpointOrder, func(e *endpointRecord) bool { return e == record })
	}
	s.mu.Unlock()

	if record == nil {
		writeError(w, http.StatusNotFound, ErrorNotFound, fmt.Sprintf("no callback endpoint with id %q", id))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ID      string `json:"id"`
		Deleted bool   `json:"deleted"`
	}{ID: id, Deleted: true})
}

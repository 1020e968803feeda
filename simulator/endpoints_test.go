package simulator_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/payment-operator/payment-operator/simulator"
)

// givenSecret is a valid secret chosen by the client: "whsec_" and 24 bytes in base64.
var givenSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef01234567"))

func TestCreateEndpointGeneratesSecret(t *testing.T) {
	sim := startSimulator(t, testConfig())

	endpoint := sim.createEndpoint(t, "http://127.0.0.1:9/callbacks")

	if !strings.HasPrefix(endpoint.ID, "we_") {
		t.Errorf("id = %q, want the prefix we_", endpoint.ID)
	}
	encodedKey, hasPrefix := strings.CutPrefix(endpoint.Secret, "whsec_")
	if !hasPrefix {
		t.Fatalf("secret does not start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(encodedKey)
	if err != nil {
		t.Fatalf("secret key is not standard base64: %v", err)
	}
	if len(key) != 24 {
		t.Errorf("secret key has %d bytes, want 24", len(key))
	}
}

func TestCreateEndpointIdempotency(t *testing.T) {
	tests := []struct {
		name         string
		reason       string
		first        simulator.CreateEndpointRequest
		second       simulator.CreateEndpointRequest
		wantStatus   int
		wantReplayed bool
	}{
		{
			name:         "generated secret",
			reason:       "a retried create must return the same endpoint and the same generated secret",
			first:        simulator.CreateEndpointRequest{URL: "http://127.0.0.1:9/a"},
			second:       simulator.CreateEndpointRequest{URL: "http://127.0.0.1:9/a"},
			wantStatus:   http.StatusOK,
			wantReplayed: true,
		},
		{
			name:         "given secret",
			reason:       "a retried create with the same secret returns the same endpoint",
			first:        simulator.CreateEndpointRequest{URL: "http://127.0.0.1:9/b", Secret: givenSecret},
			second:       simulator.CreateEndpointRequest{URL: "http://127.0.0.1:9/b", Secret: givenSecret},
			wantStatus:   http.StatusOK,
			wantReplayed: true,
		},
		{
			name:       "other url",
			reason:     "the same key cannot register another URL",
			first:      simulator.CreateEndpointRequest{URL: "http://127.0.0.1:9/c"},
			second:     simulator.CreateEndpointRequest{URL: "http://127.0.0.1:9/other"},
			wantStatus: http.StatusConflict,
		},
		{
			name:       "other secret",
			reason:     "the same key cannot set another secret",
			first:      simulator.CreateEndpointRequest{URL: "http://127.0.0.1:9/d"},
			second:     simulator.CreateEndpointRequest{URL: "http://127.0.0.1:9/d", Secret: givenSecret},
			wantStatus: http.StatusConflict,
		},
	}

	sim := startSimulator(t, testConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := keyHeader("endpoint-" + tt.name)
			firstResp := sim.send(t, http.MethodPost, "/v1/callback_endpoints", key, tt.first)
			if firstResp.status != http.StatusOK {
				t.Fatalf("first create status = %d; body %s", firstResp.status, firstResp.body)
			}
			first := decode[simulator.Endpoint](t, firstResp)
			if tt.first.Secret != "" && first.Secret != tt.first.Secret {
				t.Errorf("secret = %q, want the given secret", first.Secret)
			}

			resp := sim.send(t, http.MethodPost, "/v1/callback_endpoints", key, tt.second)

			if resp.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s); body %s", resp.status, tt.wantStatus, tt.reason, resp.body)
			}
			if got := resp.header.Get("Idempotent-Replayed") == "true"; got != tt.wantReplayed {
				t.Errorf("replayed = %v, want %v (%s)", got, tt.wantReplayed, tt.reason)
			}
			if tt.wantStatus != http.StatusOK {
				if got := errorType(resp); got != simulator.ErrorIdempotency {
					t.Errorf("error type = %q, want %q (%s)", got, simulator.ErrorIdempotency, tt.reason)
				}
				return
			}
			if diff := cmp.Diff(first, decode[simulator.Endpoint](t, resp)); diff != "" {
				t.Errorf("replayed endpoint mismatch (-first +second) (%s):\n%s", tt.reason, diff)
			}
		})
	}
}

func TestCreateEndpointRejected(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		key    string
		body   string
	}{
		{"missing key", "Idempotency-Key is required on creates", "", `{"url":"http://127.0.0.1:9/"}`},
		{"missing url", "an endpoint needs a URL", "k", `{}`},
		{"relative url", "callbacks need an absolute URL", "k", `{"url":"/callbacks"}`},
		{"ftp url", "callbacks are sent over HTTP", "k", `{"url":"ftp://127.0.0.1/callbacks"}`},
		{"url without host", "callbacks need a host", "k", `{"url":"http:///callbacks"}`},
		{"secret without prefix", "secrets start with whsec_", "k", `{"url":"http://127.0.0.1:9/","secret":"c2VjcmV0"}`},
		{"secret not base64", "the key after whsec_ is base64", "k", `{"url":"http://127.0.0.1:9/","secret":"whsec_not base64!"}`},
		{"secret empty key", "the key after whsec_ must not be empty", "k", `{"url":"http://127.0.0.1:9/","secret":"whsec_"}`},
		{"unknown field", "unknown fields are likely typos", "k", `{"url":"http://127.0.0.1:9/","events":["payment.succeeded"]}`},
	}

	sim := startSimulator(t, testConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.key != "" {
				header.Set("Idempotency-Key", tt.key)
			}

			resp := sim.send(t, http.MethodPost, "/v1/callback_endpoints", header, tt.body)

			if resp.status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400 (%s); body %s", resp.status, tt.reason, resp.body)
			}
			if got := errorType(resp); got != simulator.ErrorInvalidRequest {
				t.Errorf("error type = %q, want %q (%s)", got, simulator.ErrorInvalidRequest, tt.reason)
			}
		})
	}
}

func TestListEndpointsWithoutSecrets(t *testing.T) {
	sim := startSimulator(t, testConfig())
	first := sim.createEndpoint(t, "http://127.0.0.1:9/first")
	second := sim.createEndpoint(t, "http://127.0.0.1:9/second")

	resp := sim.send(t, http.MethodGet, "/v1/callback_endpoints", nil, nil)

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.status)
	}
	if strings.Contains(string(resp.body), "secret") {
		t.Errorf("listing %s contains secrets", resp.body)
	}
	want := []simulator.Endpoint{{ID: first.ID, URL: first.URL}, {ID: second.ID, URL: second.URL}}
	if diff := cmp.Diff(want, decode[struct{ Data []simulator.Endpoint }](t, resp).Data); diff != "" {
		t.Errorf("listing mismatch (-want +got):\n%s", diff)
	}
}

func TestDeleteEndpoint(t *testing.T) {
	sim := startSimulator(t, testConfig())
	endpoint := sim.createEndpoint(t, "http://127.0.0.1:9/deleted")

	resp := sim.send(t, http.MethodDelete, "/v1/callback_endpoints/"+endpoint.ID, nil, nil)

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", resp.status, resp.body)
	}
	listed := decode[struct{ Data []simulator.Endpoint }](t, sim.send(t, http.MethodGet, "/v1/callback_endpoints", nil, nil))
	if len(listed.Data) != 0 {
		t.Errorf("listing after delete has %d endpoints, want 0", len(listed.Data))
	}
	again := sim.send(t, http.MethodDelete, "/v1/callback_endpoints/"+endpoint.ID, nil, nil)
	if again.status != http.StatusNotFound {
		t.Errorf("second delete status = %d, want 404", again.status)
	}
	if got := errorType(again); got != simulator.ErrorNotFound {
		t.Errorf("second delete error type = %q, want %q", got, simulator.ErrorNotFound)
	}
}

func TestDeletedEndpointKeyCreatesNew(t *testing.T) {
	sim := startSimulator(t, testConfig())
	first := sim.createEndpoint(t, "http://127.0.0.1:9/reused")
	sim.send(t, http.MethodDelete, "/v1/callback_endpoints/"+first.ID, nil, nil)

	second := sim.createEndpoint(t, "http://127.0.0.1:9/reused")

	if second.ID == first.ID {
		t.Errorf("create after delete answered the deleted endpoint %s, want a new one", first.ID)
	}
}

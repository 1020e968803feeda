package simulator_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/payment-operator/payment-operator/simulator"
)

func TestFailRequestsAll(t *testing.T) {
	cfg := testConfig()
	cfg.FailRequests = 1
	sim := startSimulator(t, cfg)
	requests := []struct {
		method string
		path   string
		body   any
	}{
		{http.MethodPost, "/v1/payments", paymentRequest("pm_success")},
		{http.MethodGet, "/v1/account", nil},
		{http.MethodGet, "/v1/payments?idempotency_key=k", nil},
		{http.MethodPost, "/v1/callback_endpoints", simulator.CreateEndpointRequest{URL: "http://127.0.0.1:9/"}},
	}

	for _, r := range requests {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			resp := sim.send(t, r.method, r.path, keyHeader("failed"), r.body)

			if resp.status != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503 for every API request at share 1", resp.status)
			}
			if got := errorType(resp); got != simulator.ErrorAPI {
				t.Errorf("error type = %q, want %q", got, simulator.ErrorAPI)
			}
		})
	}

	if got := sim.Payments(); len(got) != 0 {
		t.Errorf("failed creates stored %d payments, want 0", len(got))
	}
	if got := sim.Stats().RequestsFailed; got != int64(len(requests)) {
		t.Errorf("requests_failed = %d, want %d", got, len(requests))
	}
}

func TestFailRequestsBeforeAuthentication(t *testing.T) {
	cfg := testConfig()
	cfg.FailRequests = 1
	sim := startSimulator(t, cfg)

	resp := sim.send(t, http.MethodGet, "/v1/account", http.Header{"Authorization": {"Bearer wrong"}}, nil)

	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503 because failures are injected before anything else", resp.status)
	}
}

func TestFailRequestsShare(t *testing.T) {
	const creates = 40
	cfg := testConfig()
	cfg.FailRequests = 0.5
	cfg.Seed = 42
	sim := startSimulator(t, cfg)

	succeeded := map[string]bool{}
	failed := 0
	for i := range creates {
		key := "share-" + strconv.Itoa(i)
		resp := sim.send(t, http.MethodPost, "/v1/payments", keyHeader(key), paymentRequest("pm_success"))
		switch resp.status {
		case http.StatusOK:
			succeeded[key] = true
		case http.StatusServiceUnavailable:
			failed++
		default:
			t.Fatalf("create %s: status %d, want 200 or 503; body %s", key, resp.status, resp.body)
		}
	}

	if failed == 0 || failed == creates {
		t.Errorf("%d of %d creates failed, want some but not all at share 0.5", failed, creates)
	}
	payments := sim.Payments()
	if len(payments) != len(succeeded) {
		t.Errorf("stored %d payments, want %d, one per successful create", len(payments), len(succeeded))
	}
	for _, p := range payments {
		if !succeeded[p.IdempotencyKey] {
			t.Errorf("payment %s has key %s, whose create failed", p.ID, p.IdempotencyKey)
		}
	}
}

func TestOutage(t *testing.T) {
	sim := startSimulator(t, testConfig())

	resp := sim.send(t, http.MethodPost, "/_simulator/outage?duration=300ms", nil, nil)
	if resp.status != http.StatusOK {
		t.Fatalf("starting the outage: status %d; body %s", resp.status, resp.body)
	}
	during := sim.send(t, http.MethodGet, "/v1/account", nil, nil)
	if during.status != http.StatusServiceUnavailable {
		t.Errorf("status during the outage = %d, want 503", during.status)
	}
	if got := errorType(during); got != simulator.ErrorAPI {
		t.Errorf("error type during the outage = %q, want %q", got, simulator.ErrorAPI)
	}
	if got := during.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1, the rounded-up seconds left", got)
	}
	if got := sim.send(t, http.MethodGet, "/_simulator/stats", nil, nil); got.status != http.StatusOK {
		t.Errorf("inspection status during the outage = %d, want 200 because outages cover /v1/ only", got.status)
	}

	time.Sleep(400 * time.Millisecond)
	if after := sim.send(t, http.MethodGet, "/v1/account", nil, nil); after.status != http.StatusOK {
		t.Errorf("status after the outage = %d, want 200", after.status)
	}
}

func TestOutageEndedEarly(t *testing.T) {
	sim := startSimulator(t, testConfig())
	sim.send(t, http.MethodPost, "/_simulator/outage?duration=1h", nil, nil)

	sim.send(t, http.MethodPost, "/_simulator/outage?duration=0s", nil, nil)

	if resp := sim.send(t, http.MethodGet, "/v1/account", nil, nil); resp.status != http.StatusOK {
		t.Errorf("status = %d, want 200 because duration 0 ends the outage", resp.status)
	}
}

func TestOutageRejected(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		query  string
	}{
		{"missing duration", "an outage needs a length", ""},
		{"not a duration", "durations use Go syntax such as 60s", "?duration=60"},
		{"negative duration", "a length cannot be negative", "?duration=-1s"},
	}

	sim := startSimulator(t, testConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := sim.send(t, http.MethodPost, "/_simulator/outage"+tt.query, nil, nil)

			if resp.status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400 (%s)", resp.status, tt.reason)
			}
			if got := errorType(resp); got != simulator.ErrorInvalidRequest {
				t.Errorf("error type = %q, want %q (%s)", got, simulator.ErrorInvalidRequest, tt.reason)
			}
		})
	}
}

func TestAPILatency(t *testing.T) {
	cfg := testConfig()
	cfg.APILatency = 200 * time.Millisecond
	sim := startSimulator(t, cfg)

	start := time.Now()
	resp := sim.send(t, http.MethodGet, "/v1/account", nil, nil)
	elapsed := time.Since(start)

	if resp.status != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.status)
	}
	if elapsed < cfg.APILatency {
		t.Errorf("request took %v, want at least the API latency %v", elapsed, cfg.APILatency)
	}
	inspectStart := time.Now()
	sim.send(t, http.MethodGet, "/_simulator/stats", nil, nil)
	if elapsed := time.Since(inspectStart); elapsed >= cfg.APILatency {
		t.Errorf("inspection took %v, want no API latency outside /v1/", elapsed)
	}
}

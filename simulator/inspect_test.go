package simulator_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/payment-operator/payment-operator/simulator"
)

func TestSimulatorPaymentsEmpty(t *testing.T) {
	sim := startSimulator(t, testConfig())

	resp := sim.send(t, http.MethodGet, "/_simulator/payments", http.Header{"Authorization": nil}, nil)

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 without an API key", resp.status)
	}
	if got := string(resp.body); got != "{\"data\":[]}\n" {
		t.Errorf("body = %q, want an empty list, not null", got)
	}
}

func TestSimulatorPaymentsListing(t *testing.T) {
	sim := startSimulator(t, testConfig())
	var want []simulator.Payment
	for i := range 5 {
		want = append(want, sim.createPayment(t, "listing-"+strconv.Itoa(i), paymentRequest("pm_requires_action")))
	}
	for i := range want {
		want[i] = sim.waitForStatus(t, want[i].ID, simulator.StatusRequiresAction)
	}
	// A replay must not add a payment.
	sim.createPayment(t, "listing-0", paymentRequest("pm_requires_action"))

	resp := sim.send(t, http.MethodGet, "/_simulator/payments", http.Header{"Authorization": nil}, nil)

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.status)
	}
	got := decode[struct{ Data []simulator.Payment }](t, resp).Data
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listing mismatch, want every payment in creation order with its key (-want +got):\n%s", diff)
	}
}

func TestStats(t *testing.T) {
	cfg := testConfig()
	cfg.ProcessingDelay = time.Hour
	sim := startSimulator(t, cfg)
	receiver := startReceiver(t, nil)
	sim.createEndpoint(t, receiver.url)

	sim.createPayment(t, "stats-1", paymentRequest("pm_success"))
	sim.createPayment(t, "stats-1", paymentRequest("pm_success"))
	sim.send(t, http.MethodPost, "/v1/payments", keyHeader("stats-2"), `{"amount":0}`)
	sim.send(t, http.MethodGet, "/v1/account", http.Header{"Authorization": {"Bearer wrong"}}, nil)
	receiver.waitForCount(t, 1)
	waitFor(t, "the acknowledgement to be counted", func() bool { return sim.Stats().CallbacksAcknowledged == 1 })

	resp := sim.send(t, http.MethodGet, "/_simulator/stats", http.Header{"Authorization": nil}, nil)

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 without an API key", resp.status)
	}
	want := simulator.Stats{
		APIRequests:           5, // endpoint, three creates, account
		PaymentCreates:        3, // two with the same key and one rejected
		Events:                1,
		CallbacksSent:         1,
		CallbacksAcknowledged: 1,
	}
	if diff := cmp.Diff(want, decode[simulator.Stats](t, resp)); diff != "" {
		t.Errorf("stats mismatch (-want +got):\n%s", diff)
	}
}

func TestLatencySwitch(t *testing.T) {
	sim := simulator.New(simulator.DefaultConfig())
	server := httptest.NewServer(sim.Handler())
	defer server.Close()
	defer sim.Close()

	resp, err := http.Post(server.URL+"/_simulator/latency?duration=300ms", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /_simulator/latency answered %d, want 200", resp.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodGet, server.URL+"/v1/account", nil)
	req.Header.Set("Authorization", "Bearer "+simulator.DefaultAPIKey)
	started := time.Now()
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(started); took < 300*time.Millisecond {
		t.Errorf("GET /v1/account took %s, want at least the 300ms latency", took)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/account answered %d, want 200", resp.StatusCode)
	}
}

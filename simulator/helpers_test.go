package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payment-operator/payment-operator/simulator"
)

const (
	testAPIKey = "sk_test_unit"
	// testDelay is the processing delay of most tests: long enough to see processing,
	// short enough to keep the tests fast.
	testDelay = 50 * time.Millisecond
	// waitTimeout bounds every wait for an asynchronous result.
	waitTimeout = 5 * time.Second
)

// testConfig returns a config with short delays and retries for tests.
func testConfig() simulator.Config {
	return simulator.Config{
		APIKey:          testAPIKey,
		ProcessingDelay: testDelay,
		SlowDelay:       time.Second,
		RetryInitial:    10 * time.Millisecond,
		RetryMax:        40 * time.Millisecond,
		RetryFor:        time.Minute,
		Seed:            1,
	}
}

// testSimulator is a simulator served over HTTP on loopback, with Run running.
type testSimulator struct {
	*simulator.Server
	url string
}

// startSimulator serves a new simulator and runs its background work until the test
// ends.
func startSimulator(t *testing.T, cfg simulator.Config) *testSimulator {
	t.Helper()
	server := simulator.New(cfg)
	httpServer := httptest.NewServer(server.Handler())

	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- server.Run(ctx) }()

	t.Cleanup(func() {
		server.Close()
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run returned %v", err)
		}
		httpServer.Close()
	})
	return &testSimulator{Server: server, url: httpServer.URL}
}

// response is an HTTP response with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decode decodes the body into a value of type T and fails the test on error.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %T from %q: %v", v, r.body, err)
	}
	return v
}

// errorType returns the error type of an error response, or "" for any other body.
func errorType(r response) string {
	var body simulator.ErrorBody
	_ = json.Unmarshal(r.body, &body)
	return body.Error.Type
}

// send makes a request with the test API key unless header sets Authorization. A
// string body is sent as is and any other non-nil body as JSON.
func (s *testSimulator) send(t *testing.T, method, path string, header http.Header, body any) response {
	t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = bytes.NewReader([]byte(b))
	case []byte:
		reader = bytes.NewReader(b)
	default:
		encoded, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encoding request body: %v", err)
		}
		reader = bytes.NewReader(encoded)
	}

	req, err := http.NewRequest(method, s.url+path, reader)
	if err != nil {
		t.Fatalf("building request %s %s: %v", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	for name, values := range header {
		req.Header[name] = values
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer of %s %s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func keyHeader(key string) http.Header {
	return http.Header{"Idempotency-Key": {key}}
}

// createPayment creates a payment and fails the test unless the status is 200.
func (s *testSimulator) createPayment(t *testing.T, key string, req simulator.CreatePaymentRequest) simulator.Payment {
	t.Helper()
	resp := s.send(t, http.MethodPost, "/v1/payments", keyHeader(key), req)
	if resp.status != http.StatusOK {
		t.Fatalf("creating payment with key %q: status %d, body %s", key, resp.status, resp.body)
	}
	return decode[simulator.Payment](t, resp)
}

func (s *testSimulator) getPayment(t *testing.T, id string) simulator.Payment {
	t.Helper()
	resp := s.send(t, http.MethodGet, "/v1/payments/"+id, nil, nil)
	if resp.status != http.StatusOK {
		t.Fatalf("getting payment %s: status %d, body %s", id, resp.status, resp.body)
	}
	return decode[simulator.Payment](t, resp)
}

// waitForStatus polls a payment until it has status and returns it.
func (s *testSimulator) waitForStatus(t *testing.T, id, status string) simulator.Payment {
	t.Helper()
	var payment simulator.Payment
	waitFor(t, fmt.Sprintf("payment %s to be %s", id, status), func() bool {
		payment = s.getPayment(t, id)
		return payment.Status == status
	})
	return payment
}

// createEndpoint registers url with a generated secret and returns the endpoint.
func (s *testSimulator) createEndpoint(t *testing.T, url string) simulator.Endpoint {
	t.Helper()
	resp := s.send(t, http.MethodPost, "/v1/callback_endpoints", keyHeader("endpoint-"+url),
		simulator.CreateEndpointRequest{URL: url})
	if resp.status != http.StatusOK {
		t.Fatalf("creating callback endpoint %s: status %d, body %s", url, resp.status, resp.body)
	}
	return decode[simulator.Endpoint](t, resp)
}

// paymentRequest returns a valid create request with token as payment method.
func paymentRequest(token string) simulator.CreatePaymentRequest {
	return simulator.CreatePaymentRequest{
		Amount:        1999,
		Currency:      "USD",
		PaymentMethod: token,
		Description:   "Order 1042",
		Metadata:      map[string]string{"namespace": "default", "name": "order-1042"},
	}
}

// waitFor polls condition every 5ms until it holds, and fails the test after
// waitTimeout.
func waitFor(t *testing.T, what string, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// callback is one request received by a callbackReceiver.
type callback struct {
	header   http.Header
	body     []byte
	event    simulator.Event
	received time.Time
}

// callbackReceiver is a callback endpoint on loopback that records every request.
type callbackReceiver struct {
	url string
	// status returns the response status for the n-th request (from 1) with an event
	// id. Nil means 200 for every request.
	status func(eventID string, n int) int

	mu        sync.Mutex
	callbacks []callback
	perEvent  map[string]int
	total     atomic.Int64
}

func startReceiver(t *testing.T, status func(eventID string, n int) int) *callbackReceiver {
	t.Helper()
	receiver := &callbackReceiver{status: status, perEvent: map[string]int{}}
	server := httptest.NewServer(http.HandlerFunc(receiver.serveHTTP))
	t.Cleanup(server.Close)
	receiver.url = server.URL + "/callbacks"
	return receiver
}

func (r *callbackReceiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var event simulator.Event
	_ = json.Unmarshal(body, &event)

	r.mu.Lock()
	r.callbacks = append(r.callbacks, callback{header: req.Header.Clone(), body: body, event: event, received: time.Now()})
	r.perEvent[event.ID]++
	n := r.perEvent[event.ID]
	r.mu.Unlock()
	r.total.Add(1)

	status := http.StatusOK
	if r.status != nil {
		status = r.status(event.ID, n)
	}
	w.WriteHeader(status)
}

// received returns a copy of the callbacks so far.
func (r *callbackReceiver) received() []callback {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]callback(nil), r.callbacks...)
}

// waitForCount waits until the receiver has at least n callbacks and returns them.
func (r *callbackReceiver) waitForCount(t *testing.T, n int) []callback {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d callbacks", n), func() bool { return r.total.Load() >= int64(n) })
	return r.received()
}

// verifySignature checks a callback's Standard Webhooks headers against secret.
func verifySignature(t *testing.T, secret string, c callback) {
	t.Helper()
	webhook, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("loading secret: %v", err)
	}
	if err := webhook.Verify(c.body, c.header); err != nil {
		t.Errorf("callback %s: signature does not verify: %v", c.event.ID, err)
	}
}

// eventTypes returns the event types of callbacks in the order received.
func eventTypes(callbacks []callback) []string {
	types := make([]string, 0, len(callbacks))
	for _, c := range callbacks {
		types = append(types, c.event.Type)
	}
	return types
}

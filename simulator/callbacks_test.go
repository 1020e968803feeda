package simulator_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/payment-operator/payment-operator/simulator"
)

func TestCallbackEvents(t *testing.T) {
	tests := []struct {
		name      string
		reason    string
		token     string
		cancel    bool
		wantTypes []string
	}{
		{"success", "a payment reports processing, then its outcome", "pm_success", false,
			[]string{"payment.processing", "payment.succeeded"}},
		{"decline", "a declined payment reports failed", "pm_decline_expired_card", false,
			[]string{"payment.processing", "payment.failed"}},
		{"requires action", "a payment waiting for the customer reports requires_action", "pm_requires_action", false,
			[]string{"payment.processing", "payment.requires_action"}},
		{"canceled", "a cancel reports canceled, and no outcome follows", "pm_success", true,
			[]string{"payment.processing", "payment.canceled"}},
	}

	// The processing delay leaves ample time to cancel before the outcome, even on a
	// loaded machine.
	cfg := testConfig()
	cfg.ProcessingDelay = 200 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := startSimulator(t, cfg)
			receiver := startReceiver(t, nil)
			endpoint := sim.createEndpoint(t, receiver.url)

			created := sim.createPayment(t, "events-"+tt.name, paymentRequest(tt.token))
			if tt.cancel {
				sim.send(t, http.MethodPost, "/v1/payments/"+created.ID+"/cancel", nil, nil)
			}
			receiver.waitForCount(t, len(tt.wantTypes))
			time.Sleep(2 * cfg.ProcessingDelay) // Catch any callback beyond the expected ones.
			callbacks := receiver.received()

			// Callbacks are not ordered: the processing and canceled events are due at
			// the same moment and may arrive in either order.
			if diff := cmp.Diff(tt.wantTypes, eventTypes(callbacks), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Fatalf("event types mismatch (-want +got) (%s):\n%s", tt.reason, diff)
			}
			final := sim.getPayment(t, created.ID)
			outcome := callbacks[slices.IndexFunc(callbacks, func(c callback) bool { return c.event.Type != "payment.processing" })]
			if diff := cmp.Diff(final, outcome.event.Data.Object); diff != "" {
				t.Errorf("outcome event payment differs from GET (-get +event):\n%s", diff)
			}
			for _, c := range callbacks {
				verifySignature(t, endpoint.Secret, c)
				if got := c.header.Get("webhook-id"); got != c.event.ID {
					t.Errorf("webhook-id = %q, want the event id %q", got, c.event.ID)
				}
				if !strings.HasPrefix(c.event.ID, "evt_") {
					t.Errorf("event id = %q, want the prefix evt_", c.event.ID)
				}
				if got := c.header.Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", got)
				}
				if c.event.Data.Object.ID != created.ID {
					t.Errorf("event %s is about payment %s, want %s", c.event.ID, c.event.Data.Object.ID, created.ID)
				}
				if c.event.Type != "payment."+c.event.Data.Object.Status {
					t.Errorf("event type %s does not match the payment status %s", c.event.Type, c.event.Data.Object.Status)
				}
			}
		})
	}
}

func TestCallbackSignatureHeaders(t *testing.T) {
	sim := startSimulator(t, testConfig())
	receiver := startReceiver(t, nil)
	sim.send(t, http.MethodPost, "/v1/callback_endpoints", keyHeader("given-secret"),
		simulator.CreateEndpointRequest{URL: receiver.url, Secret: givenSecret})

	sim.createPayment(t, "signature", paymentRequest("pm_requires_action"))
	c := receiver.waitForCount(t, 1)[0]

	verifySignature(t, givenSecret, c)
	timestamp, err := strconv.ParseInt(c.header.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		t.Fatalf("webhook-timestamp %q is not Unix seconds: %v", c.header.Get("webhook-timestamp"), err)
	}
	if age := time.Since(time.Unix(timestamp, 0)); age < -time.Second || age > 10*time.Second {
		t.Errorf("webhook-timestamp is %v old, want the time of the attempt", age)
	}
	if !strings.HasPrefix(c.header.Get("webhook-signature"), "v1,") {
		t.Errorf("webhook-signature = %q, want the prefix v1,", c.header.Get("webhook-signature"))
	}
}

func TestCallbackToEveryEndpoint(t *testing.T) {
	sim := startSimulator(t, testConfig())
	first := startReceiver(t, nil)
	second := startReceiver(t, nil)
	firstEndpoint := sim.createEndpoint(t, first.url)
	secondEndpoint := sim.createEndpoint(t, second.url)

	sim.createPayment(t, "fan-out", paymentRequest("pm_requires_action"))
	firstCallback := first.waitForCount(t, 1)[0]
	secondCallback := second.waitForCount(t, 1)[0]

	if firstCallback.event.ID != secondCallback.event.ID {
		t.Errorf("endpoints got events %s and %s, want the same event", firstCallback.event.ID, secondCallback.event.ID)
	}
	verifySignature(t, firstEndpoint.Secret, firstCallback)
	verifySignature(t, secondEndpoint.Secret, secondCallback)
	if firstCallback.header.Get("webhook-signature") == secondCallback.header.Get("webhook-signature") {
		t.Errorf("both endpoints got the same signature, want each signed with its own secret")
	}
}

func TestCallbackRetriedUntilSuccess(t *testing.T) {
	const failures = 3
	cfg := testConfig()
	cfg.ProcessingDelay = time.Hour // Only the processing event is sent.
	sim := startSimulator(t, cfg)
	receiver := startReceiver(t, func(_ string, n int) int {
		if n <= failures {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	endpoint := sim.createEndpoint(t, receiver.url)

	sim.createPayment(t, "retried", paymentRequest("pm_success"))
	receiver.waitForCount(t, failures+1)
	time.Sleep(5 * cfg.RetryMax) // A 2xx must end the retries.
	callbacks := receiver.received()

	if len(callbacks) != failures+1 {
		t.Fatalf("got %d attempts, want %d: %d failures, then one success", len(callbacks), failures+1, failures)
	}
	for i, c := range callbacks {
		verifySignature(t, endpoint.Secret, c)
		if c.header.Get("webhook-id") != callbacks[0].header.Get("webhook-id") {
			t.Errorf("attempt %d has webhook-id %s, want the same id on every retry", i+1, c.header.Get("webhook-id"))
		}
	}
	// The gap before attempt i+1 is at least the backoff: 10ms, doubling up to 40ms.
	for i := 1; i < len(callbacks); i++ {
		backoff := min(cfg.RetryInitial<<(i-1), cfg.RetryMax)
		if gap := callbacks[i].received.Sub(callbacks[i-1].received); gap < backoff {
			t.Errorf("gap before attempt %d = %v, want at least the backoff %v", i+1, gap, backoff)
		}
	}

	stats := sim.Stats()
	if stats.CallbacksSent != failures+1 {
		t.Errorf("callbacks_sent = %d, want %d", stats.CallbacksSent, failures+1)
	}
	if stats.CallbacksAcknowledged != 1 {
		t.Errorf("callbacks_acknowledged = %d, want 1", stats.CallbacksAcknowledged)
	}
}

func TestCallbackRetriedAfterConnectionError(t *testing.T) {
	cfg := testConfig()
	cfg.ProcessingDelay = time.Hour
	sim := startSimulator(t, cfg)
	// Reserve a free loopback port and close it, so the first attempts are refused.
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("reserving a port: %v", err)
	}
	address := listener.Addr().String()
	listener.Close()
	endpoint := sim.createEndpoint(t, "http://"+address+"/callbacks")

	sim.createPayment(t, "connection-error", paymentRequest("pm_success"))
	waitFor(t, "two refused attempts", func() bool { return sim.Stats().CallbacksSent >= 2 })
	receiver := &callbackReceiver{perEvent: map[string]int{}}
	listener, err = net.Listen("tcp", address)
	if err != nil {
		t.Skipf("port %s was taken before the receiver could listen: %v", address, err)
	}
	server := httptest.NewUnstartedServer(http.HandlerFunc(receiver.serveHTTP))
	server.Listener.Close()
	server.Listener = listener
	server.Start()
	t.Cleanup(server.Close)

	callback := receiver.waitForCount(t, 1)[0]
	verifySignature(t, endpoint.Secret, callback)
	if got := callback.event.Type; got != "payment.processing" {
		t.Errorf("event type = %s, want payment.processing", got)
	}
	waitFor(t, "the acknowledgement to be counted", func() bool { return sim.Stats().CallbacksAcknowledged == 1 })
}

func TestCallbackGivesUpAfterRetryFor(t *testing.T) {
	cfg := testConfig()
	cfg.ProcessingDelay = time.Hour
	cfg.RetryFor = 150 * time.Millisecond
	sim := startSimulator(t, cfg)
	receiver := startReceiver(t, func(string, int) int { return http.StatusServiceUnavailable })
	sim.createEndpoint(t, receiver.url)

	sim.createPayment(t, "abandoned", paymentRequest("pm_success"))
	waitFor(t, "the delivery to be abandoned", func() bool { return sim.Stats().CallbacksAbandoned == 1 })
	attempts := len(receiver.received())
	time.Sleep(5 * cfg.RetryMax)

	// 10ms, 20ms, then 40ms waits: at least 4 attempts fit in 150ms.
	if attempts < 4 {
		t.Errorf("got %d attempts before giving up, want at least 4 within the retry period", attempts)
	}
	if got := len(receiver.received()); got != attempts {
		t.Errorf("got %d attempts after giving up, want none beyond the %d before", got-attempts, attempts)
	}
}

func TestCallbackRetryLogOmitsSecrets(t *testing.T) {
	var logs safeBuffer
	cfg := testConfig()
	cfg.ProcessingDelay = time.Hour
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	sim := startSimulator(t, cfg)
	receiver := startReceiver(t, func(_ string, n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	resp := sim.send(t, http.MethodPost, "/v1/callback_endpoints", keyHeader("logged"),
		simulator.CreateEndpointRequest{URL: receiver.url + "?token=url-token-value", Secret: givenSecret})
	endpoint := decode[simulator.Endpoint](t, resp)

	sim.createPayment(t, "logged", paymentRequest("pm_success"))
	callbacks := receiver.waitForCount(t, 2)
	output := logs.String()

	for _, want := range []string{"callback delivery failed, retrying", callbacks[0].event.ID, endpoint.ID, "500"} {
		if !strings.Contains(output, want) {
			t.Errorf("log %q does not contain %q", output, want)
		}
	}
	secrets := []string{givenSecret, strings.TrimPrefix(givenSecret, "whsec_"), "url-token-value", "pm_success",
		callbacks[0].header.Get("webhook-signature"), testAPIKey}
	for _, secret := range secrets {
		if strings.Contains(output, secret) {
			t.Errorf("log %q contains the secret value %q", output, secret)
		}
	}
}

func TestDeletedEndpointGetsNoRetries(t *testing.T) {
	cfg := testConfig()
	cfg.ProcessingDelay = time.Hour
	sim := startSimulator(t, cfg)
	receiver := startReceiver(t, func(string, int) int { return http.StatusInternalServerError })
	endpoint := sim.createEndpoint(t, receiver.url)
	sim.createPayment(t, "deleted-endpoint", paymentRequest("pm_success"))
	receiver.waitForCount(t, 2)

	sim.send(t, http.MethodDelete, "/v1/callback_endpoints/"+endpoint.ID, nil, nil)
	time.Sleep(2 * cfg.RetryMax) // Let an attempt in flight finish.
	attempts := len(receiver.received())
	time.Sleep(5 * cfg.RetryMax)

	if got := len(receiver.received()); got != attempts {
		t.Errorf("got %d attempts after the delete, want none", got-attempts)
	}
}

// lossPattern creates payments one at a time on a simulator with the given seed and
// lose share, and reports for each whether its processing event was lost.
func lossPattern(t *testing.T, seed int64, share float64, payments int) []bool {
	t.Helper()
	cfg := testConfig()
	cfg.ProcessingDelay = time.Hour
	cfg.Seed = seed
	cfg.LoseCallbacks = share
	sim := startSimulator(t, cfg)
	receiver := startReceiver(t, nil)
	sim.createEndpoint(t, receiver.url)

	ids := make([]string, payments)
	for i := range payments {
		ids[i] = sim.createPayment(t, "lose-"+strconv.Itoa(i), paymentRequest("pm_success")).ID
	}
	waitFor(t, "every event to be delivered or lost", func() bool {
		stats := sim.Stats()
		return stats.CallbacksAcknowledged+stats.CallbacksLost == int64(payments)
	})

	delivered := map[string]bool{}
	for _, c := range receiver.received() {
		delivered[c.event.Data.Object.ID] = true
	}
	lost := make([]bool, payments)
	for i, id := range ids {
		lost[i] = !delivered[id]
	}
	if got, want := sim.Stats().CallbacksLost, int64(countTrue(lost)); got != want {
		t.Errorf("callbacks_lost = %d, want %d, the events the receiver missed", got, want)
	}
	return lost
}

func countTrue(values []bool) int {
	n := 0
	for _, v := range values {
		if v {
			n++
		}
	}
	return n
}

func TestLoseCallbacks(t *testing.T) {
	const payments = 20
	tests := []struct {
		name     string
		reason   string
		share    float64
		wantLost func(int) bool
	}{
		{"none", "share 0 delivers every event", 0, func(n int) bool { return n == 0 }},
		{"all", "share 1 loses every event", 1, func(n int) bool { return n == payments }},
		{"half", "share 0.5 loses some events but not all", 0.5, func(n int) bool { return n > 0 && n < payments }},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lost := lossPattern(t, 42, tt.share, payments)

			if n := countTrue(lost); !tt.wantLost(n) {
				t.Errorf("lost %d of %d events (%s)", n, payments, tt.reason)
			}
		})
	}
}

func TestLoseCallbacksRepeatsWithSeed(t *testing.T) {
	first := lossPattern(t, 7, 0.5, 20)
	second := lossPattern(t, 7, 0.5, 20)

	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("the same seed lost other events (-first +second):\n%s", diff)
	}
}

func TestDuplicateCallbacks(t *testing.T) {
	const payments = 20
	tests := []struct {
		name           string
		reason         string
		share          float64
		wantDuplicated func(int) bool
	}{
		{"none", "share 0 sends every event once", 0, func(n int) bool { return n == 0 }},
		{"all", "share 1 sends every event twice", 1, func(n int) bool { return n == payments }},
		{"half", "share 0.5 sends some events twice", 0.5, func(n int) bool { return n > 0 && n < payments }},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.ProcessingDelay = time.Hour
			cfg.Seed = 42
			cfg.DuplicateCallbacks = tt.share
			sim := startSimulator(t, cfg)
			receiver := startReceiver(t, nil)
			endpoint := sim.createEndpoint(t, receiver.url)
			for i := range payments {
				sim.createPayment(t, "duplicate-"+strconv.Itoa(i), paymentRequest("pm_success"))
			}

			want := payments + int(sim.Stats().CallbacksDuplicated)
			receiver.waitForCount(t, want)
			time.Sleep(3 * testDelay)
			callbacks := receiver.received()

			perEvent := map[string]int{}
			for _, c := range callbacks {
				verifySignature(t, endpoint.Secret, c)
				perEvent[c.header.Get("webhook-id")]++
			}
			duplicated := 0
			for id, n := range perEvent {
				switch n {
				case 1:
				case 2:
					duplicated++
				default:
					t.Errorf("event %s arrived %d times, want once or twice", id, n)
				}
			}
			if len(perEvent) != payments {
				t.Errorf("got %d distinct events, want %d", len(perEvent), payments)
			}
			if !tt.wantDuplicated(duplicated) {
				t.Errorf("%d of %d events arrived twice (%s)", duplicated, payments, tt.reason)
			}
			if got := sim.Stats().CallbacksDuplicated; got != int64(duplicated) {
				t.Errorf("callbacks_duplicated = %d, want %d", got, duplicated)
			}
		})
	}
}

func TestDelayCallbacksReorders(t *testing.T) {
	const payments = 10
	cfg := testConfig()
	cfg.ProcessingDelay = time.Hour
	cfg.DelayCallbacks = time.Second
	cfg.Seed = 3
	sim := startSimulator(t, cfg)
	receiver := startReceiver(t, nil)
	sim.createEndpoint(t, receiver.url)

	start := time.Now()
	var ids []string
	for i := range payments {
		ids = append(ids, sim.createPayment(t, "delay-"+strconv.Itoa(i), paymentRequest("pm_success")).ID)
	}
	callbacks := receiver.waitForCount(t, payments)
	elapsed := time.Since(start)

	var arrived []string
	for _, c := range callbacks {
		arrived = append(arrived, c.event.Data.Object.ID)
	}
	if slices.Equal(ids, arrived) {
		t.Errorf("events arrived in creation order, want random delays up to 1s to reorder 10 events")
	}
	if elapsed > cfg.DelayCallbacks+2*time.Second {
		t.Errorf("events took %v to arrive, want at most the 1s delay and some slack", elapsed)
	}
}

func TestCloseStopsDeliveries(t *testing.T) {
	cfg := testConfig()
	cfg.ProcessingDelay = time.Hour
	server := simulator.New(cfg)
	httpServer := httptest.NewServer(server.Handler())
	t.Cleanup(httpServer.Close)
	sim := &testSimulator{Server: server, url: httpServer.URL}
	receiver := startReceiver(t, func(string, int) int { return http.StatusInternalServerError })
	runDone := make(chan error, 1)
	go func() { runDone <- server.Run(context.Background()) }()

	sim.createEndpoint(t, receiver.url)
	sim.createPayment(t, "closed", paymentRequest("pm_success"))
	receiver.waitForCount(t, 2) // Run is delivering and retrying.
	server.Close()

	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("Run returned %v, want nil after Close", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Run did not return within %v after Close", waitTimeout)
	}
	attempts := len(receiver.received())
	time.Sleep(5 * cfg.RetryMax)
	if got := len(receiver.received()); got != attempts {
		t.Errorf("got %d attempts after Close, want none", got-attempts)
	}
	if err := server.Run(context.Background()); err != nil {
		t.Errorf("Run after Close returned %v, want nil at once", err)
	}
	resp := sim.send(t, http.MethodGet, "/v1/account", nil, nil)
	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("API status after Close = %d, want 503", resp.status)
	}
}

// safeBuffer is a bytes.Buffer that is safe for concurrent use, for logs.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunTwiceFails(t *testing.T) {
	sim := startSimulator(t, testConfig())
	created := sim.createPayment(t, "run-twice", paymentRequest("pm_success"))
	sim.waitForStatus(t, created.ID, simulator.StatusSucceeded) // The first Run is running.

	if err := sim.Run(context.Background()); err == nil {
		t.Errorf("second Run returned nil, want an error")
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()

	cfg := testConfig()
	server := simulator.New(cfg)
	httpServer := httptest.NewServer(server.Handler())
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	runDone := make(chan error, 1)
	go func() { runDone <- server.Run(context.Background()) }()
	sim := &testSimulator{Server: server, url: httpServer.URL}
	sim.createEndpoint(t, failing.URL)
	for i := range 5 {
		sim.createPayment(t, "leak-"+strconv.Itoa(i), paymentRequest("pm_success"))
	}
	waitFor(t, "retries to be pending", func() bool { return server.Stats().CallbacksSent >= 10 })

	server.Close()
	<-runDone
	httpServer.Close()
	failing.Close()
	http.DefaultClient.CloseIdleConnections()

	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			stacks := make([]byte, 1<<20)
			stacks = stacks[:runtime.Stack(stacks, true)]
			t.Fatalf("%d goroutines after Close, want at most the %d before:\n%s", runtime.NumGoroutine(), before, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

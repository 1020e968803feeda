package simulator_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/payment-operator/payment-operator/simulator"
)

func TestCreatePaymentIdempotency(t *testing.T) {
	tests := []struct {
		name         string
		reason       string
		change       func(*simulator.CreatePaymentRequest)
		wantStatus   int
		wantReplayed bool
	}{
		{
			name:         "same parameters",
			reason:       "a retried create must return the payment of the first create",
			change:       func(*simulator.CreatePaymentRequest) {},
			wantStatus:   http.StatusOK,
			wantReplayed: true,
		},
		{
			name:   "metadata in another order",
			reason: "metadata is compared as a map, so key order in the JSON does not matter",
			change: func(r *simulator.CreatePaymentRequest) {
				r.Metadata = map[string]string{"name": "order-1042", "namespace": "default"}
			},
			wantStatus:   http.StatusOK,
			wantReplayed: true,
		},
		{
			name:       "other amount",
			reason:     "amount is one of the compared parameters",
			change:     func(r *simulator.CreatePaymentRequest) { r.Amount++ },
			wantStatus: http.StatusConflict,
		},
		{
			name:       "other currency",
			reason:     "currency is one of the compared parameters",
			change:     func(r *simulator.CreatePaymentRequest) { r.Currency = "EUR" },
			wantStatus: http.StatusConflict,
		},
		{
			name:       "other payment method",
			reason:     "payment_method is one of the compared parameters",
			change:     func(r *simulator.CreatePaymentRequest) { r.PaymentMethod = "pm_decline_card_declined" },
			wantStatus: http.StatusConflict,
		},
		{
			name:       "other description",
			reason:     "description is one of the compared parameters",
			change:     func(r *simulator.CreatePaymentRequest) { r.Description = "Order 1043" },
			wantStatus: http.StatusConflict,
		},
		{
			name:       "other metadata value",
			reason:     "metadata is one of the compared parameters",
			change:     func(r *simulator.CreatePaymentRequest) { r.Metadata["name"] = "order-1043" },
			wantStatus: http.StatusConflict,
		},
		{
			name:       "missing metadata",
			reason:     "dropping metadata changes the parameters",
			change:     func(r *simulator.CreatePaymentRequest) { r.Metadata = nil },
			wantStatus: http.StatusConflict,
		},
	}

	sim := startSimulator(t, testConfig())
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("idempotency-%d", i)
			first := sim.createPayment(t, key, paymentRequest("pm_success"))

			second := paymentRequest("pm_success")
			tt.change(&second)
			resp := sim.send(t, http.MethodPost, "/v1/payments", keyHeader(key), second)

			if resp.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s); body %s", resp.status, tt.wantStatus, tt.reason, resp.body)
			}
			gotReplayed := resp.header.Get("Idempotent-Replayed") == "true"
			if gotReplayed != tt.wantReplayed {
				t.Errorf("Idempotent-Replayed = %q, want replayed %v (%s)", resp.header.Get("Idempotent-Replayed"), tt.wantReplayed, tt.reason)
			}
			if tt.wantStatus != http.StatusOK {
				if got := errorType(resp); got != simulator.ErrorIdempotency {
					t.Errorf("error type = %q, want %q (%s)", got, simulator.ErrorIdempotency, tt.reason)
				}
				return
			}
			replayed := decode[simulator.Payment](t, resp)
			if replayed.ID != first.ID {
				t.Errorf("replayed payment id = %s, want %s (%s)", replayed.ID, first.ID, tt.reason)
			}

			listed := decode[struct{ Data []simulator.Payment }](t, sim.send(t, http.MethodGet, "/v1/payments?idempotency_key="+key, nil, nil))
			if len(listed.Data) != 1 {
				t.Errorf("payments with key %s = %d, want 1 (%s)", key, len(listed.Data), tt.reason)
			}
		})
	}
}

func TestCreatePaymentAnswer(t *testing.T) {
	sim := startSimulator(t, testConfig())
	before := time.Now().Unix()

	resp := sim.send(t, http.MethodPost, "/v1/payments", keyHeader("answer-1"), paymentRequest("pm_success"))

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", resp.status, resp.body)
	}
	if got := resp.header.Get("Idempotent-Replayed"); got != "" {
		t.Errorf("Idempotent-Replayed = %q on a first create, want none", got)
	}
	if got := resp.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if strings.Contains(string(resp.body), "pm_success") {
		t.Errorf("answer %s contains the payment-method token", resp.body)
	}

	payment := decode[simulator.Payment](t, resp)
	if !strings.HasPrefix(payment.ID, "pay_") || len(payment.ID) != len("pay_")+24 {
		t.Errorf("id = %q, want pay_ and 24 hex digits", payment.ID)
	}
	if payment.Created < before || payment.Created > time.Now().Unix() {
		t.Errorf("created = %d, want the Unix time of the create", payment.Created)
	}
	want := simulator.Payment{
		ID:             payment.ID,
		Status:         simulator.StatusProcessing,
		Amount:         1999,
		Currency:       "USD",
		Description:    "Order 1042",
		IdempotencyKey: "answer-1",
		Metadata:       map[string]string{"namespace": "default", "name": "order-1042"},
		Created:        payment.Created,
	}
	if diff := cmp.Diff(want, payment); diff != "" {
		t.Errorf("created payment mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(payment, sim.getPayment(t, payment.ID)); diff != "" {
		t.Errorf("GET answer differs from the create answer (-create +get):\n%s", diff)
	}
}

func TestCreatePaymentEmptyMetadata(t *testing.T) {
	sim := startSimulator(t, testConfig())
	req := paymentRequest("pm_success")
	req.Metadata = nil

	resp := sim.send(t, http.MethodPost, "/v1/payments", keyHeader("no-metadata"), req)

	if !strings.Contains(string(resp.body), `"metadata":{}`) {
		t.Errorf("body %s, want metadata {} when none was given", resp.body)
	}
}

func TestCreatePaymentRejected(t *testing.T) {
	valid := `{"amount":1999,"currency":"USD","payment_method":"pm_success"}`
	tests := []struct {
		name   string
		reason string
		key    string
		body   string
	}{
		{"missing key", "Idempotency-Key is required on creates", "", valid},
		{"key too long", "keys are limited to 255 bytes", strings.Repeat("k", 256), valid},
		{"empty body", "a create needs a JSON object", "k", ""},
		{"invalid JSON", "the body must parse", "k", `{"amount":`},
		{"unknown field", "unknown fields are likely typos", "k", `{"amount":1999,"currency":"USD","payment_method":"pm_success","capture":true}`},
		{"trailing data", "only one JSON object is allowed", "k", valid + `{}`},
		{"amount zero", "amounts start at 1", "k", `{"amount":0,"currency":"USD","payment_method":"pm_success"}`},
		{"amount negative", "amounts start at 1", "k", `{"amount":-5,"currency":"USD","payment_method":"pm_success"}`},
		{"amount missing", "a missing amount is 0", "k", `{"currency":"USD","payment_method":"pm_success"}`},
		{"amount fraction", "amounts are integers in minor units", "k", `{"amount":19.99,"currency":"USD","payment_method":"pm_success"}`},
		{"amount as string", "amounts are JSON numbers", "k", `{"amount":"1999","currency":"USD","payment_method":"pm_success"}`},
		{"currency lower case", "currencies are three upper-case letters", "k", `{"amount":1999,"currency":"usd","payment_method":"pm_success"}`},
		{"currency four letters", "currencies are three upper-case letters", "k", `{"amount":1999,"currency":"USDT","payment_method":"pm_success"}`},
		{"currency missing", "currencies are required", "k", `{"amount":1999,"payment_method":"pm_success"}`},
		{"unknown token", "only the documented tokens are accepted", "k", `{"amount":1999,"currency":"USD","payment_method":"pm_card_visa"}`},
		{"decline without code", "pm_decline_ needs a code", "k", `{"amount":1999,"currency":"USD","payment_method":"pm_decline_"}`},
		{"token missing", "payment_method is required", "k", `{"amount":1999,"currency":"USD"}`},
		{"metadata not strings", "metadata values are strings", "k", `{"amount":1999,"currency":"USD","payment_method":"pm_success","metadata":{"n":1}}`},
		{"body over 1 MiB", "bodies are limited to 1 MiB", "k", `{"amount":1999,"currency":"USD","payment_method":"pm_success","description":"` + strings.Repeat("x", 1<<20) + `"}`},
	}

	sim := startSimulator(t, testConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.key != "" {
				header.Set("Idempotency-Key", tt.key)
			}

			resp := sim.send(t, http.MethodPost, "/v1/payments", header, tt.body)

			if resp.status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400 (%s); body %s", resp.status, tt.reason, resp.body)
			}
			if got := errorType(resp); got != simulator.ErrorInvalidRequest {
				t.Errorf("error type = %q, want %q (%s)", got, simulator.ErrorInvalidRequest, tt.reason)
			}
		})
	}

	if got := sim.Payments(); len(got) != 0 {
		t.Errorf("rejected creates stored %d payments, want 0", len(got))
	}
}

func TestPaymentOutcomes(t *testing.T) {
	tests := []struct {
		token       string
		reason      string
		wantStatus  string
		wantCode    string
		wantMessage string
	}{
		{"pm_success", "the success token succeeds", simulator.StatusSucceeded, "", ""},
		{"pm_decline_insufficient_funds", "a decline token fails with its code", simulator.StatusFailed,
			"insufficient_funds", "The card has insufficient funds."},
		{"pm_decline_card_velocity_exceeded", "an unlisted decline code gets a message built from the code",
			simulator.StatusFailed, "card_velocity_exceeded", "The payment was declined (card velocity exceeded)."},
		{"pm_requires_action", "the 3-D Secure token waits for the customer", simulator.StatusRequiresAction, "", ""},
		{"pm_slow", "the slow token succeeds after the slow delay", simulator.StatusSucceeded, "", ""},
	}

	cfg := testConfig()
	cfg.SlowDelay = 300 * time.Millisecond
	sim := startSimulator(t, cfg)
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			t.Parallel()
			created := sim.createPayment(t, "outcome-"+tt.token, paymentRequest(tt.token))
			if created.Status != simulator.StatusProcessing {
				t.Errorf("status on create = %s, want processing", created.Status)
			}

			got := sim.waitForStatus(t, created.ID, tt.wantStatus)

			if got.FailureCode != tt.wantCode {
				t.Errorf("failure_code = %q, want %q (%s)", got.FailureCode, tt.wantCode, tt.reason)
			}
			if got.FailureMessage != tt.wantMessage {
				t.Errorf("failure_message = %q, want %q (%s)", got.FailureMessage, tt.wantMessage, tt.reason)
			}

			// The outcome must not change again.
			time.Sleep(3 * testDelay)
			if again := sim.getPayment(t, created.ID); again.Status != tt.wantStatus {
				t.Errorf("status later = %s, want it to stay %s", again.Status, tt.wantStatus)
			}
		})
	}
}

func TestSlowTokenWaitsForSlowDelay(t *testing.T) {
	cfg := testConfig()
	cfg.SlowDelay = 2 * time.Second
	sim := startSimulator(t, cfg)

	slow := sim.createPayment(t, "slow", paymentRequest("pm_slow"))
	fast := sim.createPayment(t, "fast", paymentRequest("pm_success"))
	sim.waitForStatus(t, fast.ID, simulator.StatusSucceeded)

	if got := sim.getPayment(t, slow.ID); got.Status != simulator.StatusProcessing {
		t.Errorf("pm_slow status after the processing delay = %s, want processing until the slow delay", got.Status)
	}
}

func TestCancelPayment(t *testing.T) {
	tests := []struct {
		name       string
		reason     string
		token      string
		waitFor    string // status to reach before canceling; "" cancels right away
		wantStatus int
		wantType   string
	}{
		{"processing", "a processing payment can be canceled", "pm_success", "", http.StatusOK, ""},
		{"requires action", "a payment waiting for the customer can be canceled", "pm_requires_action",
			simulator.StatusRequiresAction, http.StatusOK, ""},
		{"succeeded", "a succeeded payment is terminal", "pm_success", simulator.StatusSucceeded,
			http.StatusConflict, simulator.ErrorInvalidState},
		{"failed", "a failed payment is terminal", "pm_decline_card_declined", simulator.StatusFailed,
			http.StatusConflict, simulator.ErrorInvalidState},
	}

	// The processing delay leaves ample time to cancel before the outcome, even on a
	// loaded machine.
	cfg := testConfig()
	cfg.ProcessingDelay = 200 * time.Millisecond
	sim := startSimulator(t, cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			created := sim.createPayment(t, "cancel-"+tt.name, paymentRequest(tt.token))
			if tt.waitFor != "" {
				sim.waitForStatus(t, created.ID, tt.waitFor)
			}

			resp := sim.send(t, http.MethodPost, "/v1/payments/"+created.ID+"/cancel", nil, nil)

			if resp.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s); body %s", resp.status, tt.wantStatus, tt.reason, resp.body)
			}
			if tt.wantType != "" {
				if got := errorType(resp); got != tt.wantType {
					t.Errorf("error type = %q, want %q (%s)", got, tt.wantType, tt.reason)
				}
				return
			}
			if got := decode[simulator.Payment](t, resp).Status; got != simulator.StatusCanceled {
				t.Errorf("answered status = %s, want canceled", got)
			}
			time.Sleep(2 * cfg.ProcessingDelay)
			if got := sim.getPayment(t, created.ID).Status; got != simulator.StatusCanceled {
				t.Errorf("status after the processing delay = %s, want it to stay canceled", got)
			}
		})
	}
}

func TestCancelTwice(t *testing.T) {
	sim := startSimulator(t, testConfig())
	created := sim.createPayment(t, "cancel-twice", paymentRequest("pm_requires_action"))
	first := sim.send(t, http.MethodPost, "/v1/payments/"+created.ID+"/cancel", nil, nil)
	if first.status != http.StatusOK {
		t.Fatalf("first cancel status = %d, want 200; body %s", first.status, first.body)
	}

	second := sim.send(t, http.MethodPost, "/v1/payments/"+created.ID+"/cancel", nil, nil)

	if second.status != http.StatusConflict {
		t.Errorf("second cancel status = %d, want 409 because canceled is terminal", second.status)
	}
	if got := errorType(second); got != simulator.ErrorInvalidState {
		t.Errorf("second cancel error type = %q, want %q", got, simulator.ErrorInvalidState)
	}
}

func TestUnknownPayment(t *testing.T) {
	tests := []struct {
		method string
		path   string
	}{
		{http.MethodGet, "/v1/payments/pay_unknown"},
		{http.MethodPost, "/v1/payments/pay_unknown/cancel"},
	}

	sim := startSimulator(t, testConfig())
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp := sim.send(t, tt.method, tt.path, nil, nil)

			if resp.status != http.StatusNotFound {
				t.Errorf("status = %d, want 404", resp.status)
			}
			if got := errorType(resp); got != simulator.ErrorNotFound {
				t.Errorf("error type = %q, want %q", got, simulator.ErrorNotFound)
			}
		})
	}
}

func TestListPaymentsByKey(t *testing.T) {
	sim := startSimulator(t, testConfig())
	created := sim.createPayment(t, "lookup-1", paymentRequest("pm_success"))
	sim.createPayment(t, "lookup-2", paymentRequest("pm_success"))

	tests := []struct {
		name       string
		reason     string
		query      string
		wantStatus int
		wantIDs    []string
	}{
		{"used key", "a client that lost the create response finds its payment", "?idempotency_key=lookup-1",
			http.StatusOK, []string{created.ID}},
		{"unused key", "an unused key lists no payment", "?idempotency_key=never-used", http.StatusOK, []string{}},
		{"missing key", "the API lists payments only by key", "", http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := sim.send(t, http.MethodGet, "/v1/payments"+tt.query, nil, nil)

			if resp.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s); body %s", resp.status, tt.wantStatus, tt.reason, resp.body)
			}
			if tt.wantIDs == nil {
				return
			}
			listed := decode[struct{ Data []simulator.Payment }](t, resp)
			if listed.Data == nil {
				t.Errorf("data is null, want a list (%s)", tt.reason)
			}
			ids := []string{}
			for _, p := range listed.Data {
				ids = append(ids, p.ID)
			}
			if diff := cmp.Diff(tt.wantIDs, ids); diff != "" {
				t.Errorf("listed ids mismatch (-want +got) (%s):\n%s", tt.reason, diff)
			}
		})
	}
}

func TestForgetIdempotencyKeys(t *testing.T) {
	cfg := testConfig()
	cfg.ForgetIdempotencyKeys = true
	sim := startSimulator(t, cfg)

	first := sim.createPayment(t, "forgotten", paymentRequest("pm_success"))
	resp := sim.send(t, http.MethodPost, "/v1/payments", keyHeader("forgotten"), paymentRequest("pm_decline_card_declined"))

	if resp.status != http.StatusOK {
		t.Fatalf("second create status = %d, want 200 because the key is forgotten; body %s", resp.status, resp.body)
	}
	if got := resp.header.Get("Idempotent-Replayed"); got != "" {
		t.Errorf("Idempotent-Replayed = %q, want none", got)
	}
	second := decode[simulator.Payment](t, resp)
	if second.ID == first.ID {
		t.Errorf("second create answered the first payment %s, want a new payment", first.ID)
	}

	listed := decode[struct{ Data []simulator.Payment }](t, sim.send(t, http.MethodGet, "/v1/payments?idempotency_key=forgotten", nil, nil))
	var ids []string
	for _, p := range listed.Data {
		ids = append(ids, p.ID)
	}
	if diff := cmp.Diff([]string{first.ID, second.ID}, ids); diff != "" {
		t.Errorf("lookup by key mismatch (-want +got):\n%s", diff)
	}
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name          string
		reason        string
		authorization string
		wantStatus    int
	}{
		{"valid key", "the configured key is accepted", "Bearer " + testAPIKey, http.StatusOK},
		{"missing header", "every API request needs a key", "", http.StatusUnauthorized},
		{"wrong key", "only the configured key is accepted", "Bearer sk_test_other", http.StatusUnauthorized},
		{"key prefix", "a prefix of the key is not the key", "Bearer " + testAPIKey[:5], http.StatusUnauthorized},
		{"basic scheme", "only bearer tokens are accepted", "Basic " + testAPIKey, http.StatusUnauthorized},
		{"bare key", "the Bearer scheme is required", testAPIKey, http.StatusUnauthorized},
	}
	paths := []struct {
		method string
		path   string
	}{
		{http.MethodGet, "/v1/account"},
		{http.MethodGet, "/v1/payments?idempotency_key=k"},
		{http.MethodGet, "/v1/callback_endpoints"},
	}

	sim := startSimulator(t, testConfig())
	for _, tt := range tests {
		for _, p := range paths {
			t.Run(tt.name+" "+p.path, func(t *testing.T) {
				header := http.Header{"Authorization": {tt.authorization}}

				resp := sim.send(t, p.method, p.path, header, nil)

				if resp.status != tt.wantStatus {
					t.Errorf("status = %d, want %d (%s); body %s", resp.status, tt.wantStatus, tt.reason, resp.body)
				}
				if tt.wantStatus == http.StatusUnauthorized && errorType(resp) != simulator.ErrorAuthentication {
					t.Errorf("error type = %q, want %q (%s)", errorType(resp), simulator.ErrorAuthentication, tt.reason)
				}
			})
		}
	}
}

func TestAuthenticationBeforeCreate(t *testing.T) {
	sim := startSimulator(t, testConfig())
	header := http.Header{"Authorization": {"Bearer wrong"}, "Idempotency-Key": {"unauthenticated"}}

	resp := sim.send(t, http.MethodPost, "/v1/payments", header, paymentRequest("pm_success"))

	if resp.status != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", resp.status)
	}
	if got := sim.Payments(); len(got) != 0 {
		t.Errorf("an unauthenticated create stored %d payments, want 0", len(got))
	}
}

func TestAccount(t *testing.T) {
	sim := startSimulator(t, testConfig())

	resp := sim.send(t, http.MethodGet, "/v1/account", nil, nil)

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.status)
	}
	if diff := cmp.Diff(map[string]string{"id": "acct_simulator"}, decode[map[string]string](t, resp)); diff != "" {
		t.Errorf("account mismatch (-want +got):\n%s", diff)
	}
}

func TestUnknownRoute(t *testing.T) {
	sim := startSimulator(t, testConfig())

	resp := sim.send(t, http.MethodPut, "/v1/payments", nil, nil)

	if resp.status != http.StatusNotFound {
		t.Errorf("status = %d, want 404", resp.status)
	}
	if got := errorType(resp); got != simulator.ErrorNotFound {
		t.Errorf("error type = %q, want %q", got, simulator.ErrorNotFound)
	}
}

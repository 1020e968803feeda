package simulator

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payment-operator/payment-operator/psp"
)

const (
	testSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

var testBody = []byte(`{"id":"evt_1","type":"payment.succeeded","data":{"object":{"id":"pay_1","status":"succeeded"}}}`)

// signedHeader returns the Standard Webhooks headers for body, signed with
// each secret at the given time.
func signedHeader(t *testing.T, body []byte, at time.Time, secrets ...string) http.Header {
	t.Helper()
	header := http.Header{}
	header.Set("webhook-id", "msg_1")
	header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	signatures := ""
	for i, secret := range secrets {
		signer, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		signature, err := signer.Sign("msg_1", at, body)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			signatures += " "
		}
		signatures += signature
	}
	header.Set("webhook-signature", signatures)
	return header
}

func TestVerifyCallback(t *testing.T) {
	now := time.Now()
	cases := []struct {
		reason  string
		header  func(t *testing.T) http.Header
		body    []byte
		secret  string
		wantErr bool
	}{
		{reason: "a good signature passes",
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now, testSecret) }},
		{reason: "a tampered body fails", wantErr: true,
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now, testSecret) },
			body:   []byte(`{"id":"evt_1","type":"payment.succeeded","data":{"object":{"id":"pay_2","status":"succeeded"}}}`)},
		{reason: "a signature made with another secret fails", wantErr: true,
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now, otherSecret) }},
		{reason: "the right signature checked against another secret fails", wantErr: true, secret: otherSecret,
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now, testSecret) }},
		{reason: "a timestamp six minutes old fails", wantErr: true,
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now.Add(-6*time.Minute), testSecret) }},
		{reason: "a timestamp six minutes ahead fails", wantErr: true,
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now.Add(6*time.Minute), testSecret) }},
		{reason: "a timestamp four minutes old passes",
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now.Add(-4*time.Minute), testSecret) }},
		{reason: "during rotation the new secret's signature among two passes",
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now, otherSecret, testSecret) }},
		{reason: "during rotation the old secret's signature among two passes",
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now, testSecret, otherSecret) }},
		{reason: "a missing webhook-id fails", wantErr: true,
			header: func(t *testing.T) http.Header {
				h := signedHeader(t, testBody, now, testSecret)
				h.Del("webhook-id")
				return h
			}},
		{reason: "a missing webhook-timestamp fails", wantErr: true,
			header: func(t *testing.T) http.Header {
				h := signedHeader(t, testBody, now, testSecret)
				h.Del("webhook-timestamp")
				return h
			}},
		{reason: "a missing webhook-signature fails", wantErr: true,
			header: func(t *testing.T) http.Header {
				h := signedHeader(t, testBody, now, testSecret)
				h.Del("webhook-signature")
				return h
			}},
		{reason: "a timestamp that is not a number fails", wantErr: true,
			header: func(t *testing.T) http.Header {
				h := signedHeader(t, testBody, now, testSecret)
				h.Set("webhook-timestamp", "yesterday")
				return h
			}},
		{reason: "a signature of another version fails", wantErr: true,
			header: func(t *testing.T) http.Header {
				h := signedHeader(t, testBody, now, testSecret)
				h.Set("webhook-signature", "v2,"+h.Get("webhook-signature")[3:])
				return h
			}},
		{reason: "a secret that is not base64 fails", wantErr: true, secret: "whsec_%%%",
			header: func(t *testing.T) http.Header { return signedHeader(t, testBody, now, testSecret) }},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			body, secret := tc.body, tc.secret
			if body == nil {
				body = testBody
			}
			if secret == "" {
				secret = testSecret
			}

			err := Adapter{}.VerifyCallback(tc.header(t), body, secret)

			if (err != nil) != tc.wantErr {
				t.Errorf("VerifyCallback error = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

func TestParseCallback(t *testing.T) {
	cases := []struct {
		reason      string
		body        string
		wantErr     bool
		wantPayment string
		wantStatus  psp.Status
	}{
		{reason: "a payment event carries the payment", body: `{"id":"evt_1","type":"payment.failed","data":{"object":{"id":"pay_1","status":"failed","failure_code":"card_declined","metadata":{"name":"order-1"}}}}`,
			wantPayment: "pay_1", wantStatus: psp.StatusFailed},
		{reason: "another event type carries no payment", body: `{"id":"evt_2","type":"account.updated","data":{"object":{"id":"acct_1"}}}`},
		{reason: "invalid JSON is an error", body: `{"id":`, wantErr: true},
		{reason: "two JSON values are an error", body: `{"id":"evt_1","type":"x"} {}`, wantErr: true},
		{reason: "a missing id is an error", body: `{"type":"payment.succeeded"}`, wantErr: true},
		{reason: "a payment event without a payment is an error", body: `{"id":"evt_1","type":"payment.succeeded","data":{}}`, wantErr: true},
		{reason: "an unknown payment status is an error", body: `{"id":"evt_1","type":"payment.refunded","data":{"object":{"id":"pay_1","status":"refunded"}}}`, wantErr: true},
		{reason: "an amount that is not an integer is an error", body: `{"id":"evt_1","type":"payment.succeeded","data":{"object":{"id":"pay_1","status":"succeeded","amount":19.99}}}`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			event, err := Adapter{}.ParseCallback([]byte(tc.body))

			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseCallback error = %v, want error: %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if tc.wantPayment == "" {
				if event.Payment != nil {
					t.Errorf("event.Payment = %+v, want nil", event.Payment)
				}
				return
			}
			if event.Payment == nil || event.Payment.ID != tc.wantPayment || event.Payment.Status != tc.wantStatus {
				t.Errorf("event.Payment = %+v, want id %s and status %s", event.Payment, tc.wantPayment, tc.wantStatus)
			}
		})
	}
}

func FuzzVerifyCallback(f *testing.F) {
	f.Add(testBody, "msg_1", "1764877200", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	f.Add([]byte(`{}`), "", "", "")
	f.Add([]byte(`not json`), "msg_2", "-1", "v1,a v1,b")
	f.Fuzz(func(t *testing.T, body []byte, id, timestamp, signature string) {
		header := http.Header{}
		header.Set("webhook-id", id)
		header.Set("webhook-timestamp", timestamp)
		header.Set("webhook-signature", signature)
		// Random input must never verify, and must never panic.
		if err := (Adapter{}).VerifyCallback(header, body, testSecret); err == nil {
			t.Errorf("a random signature %q verified", signature)
		}
	})
}

func FuzzParseCallback(f *testing.F) {
	f.Add(testBody)
	f.Add([]byte(`{"id":"evt_2","type":"account.updated"}`))
	f.Add([]byte(`{"id":"evt_3","type":"payment.failed","data":{"object":{"id":"pay_1","status":"failed","amount":-1,"metadata":{"uid":"x"}}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		event, err := Adapter{}.ParseCallback(body)
		if err != nil {
			return
		}
		if event.ID == "" || event.Type == "" {
			t.Errorf("parsed an event without id or type: %+v", event)
		}
		if event.Payment != nil && (event.Payment.ID == "" || event.Payment.Status == "") {
			t.Errorf("parsed a payment without id or status: %+v", event.Payment)
		}
	})
}

// BenchmarkVerifyCallback measures the signature check that every callback
// pays before anything else, on a body of a typical size.
func BenchmarkVerifyCallback(b *testing.B) {
	body := []byte(`{"id":"evt_1","type":"payment.succeeded","created":1764877200,"data":{"object":{"id":"pay_0e3d0db3a75aea867cf7b917","status":"succeeded","amount":1999,"currency":"USD","description":"Order 1001: two coffees","idempotency_key":"b3578909-1d2e-4f1b-bebf-bc9445d9c2b1","metadata":{"namespace":"default","name":"order-1001","uid":"b3578909-1d2e-4f1b-bebf-bc9445d9c2b1"}}}}`)
	signer, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	signature, err := signer.Sign("msg_1", now, body)
	if err != nil {
		b.Fatal(err)
	}
	header := http.Header{}
	header.Set("webhook-id", "msg_1")
	header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	header.Set("webhook-signature", signature)

	b.ReportAllocs()
	for b.Loop() {
		if err := (Adapter{}).VerifyCallback(header, body, testSecret); err != nil {
			b.Fatal(err)
		}
		if _, err := (Adapter{}).ParseCallback(body); err != nil {
			b.Fatal(err)
		}
	}
}

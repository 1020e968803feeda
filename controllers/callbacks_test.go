package controllers_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
)

// callbackRequest describes one request to the callback server.
type callbackRequest struct {
	method      string
	path        string
	contentType string
	body        []byte
	secret      string // signs the body; empty sends no signature headers
	signedAt    time.Time
	// tamper changes the body after signing.
	tamper func([]byte) []byte
}

func (c callbackRequest) send(t *testing.T) (int, string) {
	t.Helper()
	body := c.body
	req, err := http.NewRequest(c.method, callbackURL+c.path, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Sign the body as the PSP would, then tamper with it if the case asks.
	if c.secret != "" {
		signer, err := standardwebhooks.NewWebhook(c.secret)
		if err != nil {
			t.Fatal(err)
		}
		signature, err := signer.Sign("msg_bad_input", c.signedAt, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("webhook-id", "msg_bad_input")
		req.Header.Set("webhook-timestamp", strconv.FormatInt(c.signedAt.Unix(), 10))
		req.Header.Set("webhook-signature", signature)
	}

	if c.tamper != nil {
		body = c.tamper(body)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	response, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(response)
}

func TestCallbackBadInput(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	other := newPSP(t, fastConfig(), time.Hour)
	payment := p.createPayment(t, "bad-input", "pm_requires_action")
	payment = waitForPhase(t, payment, v1alpha1.PaymentRequiresAction, 20*time.Second)
	time.Sleep(time.Second) // let the simulator's own callbacks finish
	secret := p.signingSecret(t)
	path := fmt.Sprintf("/hooks/%s/%s", p.namespace, p.provider)
	event := func(providerID, status string) []byte {
		return []byte(fmt.Sprintf(`{"id":"evt_bad","type":"payment.%s","data":{"object":{"id":%q,"status":%q,"metadata":{"namespace":%q,"name":%q,"uid":%q}}}}`,
			status, providerID, status, payment.Namespace, payment.Name, payment.UID))
	}
	succeeded := event(payment.Status.ProviderPaymentID, "succeeded")
	now := time.Now()

	cases := []struct {
		reason   string
		request  callbackRequest
		wantCode int
		wantBody string
	}{
		{reason: "a forged callback without signature", wantCode: 401,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: succeeded}},
		{reason: "a callback signed with the wrong secret", wantCode: 401,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: succeeded, secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", signedAt: now}},
		{reason: "a tampered body", wantCode: 401,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: event(payment.Status.ProviderPaymentID, "canceled"), secret: secret, signedAt: now,
				tamper: func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("canceled"), []byte("succeeded")) }}},
		{reason: "a stale timestamp", wantCode: 401,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: succeeded, secret: secret, signedAt: now.Add(-10 * time.Minute)}},
		{reason: "a future timestamp", wantCode: 401,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: succeeded, secret: secret, signedAt: now.Add(10 * time.Minute)}},
		{reason: "an unknown provider", wantCode: 404,
			request: callbackRequest{method: "POST", path: fmt.Sprintf("/hooks/%s/nobody", p.namespace), contentType: "application/json", body: succeeded, secret: secret, signedAt: now}},
		{reason: "another namespace's provider with this provider's secret", wantCode: 401,
			request: callbackRequest{method: "POST", path: fmt.Sprintf("/hooks/%s/%s", other.namespace, other.provider), contentType: "application/json", body: succeeded, secret: secret, signedAt: now}},
		{reason: "another namespace's provider with its own secret", wantCode: 200, wantBody: `"ignored"`,
			request: callbackRequest{method: "POST", path: fmt.Sprintf("/hooks/%s/%s", other.namespace, other.provider), contentType: "application/json", body: succeeded, secret: other.signingSecret(t), signedAt: now}},
		{reason: "GET is not allowed", wantCode: 405,
			request: callbackRequest{method: "GET", path: path}},
		{reason: "PUT is not allowed", wantCode: 405,
			request: callbackRequest{method: "PUT", path: path, contentType: "application/json", body: succeeded, secret: secret, signedAt: now}},
		{reason: "a form content type", wantCode: 415,
			request: callbackRequest{method: "POST", path: path, contentType: "application/x-www-form-urlencoded", body: succeeded, secret: secret, signedAt: now}},
		{reason: "an empty body", wantCode: 400,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: []byte{}, secret: secret, signedAt: now}},
		{reason: "a 10 MiB body", wantCode: 413,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: bytes.Repeat([]byte("a"), 10<<20)}},
		{reason: "signed invalid JSON", wantCode: 400,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: []byte(`{"id":`), secret: secret, signedAt: now}},
		{reason: "an unknown event type", wantCode: 200, wantBody: `"ignored"`,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: []byte(`{"id":"evt_x","type":"customer.created","data":{"object":{"id":"cus_1"}}}`), secret: secret, signedAt: now}},
		{reason: "an unknown payment id", wantCode: 200, wantBody: `"ignored"`,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: []byte(`{"id":"evt_y","type":"payment.succeeded","data":{"object":{"id":"pay_unknown","status":"succeeded"}}}`), secret: secret, signedAt: now}},
		{reason: "a stale move back to processing", wantCode: 200, wantBody: `"unchanged"`,
			request: callbackRequest{method: "POST", path: path, contentType: "application/json", body: event(payment.Status.ProviderPaymentID, "processing"), secret: secret, signedAt: now}},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			before := getPayment(t, payment).ResourceVersion

			code, body := tc.request.send(t)

			if code != tc.wantCode {
				t.Errorf("status = %d, want %d; body %s", code, tc.wantCode, body)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("body %s does not contain %s", body, tc.wantBody)
			}
			if after := getPayment(t, payment); after.ResourceVersion != before {
				t.Errorf("the payment was written (resourceVersion %s to %s, phase %s)", before, after.ResourceVersion, after.Status.Phase)
			}
		})
	}

	// A good callback after all of that still settles the payment, and a
	// later one cannot move the terminal phase back.
	if code, body := (callbackRequest{method: "POST", path: path, contentType: "application/json", body: event(payment.Status.ProviderPaymentID, "canceled"), secret: secret, signedAt: time.Now()}).send(t); code != 200 || !strings.Contains(body, `"stored"`) {
		t.Fatalf("good callback answered %d %s, want 200 stored", code, body)
	}
	terminal := getPayment(t, payment)
	code, body := (callbackRequest{method: "POST", path: path, contentType: "application/json", body: succeeded, secret: secret, signedAt: time.Now()}).send(t)
	if code != 200 || !strings.Contains(body, `"unchanged"`) {
		t.Errorf("callback after the terminal phase answered %d %s, want 200 unchanged", code, body)
	}
	if after := getPayment(t, payment); after.ResourceVersion != terminal.ResourceVersion || after.Status.Phase != v1alpha1.PaymentCanceled {
		t.Errorf("a terminal payment changed: phase %s", after.Status.Phase)
	}
}

func TestSlowClientIsCutOff(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	address := strings.TrimPrefix(callbackURL, "http://")
	path := "/hooks/" + p.namespace + "/simulator"
	stalls := map[string]string{
		// The request line and one header, then nothing: the header timeout (5s) applies.
		"headers": "POST " + path + " HTTP/1.1\r\nHost: x\r\n",
		// Complete headers announcing a body that never comes: the read timeout (15s) applies.
		"body": "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":",
	}
	connections := map[string]net.Conn{}
	for name, partial := range stalls {
		conn, err := net.Dial("tcp", address)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if _, err := io.WriteString(conn, partial); err != nil {
			t.Fatal(err)
		}
		connections[name] = conn
	}
	started := time.Now()

	// Other callbacks are served while the slow clients stall.
	payment := p.createPayment(t, "while-slow", "pm_success")
	waitForPhase(t, payment, v1alpha1.PaymentSucceeded, 20*time.Second)

	// The server ends each stalled request after its timeout.
	for name, conn := range connections {
		if err := conn.SetReadDeadline(started.Add(25 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(conn); err != nil {
			t.Errorf("the client stalled in its %s was not cut off within 25s: %v", name, err)
		}
	}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/payment-operator/payment-operator/hack/controlplane"
)

func readFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// user drives a stack the way a person does: kubectl with YAML, and the
// simulator's HTTP API.
type user struct {
	t     *testing.T
	stack *controlplane.Stack
}

func (u user) kubectl(stdin string, args ...string) string {
	u.t.Helper()
	var input []byte
	if stdin != "" {
		input = []byte(stdin)
	}
	out, err := u.stack.Kubectl(input, args...)
	if err != nil {
		u.t.Fatal(err)
	}
	return out
}

// applyProvider applies the API key Secret and a PaymentProvider named
// simulator whose webhook URL points at callbackURL.
func (u user) applyProvider(callbackURL, pollInterval string, requestsPerSecond int) {
	u.t.Helper()
	u.kubectl(fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: simulator-credentials
  namespace: default
stringData:
  apiKey: sk_test_simulator
---
apiVersion: payments.paymentoperator.dev/v1alpha1
kind: PaymentProvider
metadata:
  name: simulator
  namespace: default
spec:
  type: Simulator
  endpoint: %s
  credentialsSecretRef: {name: simulator-credentials, key: apiKey}
  webhook:
    url: %s/hooks/default/simulator
    signingSecretRef: {name: simulator-signing-secret, key: secret}
  pollInterval: %s
  rateLimit: {requestsPerSecond: %d, burst: %d}
`, u.stack.SimulatorURL, callbackURL, pollInterval, requestsPerSecond, requestsPerSecond), "apply", "-f", "-")
	u.waitFor(30*time.Second, "provider Ready", func() (bool, string) {
		ready := u.kubectl("", "get", "paymentprovider", "simulator", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return ready == "True", "Ready=" + ready
	})
}

// paymentYAML returns a Payment manifest of 19.99 USD.
func paymentYAML(name, token string) string {
	return fmt.Sprintf(`apiVersion: payments.paymentoperator.dev/v1alpha1
kind: Payment
metadata:
  name: %s
  namespace: default
spec:
  providerRef: {name: simulator}
  amount: 1999
  currency: USD
  paymentMethod: %s
---
`, name, token)
}

func (u user) applyPayments(manifests ...string) {
	u.t.Helper()
	u.kubectl(strings.Join(manifests, ""), "apply", "-f", "-")
}

func (u user) field(kind, name, jsonpath string) string {
	u.t.Helper()
	return u.kubectl("", "get", kind, name, "-o", "jsonpath="+jsonpath)
}

// phases returns every Payment's phase by name.
func (u user) phases() map[string]string {
	u.t.Helper()
	return parsePhases(u.kubectl("", "get", "payments", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.phase}{"\n"}{end}`))
}

func (u user) waitForPhase(name, phase string, timeout time.Duration) {
	u.t.Helper()
	u.waitFor(timeout, "payment "+name+" in phase "+phase, func() (bool, string) {
		got := u.field("payment", name, "{.status.phase}")
		return got == phase, "phase " + got
	})
}

func (u user) waitFor(timeout time.Duration, what string, check func() (bool, string)) {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// simPayment is a payment as GET /_simulator/payments lists it.
type simPayment struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	IdempotencyKey string            `json:"idempotency_key"`
	Metadata       map[string]string `json:"metadata"`
}

// simPayments returns every payment the simulator holds.
func (u user) simPayments() []simPayment {
	u.t.Helper()
	var list struct {
		Data []simPayment `json:"data"`
	}
	u.simGet("/_simulator/payments", &list)
	return list.Data
}

// chargesFor returns the simulator's payments with the idempotency key.
func (u user) chargesFor(key string) []simPayment {
	u.t.Helper()
	var charges []simPayment
	for _, payment := range u.simPayments() {
		if payment.IdempotencyKey == key {
			charges = append(charges, payment)
		}
	}
	return charges
}

type simStats struct {
	APIRequests           int64 `json:"api_requests"`
	PaymentCreates        int64 `json:"payment_creates"`
	CallbacksSent         int64 `json:"callbacks_sent"`
	CallbacksAcknowledged int64 `json:"callbacks_acknowledged"`
	CallbacksLost         int64 `json:"callbacks_lost"`
	CallbacksDuplicated   int64 `json:"callbacks_duplicated"`
}

func (u user) simStats() simStats {
	u.t.Helper()
	var stats simStats
	u.simGet("/_simulator/stats", &stats)
	return stats
}

func (u user) simGet(path string, out any) {
	u.t.Helper()
	resp, err := http.Get(u.stack.SimulatorURL + path)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		u.t.Fatalf("GET %s: %v", path, err)
	}
}

// simSwitch posts to a test-only switch of the simulator, such as
// /_simulator/outage?duration=60s.
func (u user) simSwitch(path string) {
	u.t.Helper()
	resp, err := http.Post(u.stack.SimulatorURL+path, "application/json", bytes.NewReader(nil))
	if err != nil {
		u.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		u.t.Fatalf("POST %s answered %d", path, resp.StatusCode)
	}
}

// eventReasons returns the reasons of the Events about the named object.
func (u user) eventReasons(name string) string {
	u.t.Helper()
	return u.kubectl("", "get", "events", "--field-selector", "involvedObject.name="+name, "-o", `jsonpath={range .items[*]}{.reason}{" "}{end}`)
}

func runCommand(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, stderr.String())
	}
	return out, nil
}

// simEndpoints returns how many callback endpoints the simulator holds.
func (u user) simEndpoints() int {
	u.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u.stack.SimulatorURL+"/v1/callback_endpoints", nil)
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_test_simulator")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		u.t.Fatal(err)
	}
	return len(list.Data)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

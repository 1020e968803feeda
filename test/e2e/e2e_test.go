// Package e2e drives the built manager and psp-simulator binaries with
// kubectl against a local control plane, the way a user of make demo does.
package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/payment-operator/payment-operator/hack/controlplane"
)

func startStack(t *testing.T, opts controlplane.StackOptions) *controlplane.Stack {
	t.Helper()
	opts.Dir = t.TempDir()
	stack, err := controlplane.StartStack(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stack.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
		if t.Failed() {
			t.Logf("manager log:\n%s", readFile(stack.Manager.LogPath))
		}
	})
	return stack
}

func TestSamplesSettle(t *testing.T) {
	metricsAddr, err := controlplane.FreeAddress()
	if err != nil {
		t.Fatal(err)
	}
	stack := startStack(t, controlplane.StackOptions{
		SimulatorArgs: []string{"--processing-delay=1s"},
		ManagerArgs:   []string{"--metrics-bind-address=" + metricsAddr},
	})
	samples, err := stack.LocalSamples()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Kubectl(samples, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{"order-1001": "Succeeded", "order-1002": "Failed", "order-1003": "RequiresAction"}
	var table string
	deadline := time.Now().Add(60 * time.Second)
	for {
		phases, err := stack.Kubectl(nil, "get", "payments", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.phase}{"\n"}{end}`)
		if err != nil {
			t.Fatal(err)
		}
		if got := parsePhases(phases); equalPhases(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payments did not reach %v within 60s; kubectl printed:\n%s", want, phases)
		}
		time.Sleep(500 * time.Millisecond)
	}

	table, err = stack.Kubectl(nil, "get", "payments")
	if err != nil {
		t.Fatal(err)
	}
	for _, column := range []string{"AMOUNT", "PROVIDER", "PHASE", "PROVIDER-ID", "AGE"} {
		if !strings.Contains(table, column) {
			t.Errorf("kubectl get payments has no %s column:\n%s", column, table)
		}
	}
	for _, row := range [][]string{
		{"order-1001", "19.99 USD", "Succeeded", "pay_"},
		{"order-1002", "250.00 EUR", "Failed", "pay_"},
		{"order-1003", "4500 JPY", "RequiresAction", "pay_"},
	} {
		if line := lineWith(table, row[0]); !containsAll(line, row[1:]...) {
			t.Errorf("kubectl get payments row %q lacks %v", line, row[1:])
		}
	}

	described, err := stack.Kubectl(nil, "describe", "payment", "order-1002")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"insufficient_funds", "The card has insufficient funds", "Submitted", "Failed"} {
		if !strings.Contains(described, want) {
			t.Errorf("kubectl describe payment order-1002 lacks %q:\n%s", want, described)
		}
	}

	metrics := httpGet(t, "http://"+metricsAddr+"/metrics")
	for _, want := range []string{
		`payment_operator_callbacks_total{code="200"}`,
		`payment_operator_payments_settled_total{path="callback",phase="Succeeded"} 1`,
		`payment_operator_payments_settled_total{path="callback",phase="Failed"} 1`,
		`payment_operator_psp_requests_total{operation="create",outcome="ok"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("the metrics endpoint lacks %s", want)
		}
	}
}

func parsePhases(output string) map[string]string {
	phases := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(output), "\n") {
		if name, phase, ok := strings.Cut(line, "="); ok {
			phases[name] = phase
		}
	}
	return phases
}

func equalPhases(got, want map[string]string) bool {
	for name, phase := range want {
		if got[name] != phase {
			return false
		}
	}
	return true
}

func lineWith(table, name string) string {
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}

func containsAll(s string, parts ...string) bool {
	for _, part := range parts {
		if !strings.Contains(s, part) {
			return false
		}
	}
	return true
}

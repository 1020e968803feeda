package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payment-operator/payment-operator/hack/controlplane"
)

// A manager killed right after the PSP accepted a create, or right before
// it writes a terminal phase, must after a restart leave exactly one
// payment at the PSP and converge to the PSP's state.
func TestCrashRecovery(t *testing.T) {
	cases := []struct {
		reason        string
		failpoint     string
		simulatorArgs []string
		pollInterval  string
		// wantPhaseAtCrash is the Payment's phase when the manager died.
		wantPhaseAtCrash string
		// wantLookup means the restarted manager must find the earlier create
		// at the PSP itself: callbacks are lost, so none can tell it the id.
		wantLookup bool
	}{
		{reason: "crash after the PSP create", failpoint: "after-psp-create", pollInterval: "1h",
			wantPhaseAtCrash: ""},
		{reason: "crash after the PSP create, with the key forgotten by the PSP", failpoint: "after-psp-create",
			simulatorArgs: []string{"--forget-idempotency-keys", "--lose-callbacks=1"}, pollInterval: "2s",
			wantPhaseAtCrash: "", wantLookup: true},
		{reason: "crash during the terminal status write", failpoint: "before-terminal-write", pollInterval: "1h",
			wantPhaseAtCrash: "Processing"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			stack := startStack(t, controlplane.StackOptions{
				SimulatorArgs: append([]string{"--processing-delay=1s", "--retry-initial=500ms", "--retry-max=2s"}, tc.simulatorArgs...),
				ManagerArgs:   []string{"--test-failpoints=" + tc.failpoint},
			})
			u := user{t, stack}
			u.applyProvider(stack.CallbackURL, tc.pollInterval, 10)
			u.applyPayments(paymentYAML("crash", "pm_success"))

			select {
			case <-stack.Manager.Exited():
			case <-time.After(30 * time.Second):
				t.Fatal("the manager did not reach the failpoint within 30s")
			}
			if log := readFile(stack.Manager.LogPath); !strings.Contains(log, "failpoint "+tc.failpoint) {
				t.Fatalf("the manager exited, but not at failpoint %s:\n%s", tc.failpoint, log)
			}
			uid := u.field("payment", "crash", "{.metadata.uid}")
			if got := u.field("payment", "crash", "{.status.phase}"); got != tc.wantPhaseAtCrash {
				t.Errorf("phase at the crash = %q, want %q", got, tc.wantPhaseAtCrash)
			}
			if charges := u.chargesFor(uid); len(charges) != 1 {
				t.Fatalf("the PSP holds %d payments for the key after the crash, want 1", len(charges))
			}

			restarted, err := stack.StartManager("manager-restarted.log", stack.CallbackAddr)
			if err != nil {
				t.Fatal(err)
			}
			u.waitForPhase("crash", "Succeeded", 60*time.Second)

			charges := u.chargesFor(uid)
			if len(charges) != 1 {
				t.Fatalf("the PSP holds %d payments for the key after the restart, want 1: %+v", len(charges), charges)
			}
			if id := u.field("payment", "crash", "{.status.providerPaymentID}"); id != charges[0].ID {
				t.Errorf("providerPaymentID = %q, want the PSP's %q", id, charges[0].ID)
			}
			if tc.wantLookup && !strings.Contains(readFile(restarted.LogPath), "found the payment of an earlier create at the PSP") {
				t.Error("the restarted manager did not look up the earlier create before submitting")
			}
			if endpoints := u.simEndpoints(); endpoints != 1 {
				t.Errorf("the PSP holds %d callback endpoints after the restart, want 1", endpoints)
			}
			if t.Failed() {
				t.Logf("restarted manager log:\n%s", readFile(restarted.LogPath))
			}
		})
	}
}

// While kube-apiserver is stopped, callbacks get 503 and the simulator
// retries them. Afterwards every payment reaches its final phase, and the
// manager (without leader election) rides out the outage without exiting.
func TestAPIServerOutage(t *testing.T) {
	stack := startStack(t, controlplane.StackOptions{
		SimulatorArgs: []string{"--processing-delay=3s", "--retry-initial=1s", "--retry-max=5s"},
	})
	u := user{t, stack}
	u.applyProvider(stack.CallbackURL, "1h", 10)
	want := map[string]string{"outage-1": "Succeeded", "outage-2": "Failed", "outage-3": "RequiresAction", "outage-4": "Succeeded"}
	u.applyPayments(paymentYAML("outage-1", "pm_success"), paymentYAML("outage-2", "pm_decline_card_declined"),
		paymentYAML("outage-3", "pm_requires_action"), paymentYAML("outage-4", "pm_success"))
	u.waitFor(20*time.Second, "every payment Processing", func() (bool, string) {
		phases := u.phases()
		for name := range want {
			if phases[name] != "Processing" {
				return false, fmt.Sprint(phases)
			}
		}
		return true, ""
	})

	pid, err := stack.APIServerPID()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	before := u.simStats()
	time.Sleep(30 * time.Second)
	during := u.simStats()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	unacknowledged := (during.CallbacksSent - before.CallbacksSent) - (during.CallbacksAcknowledged - before.CallbacksAcknowledged)
	t.Logf("during the 30s outage the simulator sent %d callback attempts, %d unacknowledged",
		during.CallbacksSent-before.CallbacksSent, unacknowledged)
	if unacknowledged == 0 {
		t.Error("no callback went unacknowledged during the outage, so the test did not exercise it")
	}
	u.waitFor(90*time.Second, "every payment in its final phase", func() (bool, string) {
		return equalPhases(u.phases(), want), fmt.Sprint(u.phases())
	})
	select {
	case <-stack.Manager.Exited():
		t.Errorf("the manager exited during the API server outage:\n%s", readFile(stack.Manager.LogPath))
	default:
	}
	if log := readFile(stack.Manager.LogPath); !strings.Contains(log, `"status":503`) {
		t.Error("the manager log shows no callback answered 503 during the outage")
	}
}

// A PSP that is down for 60s and then slow (2s a call) gets few requests
// during the outage, shows up in a condition and an Event, and payments
// settle afterwards without anyone stepping in.
func TestPSPOutageThenSlow(t *testing.T) {
	stack := startStack(t, controlplane.StackOptions{
		SimulatorArgs: []string{"--processing-delay=1s"},
		ManagerArgs:   []string{"--psp-timeout=5s", "--retry-backoff-max=30s"},
	})
	u := user{t, stack}
	u.applyProvider(stack.CallbackURL, "1h", 10)

	u.simSwitch("/_simulator/outage?duration=60s")
	outageStart := time.Now()
	outageStarted := u.simStats()
	names := []string{"psp-down-1", "psp-down-2", "psp-down-3", "psp-down-4", "psp-down-5"}
	for _, name := range names {
		u.applyPayments(paymentYAML(name, "pm_success"))
	}
	u.waitFor(30*time.Second, "ProviderReachable=False", func() (bool, string) {
		got := u.field("payment", "psp-down-1", `{.status.conditions[?(@.type=="ProviderReachable")].status}`)
		return got == "False", "ProviderReachable=" + got
	})
	if reasons := u.eventReasons("psp-down-1"); !strings.Contains(reasons, "ProviderUnreachable") {
		t.Errorf("no ProviderUnreachable event; events: %s", reasons)
	}
	time.Sleep(time.Until(outageStart.Add(55 * time.Second)))
	u.simSwitch("/_simulator/latency?duration=2s")
	time.Sleep(time.Until(outageStart.Add(60 * time.Second)))
	outageEnded := u.simStats()

	requests := outageEnded.APIRequests - outageStarted.APIRequests
	t.Logf("PSP requests during the 60s outage: %d for %d payments", requests, len(names))
	// Capped exponential backoff from 1s allows about seven attempts per
	// payment in 60s; a hot loop would make hundreds.
	if limit := int64(10 * len(names)); requests > limit {
		t.Errorf("%d PSP requests during the outage, want at most %d", requests, limit)
	}

	for _, name := range names {
		u.waitForPhase(name, "Succeeded", 90*time.Second)
		if got := u.field("payment", name, `{.status.conditions[?(@.type=="ProviderReachable")].status}`); got != "True" {
			t.Errorf("%s: ProviderReachable = %q after recovery, want True", name, got)
		}
		if charges := u.chargesFor(u.field("payment", name, "{.metadata.uid}")); len(charges) != 1 {
			t.Errorf("%s: the PSP holds %d payments for the key, want 1", name, len(charges))
		}
	}
}

// Two managers with leader election both serve callbacks. When the leader
// is killed, the other takes over within the lease duration, and no payment
// is created twice.
func TestTwoReplicasHandOver(t *testing.T) {
	electionArgs := []string{"--leader-elect", "--leader-election-namespace=default"}
	stack := startStack(t, controlplane.StackOptions{
		SimulatorArgs: []string{"--processing-delay=2s"},
		ManagerArgs:   electionArgs,
	})
	u := user{t, stack}
	leader := stack.Manager
	acquired := regexp.MustCompile(`(?i)(successfully acquired lease)`)
	if _, err := leader.WaitForLog(acquired, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	standbyAddr, err := controlplane.FreeAddress()
	if err != nil {
		t.Fatal(err)
	}
	standby, err := stack.StartManager("manager-standby.log", standbyAddr, electionArgs...)
	if err != nil {
		t.Fatal(err)
	}

	// The PSP calls the standby, so every callback proves that a replica
	// without the lease serves callbacks.
	u.applyProvider("http://"+standbyAddr, "1h", 10)
	u.applyPayments(paymentYAML("replica-1", "pm_success"), paymentYAML("replica-2", "pm_success"))
	u.waitForPhase("replica-1", "Succeeded", 30*time.Second)
	u.waitForPhase("replica-2", "Succeeded", 30*time.Second)
	if log := readFile(standby.LogPath); !strings.Contains(log, "callback stored") {
		t.Errorf("the standby stored no callback")
	}

	var manifests []string
	for i := 3; i <= 12; i++ {
		manifests = append(manifests, paymentYAML(fmt.Sprintf("replica-%d", i), "pm_success"))
	}
	u.applyPayments(manifests...)
	leader.Kill()
	killed := time.Now()
	if _, err := standby.WaitForLog(acquired, 40*time.Second); err != nil {
		t.Fatal(err)
	}
	takeover := time.Since(killed)
	t.Logf("the standby took over %s after the leader was killed", takeover.Round(100*time.Millisecond))
	// controller-runtime's default lease is 15s, retried every 2s.
	if takeover > 20*time.Second {
		t.Errorf("takeover took %s, want within the 15s lease plus one 2s retry", takeover)
	}

	for i := 1; i <= 12; i++ {
		name := fmt.Sprintf("replica-%d", i)
		u.waitForPhase(name, "Succeeded", 60*time.Second)
		if charges := u.chargesFor(u.field("payment", name, "{.metadata.uid}")); len(charges) != 1 {
			t.Errorf("%s: the PSP holds %d payments for the key, want 1", name, len(charges))
		}
	}
}

// Deleting an unsettled payment cancels it at the PSP first, and a settled
// one just goes. A cancel that the PSP rejects, or cannot take, is recorded
// in an Event and does not block the deletion for ever.
func TestDeleteInFlightPayment(t *testing.T) {
	// Lost callbacks keep settled payments Processing in the cluster, so
	// the PSP refuses to cancel them.
	stack := startStack(t, controlplane.StackOptions{
		SimulatorArgs: []string{"--processing-delay=1s", "--lose-callbacks=1"},
		ManagerArgs:   []string{"--cancel-timeout=10s", "--retry-backoff-max=2s"},
	})
	u := user{t, stack}
	u.applyProvider(stack.CallbackURL, "1h", 10)
	u.applyPayments(paymentYAML("delete-in-flight", "pm_requires_action"), paymentYAML("delete-settled-at-psp", "pm_success"),
		paymentYAML("delete-terminal", "pm_unknown"), paymentYAML("delete-psp-down", "pm_requires_action"))
	u.waitForPhase("delete-terminal", "Failed", 20*time.Second)
	for _, name := range []string{"delete-in-flight", "delete-settled-at-psp", "delete-psp-down"} {
		u.waitForPhase(name, "Processing", 20*time.Second)
	}
	time.Sleep(2 * time.Second) // the PSP settles pm_success and pm_requires_action after 1s
	inFlightID := u.field("payment", "delete-in-flight", "{.status.providerPaymentID}")
	settledID := u.field("payment", "delete-settled-at-psp", "{.status.providerPaymentID}")

	u.kubectl("", "delete", "payment", "delete-in-flight", "delete-settled-at-psp", "delete-terminal", "--timeout=30s")

	statuses := map[string]string{}
	for _, payment := range u.simPayments() {
		statuses[payment.ID] = payment.Status
	}
	if statuses[inFlightID] != "canceled" {
		t.Errorf("the in-flight payment is %q at the PSP, want canceled", statuses[inFlightID])
	}
	if statuses[settledID] != "succeeded" {
		t.Errorf("the settled payment is %q at the PSP, want succeeded", statuses[settledID])
	}
	if reasons := u.eventReasons("delete-in-flight"); !strings.Contains(reasons, "CanceledAtPSP") {
		t.Errorf("delete-in-flight events lack CanceledAtPSP: %s", reasons)
	}
	if reasons := u.eventReasons("delete-settled-at-psp"); !strings.Contains(reasons, "CancelRefused") {
		t.Errorf("delete-settled-at-psp events lack CancelRefused: %s", reasons)
	}

	// With the PSP down, the cancel is retried for --cancel-timeout, then given up.
	u.simSwitch("/_simulator/outage?duration=120s")
	started := time.Now()
	u.kubectl("", "delete", "payment", "delete-psp-down", "--timeout=60s")
	t.Logf("deletion with the PSP down took %s", time.Since(started).Round(time.Second))
	if reasons := u.eventReasons("delete-psp-down"); !strings.Contains(reasons, "CancelAbandoned") {
		t.Errorf("delete-psp-down events lack CancelAbandoned: %s", reasons)
	}
	if left := u.kubectl("", "get", "payments", "-o", "name"); strings.TrimSpace(left) != "" {
		t.Errorf("payments left after deletion: %s", left)
	}
}

// A restarted manager keeps to status.nextPollAt: it does not ask the PSP
// about every unresolved payment the moment it starts.
func TestRestartHonorsNextPollAt(t *testing.T) {
	stack := startStack(t, controlplane.StackOptions{SimulatorArgs: []string{"--processing-delay=500ms"}})
	u := user{t, stack}
	u.applyProvider(stack.CallbackURL, "1h", 50)
	var manifests []string
	for i := 0; i < 20; i++ {
		manifests = append(manifests, paymentYAML(fmt.Sprintf("unresolved-%02d", i), "pm_requires_action"))
	}
	u.applyPayments(manifests...)
	for i := 0; i < 20; i++ {
		u.waitForPhase(fmt.Sprintf("unresolved-%02d", i), "RequiresAction", 30*time.Second)
	}

	if err := stack.Manager.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	before := u.simStats()
	if _, err := stack.StartManager("manager-restarted.log", stack.CallbackAddr); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	after := u.simStats()

	// The provider's credentials check is the only call a restart makes.
	requests := after.APIRequests - before.APIRequests
	t.Logf("PSP requests in the 10s after a restart with 20 unresolved payments: %d", requests)
	if requests > 2 {
		t.Errorf("the restarted manager sent %d PSP requests, want at most 2: it polled before nextPollAt", requests)
	}
}

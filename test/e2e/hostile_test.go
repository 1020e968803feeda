package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/hack/controlplane"
)

// statusWrites counts, per Payment, the writes that changed its status, as
// a watch reports them.
type statusWrites struct {
	mu     sync.Mutex
	last   map[string]v1alpha1.PaymentStatus
	counts map[string]int
}

func watchStatusWrites(t *testing.T, stack *controlplane.Stack) *statusWrites {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	watcher, err := client.NewWithWatch(stack.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	events, err := watcher.Watch(ctx, &v1alpha1.PaymentList{}, client.InNamespace("default"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); events.Stop() })

	writes := &statusWrites{last: map[string]v1alpha1.PaymentStatus{}, counts: map[string]int{}}
	go func() {
		for event := range events.ResultChan() {
			payment, ok := event.Object.(*v1alpha1.Payment)
			if !ok || (event.Type != watch.Added && event.Type != watch.Modified) {
				continue
			}
			writes.mu.Lock()
			if previous, seen := writes.last[payment.Name]; seen && !equality.Semantic.DeepEqual(previous, payment.Status) {
				writes.counts[payment.Name]++
			}
			writes.last[payment.Name] = payment.Status
			writes.mu.Unlock()
		}
	}()
	return writes
}

func (w *statusWrites) of(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[name]
}

// 500 payments go through a simulator that loses 30% of callbacks,
// duplicates 20% and delays and reorders the rest, with a 5s poll interval.
// Every Payment must end in the simulator's true phase, each idempotency key
// must be charged once, and the status writes per payment must stay bounded.
func TestHostileCallbackStream(t *testing.T) {
	const count = 500
	stack := startStack(t, controlplane.StackOptions{
		SimulatorArgs: []string{"--processing-delay=1s", "--slow-delay=4s", "--lose-callbacks=0.3", "--duplicate-callbacks=0.2",
			"--delay-callbacks=3s", "--retry-initial=500ms", "--retry-max=2s", "--seed=7"},
		ManagerArgs: []string{"--max-concurrent-reconciles=8"},
	})
	u := user{t, stack}
	u.applyProvider(stack.CallbackURL, "5s", 200)
	writes := watchStatusWrites(t, stack)

	tokens := []string{"pm_success", "pm_success", "pm_success", "pm_success", "pm_success", "pm_success",
		"pm_decline_insufficient_funds", "pm_decline_card_declined", "pm_requires_action", "pm_slow"}
	var manifests []string
	for i := 0; i < count; i++ {
		manifests = append(manifests, paymentYAML(fmt.Sprintf("hostile-%03d", i), tokens[i%len(tokens)]))
	}
	started := time.Now()
	u.applyPayments(manifests...)

	phaseOf := map[string]string{"succeeded": "Succeeded", "failed": "Failed", "requires_action": "RequiresAction", "canceled": "Canceled"}
	var mismatches []string
	u.waitFor(5*time.Minute, "every payment in the simulator's phase", func() (bool, string) {
		phases := u.phases()
		byUID := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(u.kubectl("", "get", "payments", "-o",
			`jsonpath={range .items[*]}{.metadata.uid}={.metadata.name}{"\n"}{end}`)), "\n") {
			if uid, name, ok := strings.Cut(line, "="); ok {
				byUID[uid] = name
			}
		}
		mismatches = mismatches[:0]
		for _, payment := range u.simPayments() {
			name := byUID[payment.IdempotencyKey]
			if want := phaseOf[payment.Status]; want == "" || phases[name] != want {
				mismatches = append(mismatches, fmt.Sprintf("%s: cluster %q, PSP %q", name, phases[name], payment.Status))
			}
		}
		settled := len(mismatches) == 0 && len(byUID) == count
		return settled, fmt.Sprintf("%d mismatches, first: %v", len(mismatches), mismatches[:min(len(mismatches), 3)])
	})
	t.Logf("%d payments reached the PSP's phase %s after the apply", count, time.Since(started).Round(time.Second))

	perKey := map[string]int{}
	for _, payment := range u.simPayments() {
		perKey[payment.IdempotencyKey]++
	}
	if len(perKey) != count {
		t.Errorf("the PSP holds payments for %d keys, want %d", len(perKey), count)
	}
	for key, charges := range perKey {
		if charges != 1 {
			t.Errorf("key %s was charged %d times", key, charges)
		}
	}

	// A settled payment needs one write when the PSP accepts it and one
	// when it settles, whether a callback or a poll reports the settlement.
	phases := u.phases()
	var settledWrites, actionWrites []int
	for i := 0; i < count; i++ {
		name := fmt.Sprintf("hostile-%03d", i)
		if phases[name] == "RequiresAction" {
			actionWrites = append(actionWrites, writes.of(name))
			continue
		}
		settledWrites = append(settledWrites, writes.of(name))
		if n := writes.of(name); n > 4 {
			t.Errorf("%s (%s) had %d status writes, want at most 4", name, phases[name], n)
		}
	}
	stats := u.simStats()
	t.Logf("callbacks: %d sent, %d acknowledged, %d events lost, %d duplicated",
		stats.CallbacksSent, stats.CallbacksAcknowledged, stats.CallbacksLost, stats.CallbacksDuplicated)
	t.Logf("status writes per settled payment: %s", summary(settledWrites))
	t.Logf("status writes per RequiresAction payment (polled every 5s until the end): %s", summary(actionWrites))
}

func summary(values []int) string {
	if len(values) == 0 {
		return "none"
	}
	sort.Ints(values)
	total := 0
	for _, v := range values {
		total += v
	}
	return fmt.Sprintf("min %d, median %d, mean %.2f, max %d over %d payments",
		values[0], values[len(values)/2], float64(total)/float64(len(values)), values[len(values)-1], len(values))
}

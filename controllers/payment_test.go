package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/simulator"
)

// fastConfig settles payments within a moment and delivers every callback.
func fastConfig() simulator.Config {
	cfg := simulator.DefaultConfig()
	cfg.ProcessingDelay = 300 * time.Millisecond
	cfg.RetryInitial = 200 * time.Millisecond
	cfg.RetryMax = time.Second
	cfg.Seed = 1
	return cfg
}

func TestPaymentOutcomes(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	cases := []struct {
		reason    string
		token     string
		wantPhase v1alpha1.PaymentPhase
		wantCode  string
		wantEvent string
	}{
		{reason: "success settles", token: "pm_success", wantPhase: v1alpha1.PaymentSucceeded, wantEvent: "Settled"},
		{reason: "decline fails with the PSP's code", token: "pm_decline_insufficient_funds", wantPhase: v1alpha1.PaymentFailed, wantCode: "insufficient_funds", wantEvent: "Failed"},
		{reason: "customer action is required", token: "pm_requires_action", wantPhase: v1alpha1.PaymentRequiresAction, wantEvent: "RequiresAction"},
		{reason: "an unknown token is rejected for good", token: "pm_unknown", wantPhase: v1alpha1.PaymentFailed, wantCode: "invalid_request", wantEvent: "Rejected"},
	}
	for i, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			payment := p.createPayment(t, "outcome-"+string(rune('a'+i)), tc.token)

			settled := waitForPhase(t, payment, tc.wantPhase, 20*time.Second)

			if settled.Status.FailureCode != tc.wantCode {
				t.Errorf("failureCode = %q, want %q", settled.Status.FailureCode, tc.wantCode)
			}
			if tc.wantCode != "" && settled.Status.FailureMessage == "" {
				t.Error("failureMessage is empty for a failed payment")
			}
			if strings.Contains(fmt.Sprint(settled.Status), tc.token) {
				t.Errorf("the status contains the payment-method token %s: %+v", tc.token, settled.Status)
			}
			if settled.Status.DisplayAmount != "19.99 USD" {
				t.Errorf("displayAmount = %q, want \"19.99 USD\"", settled.Status.DisplayAmount)
			}
			if settled.Status.IdempotencyKey != string(settled.UID) {
				t.Errorf("idempotencyKey = %q, want the UID %q", settled.Status.IdempotencyKey, settled.UID)
			}
			wantCharges := 1
			if tc.wantCode == "invalid_request" {
				wantCharges = 0
			}
			if got := p.chargesFor(string(settled.UID)); got != wantCharges {
				t.Errorf("simulator holds %d payments for the key, want %d", got, wantCharges)
			}
			waitFor(t, 10*time.Second, "event "+tc.wantEvent, func() (bool, string) {
				reasons := eventReasons(t, settled)
				return hasReason(reasons, tc.wantEvent), joinReasons(reasons)
			})
		})
	}
}

func joinReasons(reasons []string) string { return strings.Join(reasons, ", ") }

func TestLostCallbackSettledByPoll(t *testing.T) {
	cfg := fastConfig()
	cfg.LoseCallbacks = 1
	p := newPSP(t, cfg, 2*time.Second)
	payment := p.createPayment(t, "lost-callback", "pm_success")

	settled := waitForPhase(t, payment, v1alpha1.PaymentSucceeded, 30*time.Second)

	if settled.Status.LastPolledAt == nil {
		t.Error("lastPolledAt is not set, so the poll did not settle the payment")
	}
	if settled.Status.NextPollAt != nil {
		t.Errorf("nextPollAt = %v on a terminal payment, want none", settled.Status.NextPollAt)
	}
	waitFor(t, 10*time.Second, "event ChangeFoundByPoll", func() (bool, string) {
		reasons := eventReasons(t, settled)
		return hasReason(reasons, "ChangeFoundByPoll"), joinReasons(reasons)
	})
}

func TestDuplicateAndStaleCallbacksWriteNothing(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	payment := p.createPayment(t, "duplicates", "pm_success")
	settled := waitForPhase(t, payment, v1alpha1.PaymentSucceeded, 20*time.Second)
	time.Sleep(time.Second) // let the simulator's own callbacks finish

	before := getPayment(t, payment).ResourceVersion
	for _, status := range []string{"succeeded", "succeeded", "processing", "requires_action", "failed"} {
		if code := p.sendCallback(t, settled, settled.Status.ProviderPaymentID, status); code != http.StatusOK {
			t.Errorf("callback %s answered %d, want 200", status, code)
		}
	}

	after := getPayment(t, payment)
	if after.ResourceVersion != before {
		t.Errorf("resourceVersion changed from %s to %s: a duplicate or stale callback wrote", before, after.ResourceVersion)
	}
	if after.Status.Phase != v1alpha1.PaymentSucceeded {
		t.Errorf("phase = %s, want Succeeded", after.Status.Phase)
	}
}

func TestCallbackBeforeProviderIDIsStored(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	// A payment whose provider has no credentials stays Pending, so the
	// operator never stores a provider id before the callback comes.
	const signingSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "no-credentials-signing", Namespace: p.namespace},
		StringData: map[string]string{"secret": signingSecret},
	})
	create(t, &v1alpha1.PaymentProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "no-credentials", Namespace: p.namespace},
		Spec: v1alpha1.PaymentProviderSpec{
			Type:                 v1alpha1.ProviderSimulator,
			Endpoint:             p.url,
			CredentialsSecretRef: v1alpha1.SecretKeyReference{Name: "missing", Key: "apiKey"},
			Webhook: v1alpha1.WebhookSpec{
				URL:              callbackURL + "/hooks/" + p.namespace + "/no-credentials",
				SigningSecretRef: v1alpha1.SecretKeyReference{Name: "no-credentials-signing", Key: "secret"},
			},
		},
	})
	payment := &v1alpha1.Payment{
		ObjectMeta: metav1.ObjectMeta{Name: "early-callback", Namespace: p.namespace},
		Spec: v1alpha1.PaymentSpec{
			ProviderRef: v1alpha1.LocalObjectReference{Name: "no-credentials"},
			Amount:      1999, Currency: "USD", PaymentMethod: "pm_success",
		},
	}
	create(t, payment)
	waitFor(t, 10*time.Second, "Submitted=False", func() (bool, string) {
		cond := meta.FindStatusCondition(getPayment(t, payment).Status.Conditions, v1alpha1.ConditionSubmitted)
		return cond != nil && cond.Status == metav1.ConditionFalse, "no condition yet"
	})

	early := &psp{namespace: p.namespace, provider: "no-credentials"}
	code := postSignedCallback(t, early, signingSecret, getPayment(t, payment), "pay_early", "succeeded")

	if code != http.StatusOK {
		t.Fatalf("callback answered %d, want 200", code)
	}
	stored := getPayment(t, payment)
	if stored.Status.ProviderPaymentID != "pay_early" {
		t.Errorf("providerPaymentID = %q, want pay_early matched through the metadata", stored.Status.ProviderPaymentID)
	}
	if stored.Status.Phase != v1alpha1.PaymentSucceeded {
		t.Errorf("phase = %s, want Succeeded", stored.Status.Phase)
	}
}

func TestMissingProviderKeepsPaymentPending(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	payment := &v1alpha1.Payment{
		ObjectMeta: metav1.ObjectMeta{Name: "waits-for-provider", Namespace: p.namespace},
		Spec: v1alpha1.PaymentSpec{
			ProviderRef: v1alpha1.LocalObjectReference{Name: "later"},
			Amount:      500, Currency: "EUR", PaymentMethod: "pm_success",
		},
	}
	create(t, payment)

	waitFor(t, 10*time.Second, "condition ProviderNotFound", func() (bool, string) {
		latest := getPayment(t, payment)
		cond := meta.FindStatusCondition(latest.Status.Conditions, v1alpha1.ConditionSubmitted)
		return cond != nil && cond.Reason == "ProviderNotFound" && latest.Status.Phase == v1alpha1.PaymentPending, string(latest.Status.Phase)
	})
	if got := p.chargesFor(string(payment.UID)); got != 0 {
		t.Fatalf("simulator holds %d payments before the provider exists, want 0", got)
	}

	p.createProvider(t, "later", time.Hour)

	settled := waitForPhase(t, payment, v1alpha1.PaymentSucceeded, 20*time.Second)
	if settled.Status.DisplayAmount != "5.00 EUR" {
		t.Errorf("displayAmount = %q, want \"5.00 EUR\"", settled.Status.DisplayAmount)
	}
}

func TestPSPOutageRecovers(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	resp, err := http.Post(p.url+"/_simulator/outage?duration=4s", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	payment := p.createPayment(t, "outage", "pm_success")

	waitFor(t, 10*time.Second, "ProviderReachable=False", func() (bool, string) {
		cond := meta.FindStatusCondition(getPayment(t, payment).Status.Conditions, v1alpha1.ConditionProviderReachable)
		return cond != nil && cond.Status == metav1.ConditionFalse, "no ProviderReachable=False yet"
	})

	settled := waitForPhase(t, payment, v1alpha1.PaymentSucceeded, 30*time.Second)
	if !meta.IsStatusConditionTrue(settled.Status.Conditions, v1alpha1.ConditionProviderReachable) {
		t.Errorf("ProviderReachable is not True after recovery: %v", settled.Status.Conditions)
	}
	if got := p.chargesFor(string(settled.UID)); got != 1 {
		t.Errorf("simulator holds %d payments for the key, want 1", got)
	}
	if !hasReason(eventReasons(t, settled), "ProviderUnreachable") {
		t.Errorf("no ProviderUnreachable event; events: %s", joinReasons(eventReasons(t, settled)))
	}
}

func TestSettleByCallbackWritesStatusTwice(t *testing.T) {
	p := newPSP(t, fastConfig(), time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := watchClient.Watch(ctx, &v1alpha1.PaymentList{}, client.InNamespace(p.namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Stop()

	payment := p.createPayment(t, "two-writes", "pm_success")
	waitForPhase(t, payment, v1alpha1.PaymentSucceeded, 20*time.Second)
	time.Sleep(2 * time.Second) // late duplicates and the processing callback must change nothing

	var phases []v1alpha1.PaymentPhase
	var last *v1alpha1.PaymentStatus
	for done := false; !done; {
		select {
		case event := <-events.ResultChan():
			seen, ok := event.Object.(*v1alpha1.Payment)
			if !ok || seen.Name != payment.Name {
				continue
			}
			if last != nil && !equality.Semantic.DeepEqual(*last, seen.Status) {
				phases = append(phases, seen.Status.Phase)
			}
			last = seen.Status.DeepCopy()
		case <-time.After(500 * time.Millisecond):
			done = true
		}
	}
	want := []v1alpha1.PaymentPhase{v1alpha1.PaymentProcessing, v1alpha1.PaymentSucceeded}
	if diff := cmp.Diff(want, phases); diff != "" {
		t.Errorf("status writes, by the phase each wrote (-want, +got):\n%s", diff)
	}
}

package lifecycle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/psp"
)

func TestAdvance(t *testing.T) {
	const id = "pay_1"
	cases := []struct {
		reason      string
		from        v1alpha1.PaymentPhase
		recordedID  string
		reported    psp.Payment
		wantChanged bool
		wantPhase   v1alpha1.PaymentPhase
		wantErr     bool
	}{
		{reason: "a new payment moves to Processing and records the id", from: v1alpha1.PaymentPending,
			reported: psp.Payment{ID: id, Status: psp.StatusProcessing}, wantChanged: true, wantPhase: v1alpha1.PaymentProcessing},
		{reason: "an empty phase counts as Pending", from: "",
			reported: psp.Payment{ID: id, Status: psp.StatusSucceeded}, wantChanged: true, wantPhase: v1alpha1.PaymentSucceeded},
		{reason: "Processing settles", from: v1alpha1.PaymentProcessing, recordedID: id,
			reported: psp.Payment{ID: id, Status: psp.StatusSucceeded}, wantChanged: true, wantPhase: v1alpha1.PaymentSucceeded},
		{reason: "Processing fails with the decline", from: v1alpha1.PaymentProcessing, recordedID: id,
			reported: psp.Payment{ID: id, Status: psp.StatusFailed, FailureCode: "card_declined"}, wantChanged: true, wantPhase: v1alpha1.PaymentFailed},
		{reason: "Processing needs customer action", from: v1alpha1.PaymentProcessing, recordedID: id,
			reported: psp.Payment{ID: id, Status: psp.StatusRequiresAction}, wantChanged: true, wantPhase: v1alpha1.PaymentRequiresAction},
		{reason: "RequiresAction is canceled", from: v1alpha1.PaymentRequiresAction, recordedID: id,
			reported: psp.Payment{ID: id, Status: psp.StatusCanceled}, wantChanged: true, wantPhase: v1alpha1.PaymentCanceled},
		{reason: "a duplicate report writes nothing", from: v1alpha1.PaymentProcessing, recordedID: id,
			reported: psp.Payment{ID: id, Status: psp.StatusProcessing}, wantPhase: v1alpha1.PaymentProcessing},
		{reason: "a stale Processing after RequiresAction writes nothing", from: v1alpha1.PaymentRequiresAction, recordedID: id,
			reported: psp.Payment{ID: id, Status: psp.StatusProcessing}, wantPhase: v1alpha1.PaymentRequiresAction},
		{reason: "a stale Processing after success writes nothing", from: v1alpha1.PaymentSucceeded, recordedID: id,
			reported: psp.Payment{ID: id, Status: psp.StatusProcessing}, wantPhase: v1alpha1.PaymentSucceeded},
		{reason: "a terminal phase never moves to another terminal phase", from: v1alpha1.PaymentSucceeded, recordedID: id,
			reported: psp.Payment{ID: id, Status: psp.StatusFailed}, wantPhase: v1alpha1.PaymentSucceeded},
		{reason: "Failed is not replaced by Succeeded", from: v1alpha1.PaymentFailed, recordedID: id,
			reported: psp.Payment{ID: id, Status: psp.StatusSucceeded}, wantPhase: v1alpha1.PaymentFailed},
		{reason: "a report about another provider payment is an error", from: v1alpha1.PaymentProcessing, recordedID: id,
			reported: psp.Payment{ID: "pay_other", Status: psp.StatusSucceeded}, wantPhase: v1alpha1.PaymentProcessing, wantErr: true},
		{reason: "an unknown status is an error", from: v1alpha1.PaymentProcessing, recordedID: id,
			reported: psp.Payment{ID: id, Status: "refunded"}, wantPhase: v1alpha1.PaymentProcessing, wantErr: true},
		{reason: "a report without an id is an error", from: v1alpha1.PaymentProcessing, recordedID: id,
			reported: psp.Payment{Status: psp.StatusSucceeded}, wantPhase: v1alpha1.PaymentProcessing, wantErr: true},
	}
	now := metav1.NewTime(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			status := &v1alpha1.PaymentStatus{Phase: tc.from, ProviderPaymentID: tc.recordedID}
			before := status.DeepCopy()

			changed, err := Advance(status, &tc.reported, 3, now)

			if (err != nil) != tc.wantErr {
				t.Fatalf("Advance error = %v, want error: %v", err, tc.wantErr)
			}
			if changed != tc.wantChanged {
				t.Errorf("Advance changed = %v, want %v", changed, tc.wantChanged)
			}
			if status.Phase != tc.wantPhase {
				t.Errorf("phase = %q, want %q", status.Phase, tc.wantPhase)
			}
			if !changed {
				if diff := cmp.Diff(before, status); diff != "" {
					t.Errorf("status changed although Advance reported no change (-before, +after):\n%s", diff)
				}
				return
			}
			if status.ProviderPaymentID != id {
				t.Errorf("providerPaymentID = %q, want %q", status.ProviderPaymentID, id)
			}
			if tc.wantPhase.IsTerminal() && status.SettledAt == nil {
				t.Error("settledAt is not set on a terminal phase")
			}
			if tc.wantPhase == v1alpha1.PaymentFailed && status.FailureCode != tc.reported.FailureCode {
				t.Errorf("failureCode = %q, want %q", status.FailureCode, tc.reported.FailureCode)
			}
		})
	}
}

// BenchmarkAdvance measures the transition function that both the callback
// and the poll path run for every report.
func BenchmarkAdvance(b *testing.B) {
	reported := &psp.Payment{ID: "pay_1", Status: psp.StatusSucceeded}
	now := metav1.Now()
	b.ReportAllocs()
	for b.Loop() {
		status := v1alpha1.PaymentStatus{Phase: v1alpha1.PaymentProcessing, ProviderPaymentID: "pay_1"}
		if _, err := Advance(&status, reported, 1, now); err != nil {
			b.Fatal(err)
		}
	}
}

// Package lifecycle holds the one transition function that both the poll
// path (the Payment controller) and the callback path (the webhook server)
// apply to a Payment's status, so that the two can never disagree.
package lifecycle

import (
	"fmt"
	"math/rand/v2"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/psp"
)

// Phase returns the Payment phase for a PSP status, or "" for a status it
// does not know.
func Phase(status psp.Status) v1alpha1.PaymentPhase {
	switch status {
	case psp.StatusProcessing:
		return v1alpha1.PaymentProcessing
	case psp.StatusRequiresAction:
		return v1alpha1.PaymentRequiresAction
	case psp.StatusSucceeded:
		return v1alpha1.PaymentSucceeded
	case psp.StatusFailed:
		return v1alpha1.PaymentFailed
	case psp.StatusCanceled:
		return v1alpha1.PaymentCanceled
	}
	return ""
}

// rank orders the phases; a Payment only ever moves to a higher rank. All
// terminal phases share the top rank, so none can replace another.
func rank(phase v1alpha1.PaymentPhase) int {
	switch phase {
	case v1alpha1.PaymentProcessing:
		return 1
	case v1alpha1.PaymentRequiresAction:
		return 2
	case v1alpha1.PaymentSucceeded, v1alpha1.PaymentFailed, v1alpha1.PaymentCanceled:
		return 3
	}
	return 0 // Pending, or no phase yet
}

// Advance moves status forward to the state the PSP reported and returns
// true when it changed anything. A report that is stale, repeated or about
// a phase the status already passed changes nothing, so the caller writes
// nothing. A report about another provider payment than the one recorded
// is an error.
func Advance(status *v1alpha1.PaymentStatus, reported *psp.Payment, generation int64, now metav1.Time) (bool, error) {
	if reported == nil || reported.ID == "" {
		return false, fmt.Errorf("report without a provider payment id")
	}
	if status.ProviderPaymentID != "" && status.ProviderPaymentID != reported.ID {
		return false, fmt.Errorf("report about provider payment %s, but the Payment is recorded as %s", reported.ID, status.ProviderPaymentID)
	}
	next := Phase(reported.Status)
	if next == "" {
		return false, fmt.Errorf("provider payment %s has unknown status %q", reported.ID, reported.Status)
	}
	if rank(next) <= rank(status.Phase) {
		return false, nil
	}

	status.Phase = next
	status.ObservedGeneration = generation
	if status.ProviderPaymentID == "" {
		status.ProviderPaymentID = reported.ID
	}
	if status.SubmittedAt == nil {
		status.SubmittedAt = &now
	}
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type:               v1alpha1.ConditionSubmitted,
		Status:             metav1.ConditionTrue,
		Reason:             "Accepted",
		Message:            "The PSP accepted the payment as " + reported.ID,
		ObservedGeneration: generation,
	})

	if !next.IsTerminal() {
		return true, nil
	}
	if next == v1alpha1.PaymentFailed {
		// NOTE: the decline message is stored as the PSP sent it. Unlike the
		// create path, nothing here removes a payment-method token from it.
		status.FailureCode = reported.FailureCode
		status.FailureMessage = reported.FailureMessage
	}
	status.SettledAt = &now
	status.NextPollAt = nil
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type:               v1alpha1.ConditionSettled,
		Status:             metav1.ConditionTrue,
		Reason:             string(next),
		Message:            settledMessage(next, reported),
		ObservedGeneration: generation,
	})
	return true, nil
}

func settledMessage(phase v1alpha1.PaymentPhase, reported *psp.Payment) string {
	switch phase {
	case v1alpha1.PaymentSucceeded:
		return "The PSP settled the payment"
	case v1alpha1.PaymentCanceled:
		return "The payment was canceled at the PSP"
	}
	if reported.FailureCode == "" {
		return "The PSP failed the payment"
	}
	return fmt.Sprintf("The PSP declined the payment: %s: %s", reported.FailureCode, reported.FailureMessage)
}

// Describe fills the status fields that follow from the spec alone: the
// phase Pending for a new payment, the idempotency key and the amount for
// display. Every status write calls it, so the first write, whichever path
// makes it, shows them.
func Describe(payment *v1alpha1.Payment) {
	if payment.Status.Phase == "" {
		payment.Status.Phase = v1alpha1.PaymentPending
	}
	payment.Status.IdempotencyKey = payment.IdempotencyKey()
	payment.Status.DisplayAmount = v1alpha1.FormatAmount(payment.Spec.Amount, payment.Spec.Currency)
}

// SchedulePoll sets status.nextPollAt to now plus interval plus a random
// jitter of up to a tenth of interval, so that payments created together are
// not polled together. A terminal payment is never polled again.
func SchedulePoll(status *v1alpha1.PaymentStatus, interval time.Duration, now time.Time) {
	if status.Phase.IsTerminal() {
		status.NextPollAt = nil
		return
	}
	jitter := time.Duration(0)
	if tenth := int64(interval / 10); tenth > 0 {
		jitter = time.Duration(rand.Int64N(tenth)) //nolint:gosec // jitter needs no secrecy
	}
	next := metav1.NewTime(now.Add(interval + jitter).Truncate(time.Second))
	status.NextPollAt = &next
}

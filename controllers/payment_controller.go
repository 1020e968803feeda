// Package controllers holds the reconcilers of payment-operator: the Payment
// controller submits payments and polls unresolved ones, the
// PaymentProvider controller checks credentials and registers the callback
// URL with the PSP.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/internal/failpoint"
	"github.com/payment-operator/payment-operator/internal/lifecycle"
	"github.com/payment-operator/payment-operator/internal/metrics"
	"github.com/payment-operator/payment-operator/internal/providers"
	"github.com/payment-operator/payment-operator/psp"
)

// actionSubmit names the create call in Events and conditions.
const actionSubmit = "Submit"

// ProviderRefIndex is the field index of Payments by spec.providerRef.name.
const ProviderRefIndex = "spec.providerRef.name"

const (
	// CreateAttemptedAnnotation records, before the first create call to the
	// PSP, when it was made. A Payment that has it and no provider payment
	// id is looked up at the PSP before any new create. So a crash between
	// the create and the status write causes no second charge, even after
	// the PSP's idempotency window has passed.
	CreateAttemptedAnnotation = "payments.paymentoperator.dev/create-attempted-at"
	// Finalizer keeps a deleted Payment until the operator has tried to
	// cancel it at the PSP.
	Finalizer = "payments.paymentoperator.dev/cancel-at-psp"
)

// Event reasons that the Payment controller records.
const (
	ReasonSubmitted           = "Submitted"
	ReasonSettled             = "Settled"
	ReasonFailed              = "Failed"
	ReasonCanceled            = "Canceled"
	ReasonRequiresAction      = "RequiresAction"
	ReasonRejected            = "Rejected"
	ReasonChangeFoundByPoll   = "ChangeFoundByPoll"
	ReasonProviderUnreachable = "ProviderUnreachable"
	ReasonProviderNotFound    = "ProviderNotFound"
	ReasonProviderNotUsable   = "ProviderNotUsable"
)

// PaymentReconciler submits each Payment to its PSP once and polls it until
// it reaches a terminal phase.
type PaymentReconciler struct {
	client.Client
	Recorder  events.EventRecorder
	Providers *providers.Registry
	// PSPTimeout bounds each call to a PSP.
	PSPTimeout time.Duration
	// CancelTimeout is how long after its deletion a payment's cancel at the
	// PSP is retried before the Payment is let go without it.
	CancelTimeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=payments.paymentoperator.dev,resources=payments,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=payments.paymentoperator.dev,resources=payments/status,verbs=patch
// +kubebuilder:rbac:groups=payments.paymentoperator.dev,resources=paymentproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one Payment forward: it waits for its provider, submits it
// once, then polls the PSP whenever status.nextPollAt comes.
func (r *PaymentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	result, err := r.reconcile(ctx, req)
	if apierrors.IsConflict(err) {
		// Another writer, usually the callback server, changed the Payment
		// first; start over from the new version without logging an error.
		log.FromContext(ctx).V(1).Info("payment changed during reconcile; retrying", "reason", err.Error())
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	return result, err
}

func (r *PaymentReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	payment := &v1alpha1.Payment{}
	if err := r.Get(ctx, req.NamespacedName, payment); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	// A deleted payment that may still be in flight is canceled at the PSP first.
	if !payment.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, payment)
	}

	// A terminal payment never changes again, so it costs nothing more.
	if payment.Status.Phase.IsTerminal() {
		return ctrl.Result{}, nil
	}

	// Without a usable provider the payment waits in Pending; the provider
	// watch brings it back when the provider appears or changes.
	provider, pspClient, result, err := r.provider(ctx, payment)
	if provider == nil || pspClient == nil {
		return result, err
	}

	if payment.Status.ProviderPaymentID == "" {
		return r.submit(ctx, payment, provider, pspClient)
	}
	return r.poll(ctx, payment, provider, pspClient)
}

// provider returns the Payment's PaymentProvider and its PSP client. When
// either is missing it records why in the Submitted condition and returns
// nil with the result to return from Reconcile.
func (r *PaymentReconciler) provider(ctx context.Context, payment *v1alpha1.Payment) (*v1alpha1.PaymentProvider, *providers.Client, ctrl.Result, error) {
	provider := &v1alpha1.PaymentProvider{}
	key := types.NamespacedName{Namespace: payment.Namespace, Name: payment.Spec.ProviderRef.Name}
	if err := r.Get(ctx, key, provider); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, nil, ctrl.Result{}, err
		}
		message := fmt.Sprintf("PaymentProvider %s not found in namespace %s; the payment is submitted when it exists", key.Name, key.Namespace)
		return nil, nil, ctrl.Result{}, r.hold(ctx, payment, ReasonProviderNotFound, message)
	}

	pspClient, err := r.Providers.Client(ctx, provider)
	if err != nil {
		message := fmt.Sprintf("PaymentProvider %s cannot be used: %v", key.Name, err)
		if holdErr := r.hold(ctx, payment, ReasonProviderNotUsable, message); holdErr != nil {
			return nil, nil, ctrl.Result{}, holdErr
		}
		// Secrets are not watched, so look again after a while.
		return provider, nil, ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	return provider, pspClient, ctrl.Result{}, nil
}

// hold keeps a payment Pending with the reason in its Submitted condition,
// writing status and recording an Event only when the reason is new.
func (r *PaymentReconciler) hold(ctx context.Context, payment *v1alpha1.Payment, reason, message string) error {
	base := payment.DeepCopy()
	lifecycle.Describe(payment)
	meta.SetStatusCondition(&payment.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionSubmitted, Status: metav1.ConditionFalse,
		Reason: reason, Message: message, ObservedGeneration: payment.Generation,
	})
	if cond := meta.FindStatusCondition(base.Status.Conditions, v1alpha1.ConditionSubmitted); cond == nil || cond.Reason != reason {
		r.Recorder.Eventf(payment, nil, corev1.EventTypeWarning, reason, "Submit", "%s", message)
	}
	return r.writeStatus(ctx, base, payment)
}

// submit creates the payment at the PSP with its idempotency key, so a retry
// after any failure returns the same PSP payment instead of a second charge.
func (r *PaymentReconciler) submit(ctx context.Context, payment *v1alpha1.Payment, provider *v1alpha1.PaymentProvider, pspClient *providers.Client) (ctrl.Result, error) {
	if wait := reserve(pspClient); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	// A create may have reached the PSP before a crash, and the PSP may have
	// forgotten its idempotency key since: look the payment up before
	// creating anything. Otherwise record that a create is about to happen.
	if payment.Annotations[CreateAttemptedAnnotation] != "" {
		found, err := r.find(ctx, pspClient, payment)
		if err != nil {
			return r.pspFailed(ctx, payment, "Look up", err)
		}
		if found != nil {
			log.FromContext(ctx).Info("found the payment of an earlier create at the PSP", "providerPaymentID", found.ID)
			return r.recordCreated(ctx, payment, provider, found)
		}
	} else if err := r.markCreateAttempt(ctx, payment); err != nil {
		return ctrl.Result{}, err
	}

	callCtx, cancel := context.WithTimeout(ctx, r.PSPTimeout)
	defer cancel()
	created, err := observe(callCtx, "create", pspClient.CreatePayment, psp.CreateRequest{
		IdempotencyKey: payment.IdempotencyKey(),
		Amount:         payment.Spec.Amount,
		Currency:       payment.Spec.Currency,
		PaymentMethod:  payment.Spec.PaymentMethod,
		Description:    payment.Spec.Description,
		Metadata: map[string]string{
			psp.MetadataNamespace: payment.Namespace,
			psp.MetadataName:      payment.Name,
			psp.MetadataUID:       string(payment.UID),
		},
	})
	if err != nil {
		return r.pspFailed(ctx, payment, actionSubmit, err)
	}
	failpoint.Crash(failpoint.AfterPSPCreate)
	return r.recordCreated(ctx, payment, provider, created)
}

// recordCreated writes what the PSP holds for a payment just created or
// found: the provider id, the phase and the next poll time.
func (r *PaymentReconciler) recordCreated(ctx context.Context, payment *v1alpha1.Payment, provider *v1alpha1.PaymentProvider, created *psp.Payment) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	base := payment.DeepCopy()
	now := r.now()
	if _, err := lifecycle.Advance(&payment.Status, created, payment.Generation, metav1.NewTime(now)); err != nil {
		return ctrl.Result{}, fmt.Errorf("recording the PSP's response to the create: %w", err)
	}
	lifecycle.Describe(payment)
	lifecycle.SchedulePoll(&payment.Status, providers.PollInterval(provider), now)
	markReachable(payment)
	if err := r.writeStatus(ctx, base, payment); err != nil {
		return ctrl.Result{}, err
	}

	logger.Info("payment submitted", "providerPaymentID", created.ID, "phase", payment.Status.Phase)
	r.Recorder.Eventf(payment, nil, corev1.EventTypeNormal, ReasonSubmitted, "Submit",
		"Submitted %s to PaymentProvider %s as %s", payment.Status.DisplayAmount, provider.Name, created.ID)
	r.recordPhase(payment, base.Status.Phase, "submit")
	return r.nextPoll(payment), nil
}

// poll gets the payment from the PSP when status.nextPollAt has come, and
// otherwise waits for it, so a restarted manager does not poll everything at once.
func (r *PaymentReconciler) poll(ctx context.Context, payment *v1alpha1.Payment, provider *v1alpha1.PaymentProvider, pspClient *providers.Client) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	if next := payment.Status.NextPollAt; next != nil {
		if wait := next.Sub(r.now()); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	if wait := reserve(pspClient); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	callCtx, cancel := context.WithTimeout(ctx, r.PSPTimeout)
	defer cancel()
	reported, err := observe(callCtx, "get", pspClient.GetPayment, payment.Status.ProviderPaymentID)
	if err != nil {
		return r.pspFailed(ctx, payment, "Poll", err)
	}

	base := payment.DeepCopy()
	now := r.now()
	changed, err := lifecycle.Advance(&payment.Status, reported, payment.Generation, metav1.NewTime(now))
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("applying the polled state: %w", err)
	}
	lifecycle.Describe(payment)
	polledAt := metav1.NewTime(now)
	payment.Status.LastPolledAt = &polledAt
	lifecycle.SchedulePoll(&payment.Status, providers.PollInterval(provider), now)
	markReachable(payment)
	if err := r.writeStatus(ctx, base, payment); err != nil {
		return ctrl.Result{}, err
	}

	if changed {
		logger.Info("poll found a change that no callback reported", "from", base.Status.Phase, "to", payment.Status.Phase)
		r.Recorder.Eventf(payment, nil, corev1.EventTypeWarning, ReasonChangeFoundByPoll, "Poll",
			"Polling found the payment %s at the PSP; its callback did not arrive", reported.Status)
		r.recordPhase(payment, base.Status.Phase, "poll")
	}
	return r.nextPoll(payment), nil
}

// pspFailed records a failed PSP call. A permanent error on the create fails
// the payment for good. Any other error shows in the ProviderReachable
// condition and is returned, so the work queue retries with capped
// exponential backoff.
func (r *PaymentReconciler) pspFailed(ctx context.Context, payment *v1alpha1.Payment, action string, callErr error) (ctrl.Result, error) {
	base := payment.DeepCopy()
	lifecycle.Describe(payment)
	// A PSP may repeat the payment-method token in its error text, which
	// must not reach a status, an Event or a log.
	pspMessage := redact(messageOf(callErr), payment)

	// Only a rejected create fails the payment: after a failed look-up or
	// poll, a charge may exist at the PSP, so those are retried instead.
	if action == actionSubmit && psp.KindOf(callErr) == psp.Permanent {
		code := "invalid_request"
		var pspErr *psp.Error
		if errors.As(callErr, &pspErr) && pspErr.Code != "" {
			code = pspErr.Code
		}
		payment.Status.Phase = v1alpha1.PaymentFailed
		payment.Status.FailureCode = code
		payment.Status.FailureMessage = pspMessage
		if pspErr != nil {
			payment.Status.FailureMessage = redact(pspErr.Message, payment)
		}
		now := metav1.NewTime(r.now())
		payment.Status.SettledAt = &now
		meta.SetStatusCondition(&payment.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionSettled, Status: metav1.ConditionTrue, Reason: ReasonRejected,
			Message: "The PSP rejected the payment: " + pspMessage, ObservedGeneration: payment.Generation,
		})
		if err := r.writeStatus(ctx, base, payment); err != nil {
			return ctrl.Result{}, err
		}
		log.FromContext(ctx).Info("PSP rejected the payment", "code", code, "message", pspMessage)
		r.Recorder.Eventf(payment, nil, corev1.EventTypeWarning, ReasonRejected, action, "The PSP rejected the payment: %s", pspMessage)
		return ctrl.Result{}, nil
	}

	// The condition and the Event are written when the PSP first fails, not
	// on every retry, so changing error text (such as a time left) does not
	// cost a status write per retry. Each retry's error is logged.
	if cond := meta.FindStatusCondition(base.Status.Conditions, v1alpha1.ConditionProviderReachable); cond == nil || cond.Status != metav1.ConditionFalse {
		message := fmt.Sprintf("%s failed, retrying with backoff: %s", action, pspMessage)
		meta.SetStatusCondition(&payment.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionProviderReachable, Status: metav1.ConditionFalse,
			Reason: "CallFailed", Message: message, ObservedGeneration: payment.Generation,
		})
		r.Recorder.Eventf(payment, nil, corev1.EventTypeWarning, ReasonProviderUnreachable, action, "%s", message)
	}
	if err := r.writeStatus(ctx, base, payment); err != nil {
		return ctrl.Result{}, err
	}
	// The returned error carries the redacted text only, since
	// controller-runtime logs it; nothing inspects its chain.
	return ctrl.Result{}, fmt.Errorf("%s at the PSP: %s", action, pspMessage)
}

// recordPhase records an Event, and for a terminal phase the settled
// metric, when path moved the payment to a new phase.
func (r *PaymentReconciler) recordPhase(payment *v1alpha1.Payment, from v1alpha1.PaymentPhase, path string) {
	if payment.Status.Phase == from {
		return
	}
	RecordPhase(r.Recorder, payment)
	if payment.Status.Phase.IsTerminal() {
		metrics.Settled.WithLabelValues(string(payment.Status.Phase), path).Inc()
	}
}

// observe calls a PSP operation and counts its outcome.
func observe[In, Out any](ctx context.Context, operation string, call func(context.Context, In) (Out, error), in In) (Out, error) {
	out, err := call(ctx, in)
	outcome := "ok"
	if err != nil {
		outcome = psp.KindOf(err).String()
	}
	metrics.PSPRequests.WithLabelValues(operation, outcome).Inc()
	return out, err
}

// RecordPhase records the Event for the phase a payment just entered. The
// callback server uses it too, so both paths tell a person the same thing.
func RecordPhase(recorder events.EventRecorder, payment *v1alpha1.Payment) {
	status := payment.Status
	switch status.Phase {
	case v1alpha1.PaymentSucceeded:
		recorder.Eventf(payment, nil, corev1.EventTypeNormal, ReasonSettled, "Settle", "The PSP settled %s", status.DisplayAmount)
	case v1alpha1.PaymentFailed:
		recorder.Eventf(payment, nil, corev1.EventTypeWarning, ReasonFailed, "Settle", "The PSP declined the payment: %s: %s", status.FailureCode, status.FailureMessage)
	case v1alpha1.PaymentCanceled:
		recorder.Eventf(payment, nil, corev1.EventTypeNormal, ReasonCanceled, "Settle", "The payment was canceled at the PSP")
	case v1alpha1.PaymentRequiresAction:
		recorder.Eventf(payment, nil, corev1.EventTypeNormal, ReasonRequiresAction, "Settle", "The customer must act before the PSP can settle the payment")
	}
}

// nextPoll returns the result that brings the payment back at its next poll.
func (r *PaymentReconciler) nextPoll(payment *v1alpha1.Payment) ctrl.Result {
	if payment.Status.NextPollAt == nil {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: max(payment.Status.NextPollAt.Sub(r.now()), time.Second)}
}

// writeStatus patches the status from base to payment with optimistic
// locking, and writes nothing when nothing changed. A conflict means another
// writer (the callback server) got there first, and Reconcile then requeues
// the payment to start over from the new version.
func (r *PaymentReconciler) writeStatus(ctx context.Context, base, payment *v1alpha1.Payment) error {
	if equality.Semantic.DeepEqual(base.Status, payment.Status) {
		return nil
	}
	if payment.Status.Phase.IsTerminal() && !base.Status.Phase.IsTerminal() {
		failpoint.Crash(failpoint.BeforeTerminalWrite)
	}
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := r.Status().Patch(ctx, payment, patch); err != nil {
		return fmt.Errorf("writing the status of payment %s/%s: %w", payment.Namespace, payment.Name, err)
	}
	return nil
}

func (r *PaymentReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// markReachable sets ProviderReachable to True after a successful PSP call.
func markReachable(payment *v1alpha1.Payment) {
	meta.SetStatusCondition(&payment.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionProviderReachable, Status: metav1.ConditionTrue,
		Reason: "CallSucceeded", Message: "The last call to the PSP succeeded", ObservedGeneration: payment.Generation,
	})
}

// reserve takes a token from the provider's rate limiter, or returns how
// long to wait for one; the caller requeues instead of blocking a worker.
func reserve(pspClient *providers.Client) time.Duration {
	reservation := pspClient.Limiter.Reserve()
	if delay := reservation.Delay(); delay > 0 {
		reservation.Cancel()
		return delay
	}
	return 0
}

// redact replaces the payment's payment-method token in text.
func redact(text string, payment *v1alpha1.Payment) string {
	if payment.Spec.PaymentMethod == "" {
		return text
	}
	return strings.ReplaceAll(text, payment.Spec.PaymentMethod, "[payment method]")
}

// messageOf returns the text of the PSP error inside err, without the
// prefixes that wrapping added.
func messageOf(err error) string {
	var pspErr *psp.Error
	if errors.As(err, &pspErr) {
		return pspErr.Error()
	}
	return err.Error()
}

// SetupWithManager registers the controller: it watches Payments and
// brings back a provider's Payments when the provider changes.
func (r *PaymentReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, options controller.Options) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Payment{}, ProviderRefIndex, func(obj client.Object) []string {
		return []string{obj.(*v1alpha1.Payment).Spec.ProviderRef.Name}
	})
	if err != nil {
		return fmt.Errorf("indexing payments by provider: %w", err)
	}

	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Payment{}, builder.WithPredicates(
			// Status and metadata writes, ours and the webhook server's, need no
			// reconcile: every path that changes status schedules its own follow-up.
			predicate.Or(predicate.GenerationChangedPredicate{}, deletionStarted))).
		Watches(&v1alpha1.PaymentProvider{}, handler.EnqueueRequestsFromMapFunc(r.paymentsOfProvider)).
		WithOptions(options).
		Named("payment").
		Complete(r)
}

// paymentsOfProvider returns the unsettled Payments that name provider.
func (r *PaymentReconciler) paymentsOfProvider(ctx context.Context, provider client.Object) []reconcile.Request {
	var payments v1alpha1.PaymentList
	if err := r.List(ctx, &payments, client.InNamespace(provider.GetNamespace()), client.MatchingFields{ProviderRefIndex: provider.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "listing the payments of a provider", "provider", provider.GetName())
		return nil
	}
	var requests []reconcile.Request
	for _, payment := range payments.Items {
		if !payment.Status.Phase.IsTerminal() && payment.Status.ProviderPaymentID == "" {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&payment)})
		}
	}
	return requests
}

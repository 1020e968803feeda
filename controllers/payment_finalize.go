package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/internal/providers"
	"github.com/payment-operator/payment-operator/psp"
)

// Event reasons of deletion.
const (
	ReasonCanceledAtPSP   = "CanceledAtPSP"
	ReasonCancelRefused   = "CancelRefused"
	ReasonCancelAbandoned = "CancelAbandoned"
)

// deletionStarted passes the update that sets a Payment's deletion timestamp.
var deletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// markCreateAttempt records, in one metadata write, that a create is about
// to be sent and that deletion must first try to cancel at the PSP.
func (r *PaymentReconciler) markCreateAttempt(ctx context.Context, payment *v1alpha1.Payment) error {
	base := payment.DeepCopy()
	if payment.Annotations == nil {
		payment.Annotations = map[string]string{}
	}
	payment.Annotations[CreateAttemptedAnnotation] = r.now().UTC().Format(time.RFC3339)
	controllerutil.AddFinalizer(payment, Finalizer)
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := r.Patch(ctx, payment, patch); err != nil {
		return fmt.Errorf("recording the create attempt of payment %s/%s: %w", payment.Namespace, payment.Name, err)
	}
	return nil
}

// find looks up the payment at the PSP by its idempotency key and returns
// nil when the PSP has none.
func (r *PaymentReconciler) find(ctx context.Context, pspClient *providers.Client, payment *v1alpha1.Payment) (*psp.Payment, error) {
	callCtx, cancel := context.WithTimeout(ctx, r.PSPTimeout)
	defer cancel()
	found, err := observe(callCtx, "find", pspClient.FindPayment, payment.IdempotencyKey())
	if psp.IsNotFound(err) {
		return nil, nil
	}
	return found, err
}

// finalize cancels a deleted payment at the PSP unless it is terminal, then
// lets the Payment go. A cancel that the PSP refuses, or that keeps failing
// past CancelTimeout, is recorded in an Event and does not block deletion.
func (r *PaymentReconciler) finalize(ctx context.Context, payment *v1alpha1.Payment) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(payment, Finalizer) {
		return ctrl.Result{}, nil
	}
	if !payment.Status.Phase.IsTerminal() {
		if done, err := r.cancel(ctx, payment); !done {
			if time.Since(payment.DeletionTimestamp.Time) < r.CancelTimeout {
				return ctrl.Result{}, err
			}
			r.Recorder.Eventf(payment, nil, corev1.EventTypeWarning, ReasonCancelAbandoned, "Cancel",
				"Gave up canceling the payment at the PSP after %s: %v; check it in the PSP's dashboard", r.CancelTimeout, err)
		}
	}

	base := payment.DeepCopy()
	controllerutil.RemoveFinalizer(payment, Finalizer)
	if err := r.Patch(ctx, payment, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

// cancel requests that the PSP cancel the payment. It returns true when nothing
// is left to do: canceled, refused because the payment already settled, or
// never created. Otherwise it returns the error to retry on.
func (r *PaymentReconciler) cancel(ctx context.Context, payment *v1alpha1.Payment) (bool, error) {
	logger := log.FromContext(ctx)
	provider := &v1alpha1.PaymentProvider{}
	err := r.Get(ctx, types.NamespacedName{Namespace: payment.Namespace, Name: payment.Spec.ProviderRef.Name}, provider)
	if apierrors.IsNotFound(err) {
		r.Recorder.Eventf(payment, nil, corev1.EventTypeWarning, ReasonCancelAbandoned, "Cancel",
			"PaymentProvider %s no longer exists, so the payment was not canceled at the PSP", payment.Spec.ProviderRef.Name)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	pspClient, err := r.Providers.Client(ctx, provider)
	if err != nil {
		return false, err
	}

	id := payment.Status.ProviderPaymentID
	if id == "" {
		found, err := r.find(ctx, pspClient, payment)
		if err != nil {
			return false, err
		}
		if found == nil {
			return true, nil
		}
		id = found.ID
	}

	callCtx, cancel := context.WithTimeout(ctx, r.PSPTimeout)
	defer cancel()
	_, err = observe(callCtx, "cancel", pspClient.CancelPayment, id)
	if err == nil {
		logger.Info("payment canceled at the PSP before deletion", "providerPaymentID", id)
		r.Recorder.Eventf(payment, nil, corev1.EventTypeNormal, ReasonCanceledAtPSP, "Cancel", "Canceled %s at the PSP before deletion", id)
		return true, nil
	}
	switch psp.KindOf(err) {
	case psp.Conflict, psp.NotFound, psp.Permanent:
		logger.Info("the PSP rejected the cancel", "providerPaymentID", id, "reason", messageOf(err))
		r.Recorder.Eventf(payment, nil, corev1.EventTypeWarning, ReasonCancelRefused, "Cancel",
			"The PSP refused to cancel %s: %s", id, messageOf(err))
		return true, nil
	}
	return false, fmt.Errorf("canceling %s at the PSP: %w", id, err)
}

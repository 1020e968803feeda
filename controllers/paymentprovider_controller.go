package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/internal/providers"
	"github.com/payment-operator/payment-operator/psp"
)

// providerRecheckInterval is how often a ready provider's credentials are
// checked again.
const providerRecheckInterval = 10 * time.Minute

// PaymentProviderReconciler checks a provider's credentials, registers its
// callback URL with the PSP and reports readiness in the Ready condition.
type PaymentProviderReconciler struct {
	client.Client
	// APIReader reads Secrets without a cache, so the manager needs no
	// permission to list or watch them.
	APIReader  client.Reader
	Recorder   events.EventRecorder
	Providers  *providers.Registry
	PSPTimeout time.Duration
}

// +kubebuilder:rbac:groups=payments.paymentoperator.dev,resources=paymentproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=payments.paymentoperator.dev,resources=paymentproviders/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create

// Reconcile checks one PaymentProvider and registers its callback URL.
func (r *PaymentProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	provider := &v1alpha1.PaymentProvider{}
	if err := r.Get(ctx, req.NamespacedName, provider); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !provider.DeletionTimestamp.IsZero() {
		r.Providers.Forget(provider.UID)
		return ctrl.Result{}, nil
	}
	base := provider.DeepCopy()

	result, checkErr := r.check(ctx, provider)

	provider.Status.ObservedGeneration = provider.Generation
	if err := r.writeStatus(ctx, base, provider); err != nil {
		return ctrl.Result{}, err
	}
	return result, checkErr
}

// check runs the readiness steps in order and sets the Ready condition from
// the first one that fails.
func (r *PaymentProviderReconciler) check(ctx context.Context, provider *v1alpha1.PaymentProvider) (ctrl.Result, error) {
	pspClient, err := r.Providers.Client(ctx, provider)
	if err != nil {
		if providers.IsSecretError(err) {
			r.notReady(provider, v1alpha1.ReasonSecretNotFound, "Credentials: "+err.Error())
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		r.notReady(provider, v1alpha1.ReasonInvalidConfiguration, err.Error())
		return ctrl.Result{}, nil
	}

	callCtx, cancel := context.WithTimeout(ctx, r.PSPTimeout)
	defer cancel()
	if err := pspClient.CheckCredentials(callCtx); err != nil {
		return r.pspNotReady(provider, "checking credentials", err)
	}

	if err := r.register(ctx, provider, pspClient); err != nil {
		if psp.IsTransient(err) || psp.KindOf(err) == psp.Unauthorized {
			return r.pspNotReady(provider, "registering the callback URL", err)
		}
		r.notReady(provider, v1alpha1.ReasonRegistrationFailed, "Registering the callback URL failed: "+err.Error())
		return ctrl.Result{}, err
	}

	meta.SetStatusCondition(&provider.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReady,
		Message:            "Credentials accepted; callbacks registered as " + provider.Status.CallbackEndpointID,
		ObservedGeneration: provider.Generation,
	})
	return ctrl.Result{RequeueAfter: providerRecheckInterval}, nil
}

// register registers spec.webhook.url with the PSP under a key derived from
// the provider's UID and the URL, so a restart or a lost response returns the
// same endpoint instead of a second one. When the signing Secret does not
// exist yet, it is created with the secret the PSP returned.
func (r *PaymentProviderReconciler) register(ctx context.Context, provider *v1alpha1.PaymentProvider, pspClient *providers.Client) error {
	ref := provider.Spec.Webhook.SigningSecretRef
	secret, err := providers.SecretValue(ctx, r.APIReader, provider.Namespace, ref)
	secretMissing := providers.IsSecretError(err)
	if err != nil && !secretMissing {
		return err
	}
	if !secretMissing && provider.Status.CallbackEndpointID != "" && provider.Status.CallbackURL == provider.Spec.Webhook.URL {
		return nil
	}

	urlHash := sha256.Sum256([]byte(provider.Spec.Webhook.URL))
	key := fmt.Sprintf("callback-endpoint-%s-%s", provider.UID, hex.EncodeToString(urlHash[:8]))
	callCtx, cancel := context.WithTimeout(ctx, r.PSPTimeout)
	defer cancel()
	endpoint, err := pspClient.RegisterCallback(callCtx, key, provider.Spec.Webhook.URL, secret)
	if err != nil {
		return err
	}

	if secretMissing {
		if endpoint.Secret == "" {
			return fmt.Errorf("the PSP returned no signing secret and secret %s/%s does not exist: create it with the endpoint's secret", provider.Namespace, ref.Name)
		}
		if err := r.createSigningSecret(ctx, provider, endpoint.Secret); err != nil {
			return err
		}
	}

	if provider.Status.CallbackEndpointID != endpoint.ID {
		log.FromContext(ctx).Info("callback URL registered with the PSP", "endpointID", endpoint.ID, "url", endpoint.URL)
		r.Recorder.Eventf(provider, nil, corev1.EventTypeNormal, "CallbackRegistered", "Register",
			"Registered %s with the PSP as %s", provider.Spec.Webhook.URL, endpoint.ID)
	}
	provider.Status.CallbackEndpointID = endpoint.ID
	provider.Status.CallbackURL = provider.Spec.Webhook.URL
	return nil
}

// createSigningSecret stores the signing secret the PSP made.
func (r *PaymentProviderReconciler) createSigningSecret(ctx context.Context, provider *v1alpha1.PaymentProvider, value string) error {
	ref := provider.Spec.Webhook.SigningSecretRef
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ref.Name,
			Namespace: provider.Namespace,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": "payment-operator"},
		},
		Data: map[string][]byte{ref.Key: []byte(value)},
	}
	if err := r.Create(ctx, secret); err != nil {
		return fmt.Errorf("storing the signing secret in secret %s/%s: %w", provider.Namespace, ref.Name, err)
	}
	r.Recorder.Eventf(provider, nil, corev1.EventTypeNormal, "SigningSecretStored", "Register",
		"Stored the PSP's callback signing secret in Secret %s", ref.Name)
	return nil
}

// pspNotReady records a failed PSP call in the Ready condition. Transient
// failures are returned so the work queue retries with backoff.
func (r *PaymentProviderReconciler) pspNotReady(provider *v1alpha1.PaymentProvider, action string, err error) (ctrl.Result, error) {
	switch psp.KindOf(err) {
	case psp.Unauthorized:
		r.notReady(provider, v1alpha1.ReasonInvalidCredentials, fmt.Sprintf("The PSP rejected the API key while %s: %s", action, messageOf(err)))
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	case psp.Transient:
		r.notReady(provider, v1alpha1.ReasonProviderUnreachable, fmt.Sprintf("The PSP could not be reached while %s: %s", action, messageOf(err)))
		return ctrl.Result{}, fmt.Errorf("%s: %w", action, err)
	default:
		r.notReady(provider, v1alpha1.ReasonRegistrationFailed, fmt.Sprintf("The PSP failed %s: %s", action, messageOf(err)))
		return ctrl.Result{}, nil
	}
}

func (r *PaymentProviderReconciler) notReady(provider *v1alpha1.PaymentProvider, reason, message string) {
	if cond := meta.FindStatusCondition(provider.Status.Conditions, v1alpha1.ConditionReady); cond == nil || cond.Reason != reason {
		r.Recorder.Eventf(provider, nil, corev1.EventTypeWarning, reason, "Check", "%s", message)
	}
	meta.SetStatusCondition(&provider.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason,
		Message: message, ObservedGeneration: provider.Generation,
	})
}

func (r *PaymentProviderReconciler) writeStatus(ctx context.Context, base, provider *v1alpha1.PaymentProvider) error {
	if equality.Semantic.DeepEqual(base.Status, provider.Status) {
		return nil
	}
	patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	if err := r.Status().Patch(ctx, provider, patch); err != nil {
		return fmt.Errorf("writing the status of provider %s/%s: %w", provider.Namespace, provider.Name, err)
	}
	return nil
}

// SetupWithManager registers the controller.
func (r *PaymentProviderReconciler) SetupWithManager(mgr ctrl.Manager, options controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PaymentProvider{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(options).
		Named("paymentprovider").
		Complete(r)
}

// Package providers turns PaymentProvider objects into ready PSP clients:
// it reads the credentials Secret, picks the adapter for the provider's type
// and keeps one request-rate limiter per provider.
package providers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/psp"

	// The adapters register themselves with package psp.
	_ "github.com/payment-operator/payment-operator/psp/simulator"
)

// DefaultPollInterval applies when a PaymentProvider leaves pollInterval empty.
const DefaultPollInterval = time.Hour

// credentialsTTL is how long a client built from a credentials Secret is
// reused before the Secret is read again, so a rotated API key takes effect
// within this time without a Secret read on every reconcile.
const credentialsTTL = time.Minute

// SecretError means a Secret or one of its keys that a PaymentProvider
// names does not exist.
type SecretError struct {
	Namespace, Name, Key string
	// Missing is true when the Secret exists but lacks the key.
	MissingKey bool
}

func (e *SecretError) Error() string {
	if e.MissingKey {
		return fmt.Sprintf("secret %s/%s has no key %q", e.Namespace, e.Name, e.Key)
	}
	return fmt.Sprintf("secret %s/%s not found", e.Namespace, e.Name)
}

// IsSecretError reports whether err is a *SecretError.
func IsSecretError(err error) bool {
	var secretErr *SecretError
	return errors.As(err, &secretErr)
}

// SecretValue reads one key of a Secret in namespace.
func SecretValue(ctx context.Context, reader client.Reader, namespace string, ref v1alpha1.SecretKeyReference) (string, error) {
	var secret corev1.Secret
	if err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return "", &SecretError{Namespace: namespace, Name: ref.Name, Key: ref.Key}
		}
		return "", fmt.Errorf("reading secret %s/%s: %w", namespace, ref.Name, err)
	}
	value, ok := secret.Data[ref.Key]
	if !ok || len(value) == 0 {
		return "", &SecretError{Namespace: namespace, Name: ref.Name, Key: ref.Key, MissingKey: true}
	}
	return string(value), nil
}

// PollInterval returns the provider's poll interval, or the default.
func PollInterval(provider *v1alpha1.PaymentProvider) time.Duration {
	if provider.Spec.PollInterval != nil && provider.Spec.PollInterval.Duration > 0 {
		return provider.Spec.PollInterval.Duration
	}
	return DefaultPollInterval
}

// Client is a PSP client for one PaymentProvider with its rate limiter.
type Client struct {
	psp.Provider
	// Limiter bounds the request rate to the PSP across all payments of the provider.
	Limiter *rate.Limiter
}

type entry struct {
	generation int64
	built      time.Time
	client     *Client
	limit      v1alpha1.RateLimit
}

// Registry builds and caches Clients. It is safe for concurrent use.
type Registry struct {
	// Reader reads Secrets; pass an uncached reader so that the manager
	// needs no permission to list or watch Secrets.
	Reader client.Reader
	// Timeout bounds each HTTP request to a PSP.
	Timeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	entries map[types.UID]*entry
}

// Client returns the PSP client for provider, reading its credentials
// Secret when the cached client is older than a minute or the provider's
// spec changed. The rate limiter survives credential changes.
func (r *Registry) Client(ctx context.Context, provider *v1alpha1.PaymentProvider) (*Client, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	r.mu.Lock()
	cached := r.entries[provider.UID]
	r.mu.Unlock()
	if cached != nil && cached.generation == provider.Generation && now().Sub(cached.built) < credentialsTTL {
		return cached.client, nil
	}

	adapter, err := psp.Lookup(string(provider.Spec.Type))
	if err != nil {
		return nil, err
	}
	apiKey, err := SecretValue(ctx, r.Reader, provider.Namespace, provider.Spec.CredentialsSecretRef)
	if err != nil {
		return nil, err
	}
	built, err := adapter.NewProvider(psp.Config{Endpoint: provider.Spec.Endpoint, APIKey: apiKey, Timeout: r.Timeout})
	if err != nil {
		return nil, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	limiter := limiterFor(provider.Spec.RateLimit)
	if cached != nil && cached.limit == provider.Spec.RateLimit {
		limiter = cached.client.Limiter
	}
	fresh := &entry{
		generation: provider.Generation,
		built:      now(),
		client:     &Client{Provider: built, Limiter: limiter},
		limit:      provider.Spec.RateLimit,
	}
	if r.entries == nil {
		r.entries = map[types.UID]*entry{}
	}
	r.entries[provider.UID] = fresh
	return fresh.client, nil
}

// Forget drops the cached client of a deleted provider.
func (r *Registry) Forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.entries, uid)
}

func limiterFor(limit v1alpha1.RateLimit) *rate.Limiter {
	perSecond, burst := limit.RequestsPerSecond, limit.Burst
	if perSecond <= 0 {
		perSecond = 10
	}
	if burst <= 0 {
		burst = 20
	}
	return rate.NewLimiter(rate.Limit(perSecond), int(burst))
}

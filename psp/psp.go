// Package psp is the boundary between payment-operator and payment service
// providers (PSPs). Each PSP has an adapter in a package of its own that
// implements Adapter and registers itself with Register. So adding a PSP type
// means adding one such package and one value of v1alpha1.ProviderType.
package psp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Status is a payment's state as the PSP reports it.
type Status string

// The statuses every adapter maps its PSP's statuses to.
const (
	StatusProcessing     Status = "processing"
	StatusRequiresAction Status = "requires_action"
	StatusSucceeded      Status = "succeeded"
	StatusFailed         Status = "failed"
	StatusCanceled       Status = "canceled"
)

// Metadata keys sent with every create, so that a callback or a lookup can be
// matched to its Payment before the status holds the provider's payment id.
const (
	MetadataNamespace = "namespace"
	MetadataName      = "name"
	MetadataUID       = "uid"
)

// CreateRequest is one payment to submit.
type CreateRequest struct {
	// IdempotencyKey makes a repeated create return the first payment.
	IdempotencyKey string
	// Amount is in the currency's minor unit.
	Amount        int64
	Currency      string
	PaymentMethod string
	Description   string
	Metadata      map[string]string
}

// Payment is a payment as the PSP holds it.
type Payment struct {
	ID             string
	Status         Status
	Amount         int64
	Currency       string
	IdempotencyKey string
	Metadata       map[string]string
	FailureCode    string
	FailureMessage string
}

// CallbackEndpoint is a callback URL registered with the PSP.
type CallbackEndpoint struct {
	ID  string
	URL string
	// Secret signs the callbacks sent to this endpoint. PSPs return it only
	// when the endpoint is created.
	Secret string
}

// Event is a verified callback from the PSP.
type Event struct {
	ID   string
	Type string
	// Payment is the payment the event is about, or nil for an event type
	// that is not about payments.
	Payment *Payment
}

// Provider is one PSP account. Every method takes a context that bounds the
// call; errors are *Error values that tell transient from permanent failures.
type Provider interface {
	// CheckCredentials confirms that the API key is accepted.
	CheckCredentials(ctx context.Context) error
	// CreatePayment submits a payment. The same idempotency key with the
	// same parameters returns the same payment.
	CreatePayment(ctx context.Context, req CreateRequest) (*Payment, error)
	// GetPayment returns the payment with the PSP's id.
	GetPayment(ctx context.Context, id string) (*Payment, error)
	// FindPayment returns the payment created with the idempotency key, or
	// an error for which IsNotFound is true. It works after the PSP's
	// idempotency window has passed.
	FindPayment(ctx context.Context, idempotencyKey string) (*Payment, error)
	// CancelPayment cancels a payment that has not settled.
	CancelPayment(ctx context.Context, id string) (*Payment, error)
	// RegisterCallback registers url once per registrationKey and returns
	// the endpoint. secret, when not empty, is the signing secret to use;
	// otherwise the PSP makes one.
	RegisterCallback(ctx context.Context, registrationKey, url, secret string) (*CallbackEndpoint, error)
}

// CallbackVerifier checks and parses the callbacks of one PSP type.
type CallbackVerifier interface {
	// VerifyCallback checks the signature of a raw callback body against the
	// signing secret, before anything parses the body.
	VerifyCallback(header http.Header, body []byte, secret string) error
	// ParseCallback decodes a verified body.
	ParseCallback(body []byte) (*Event, error)
}

// Config is the address and credentials of one PSP account.
type Config struct {
	Endpoint string
	APIKey   string
	// Timeout bounds each HTTP request to the PSP.
	Timeout time.Duration
}

// Adapter builds Providers and verifies callbacks for one PSP type.
type Adapter interface {
	CallbackVerifier
	// NewProvider returns a client for one PSP account.
	NewProvider(cfg Config) (Provider, error)
}

var (
	adaptersMu sync.RWMutex
	adapters   = map[string]Adapter{}
)

// Register makes an adapter available under a v1alpha1.ProviderType name. It
// is called from the init function of each adapter package.
func Register(providerType string, adapter Adapter) {
	adaptersMu.Lock()
	defer adaptersMu.Unlock()
	if _, dup := adapters[providerType]; dup {
		panic(fmt.Sprintf("psp: adapter %q registered twice", providerType))
	}
	adapters[providerType] = adapter
}

// Lookup returns the adapter registered under providerType.
func Lookup(providerType string) (Adapter, error) {
	adaptersMu.RLock()
	defer adaptersMu.RUnlock()
	adapter, ok := adapters[providerType]
	if !ok {
		return nil, fmt.Errorf("no adapter for provider type %q (registered: %v)", providerType, registeredTypes())
	}
	return adapter, nil
}

func registeredTypes() []string {
	types := make([]string, 0, len(adapters))
	for name := range adapters {
		types = append(types, name)
	}
	sort.Strings(types)
	return types
}

// Kind classifies a PSP error by what the caller should do about it.
type Kind int

const (
	// Transient errors (timeouts, connection failures, 5xx, rate limiting)
	// may succeed when retried.
	Transient Kind = iota
	// Permanent errors (an invalid request, a declined idempotency reuse)
	// fail the same way on every retry.
	Permanent
	// Unauthorized means the PSP rejected the API key.
	Unauthorized
	// NotFound means the PSP has no such object.
	NotFound
	// Conflict means the object is in a state that forbids the request, such
	// as canceling a settled payment.
	Conflict
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Unauthorized:
		return "unauthorized"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a failed PSP call.
type Error struct {
	Kind Kind
	// Code is the PSP's machine-readable error type, when it sent one.
	Code string
	// Message is the PSP's explanation, or a description of the failure.
	Message string
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	Err        error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Code != "" {
		msg = e.Code + ": " + msg
	}
	if e.StatusCode != 0 {
		msg = fmt.Sprintf("%s (HTTP %d)", msg, e.StatusCode)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err, treating any error that is not an *Error
// as Transient.
func KindOf(err error) Kind {
	var pspErr *Error
	if errors.As(err, &pspErr) {
		return pspErr.Kind
	}
	return Transient
}

// IsTransient reports whether err may go away when the call is retried.
func IsTransient(err error) bool { return err != nil && KindOf(err) == Transient }

// IsNotFound reports whether the PSP has no such object.
func IsNotFound(err error) bool { return err != nil && KindOf(err) == NotFound }

// KindForStatus classifies an HTTP status code of a PSP response.
func KindForStatus(code int) Kind {
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return Unauthorized
	case code == http.StatusNotFound:
		return NotFound
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return Transient
	case code == http.StatusConflict:
		return Conflict
	default:
		return Permanent
	}
}

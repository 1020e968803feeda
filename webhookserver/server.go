// Package webhookserver receives PSP callbacks at
// POST /hooks/{namespace}/{provider}, verifies their signatures against the
// provider's signing secret and moves the Payment's status forward with the
// same transition function as the poll path. It runs on every replica of
// the manager; it needs no leader lease.
package webhookserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/controllers"
	"github.com/payment-operator/payment-operator/internal/failpoint"
	"github.com/payment-operator/payment-operator/internal/lifecycle"
	"github.com/payment-operator/payment-operator/internal/metrics"
	"github.com/payment-operator/payment-operator/internal/providers"
	"github.com/payment-operator/payment-operator/psp"
)

// MaxBodyBytes is the largest callback body accepted; larger ones get 413.
const MaxBodyBytes = 1 << 20

// ProviderPaymentIDIndex is the field index of Payments by
// status.providerPaymentID, for callbacks that carry no metadata.
const ProviderPaymentIDIndex = "status.providerPaymentID"

// apiTimeout bounds the API server calls that serve one callback.
const apiTimeout = 10 * time.Second

// conflictRetries bounds how often a status write is retried after a
// conflict with another writer before the callback gets 503.
const conflictRetries = 5

// Server is the callback endpoint. Set the fields, then run it with Start
// or serve Handler from an http.Server of your own.
type Server struct {
	// Addr is the listen address, such as :9443.
	Addr string
	// Client lists Payments by provider payment id (from the cache) and
	// writes their status.
	Client client.Client
	// APIReader reads Payments, PaymentProviders and Secrets without a
	// cache, so every callback reads the latest status and signing secret.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Log       logr.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// SetupIndexes registers the field index that Handler needs in the manager's cache.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Payment{}, ProviderPaymentIDIndex, func(obj client.Object) []string {
		if id := obj.(*v1alpha1.Payment).Status.ProviderPaymentID; id != "" {
			return []string{id}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexing payments by provider payment id: %w", err)
	}
	return nil
}

// Handler returns the HTTP handler of the callback path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hooks/{namespace}/{provider}", s.serveCallback)
	return mux
}

// Start serves callbacks until ctx is done. The timeouts cut off clients
// that trickle headers or bodies, so they cannot hold connections open.
func (s *Server) Start(ctx context.Context) error {
	server := &http.Server{
		Addr:              s.Addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	listener, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listening for callbacks on %s: %w", s.Addr, err)
	}
	s.Log.Info("serving PSP callbacks", "address", listener.Addr().String(), "path", "/hooks/{namespace}/{provider}")

	done := make(chan error, 1)
	go func() { done <- server.Serve(listener) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return server.Shutdown(shutdownCtx)
}

// NeedLeaderElection returns false, so the manager runs the server on every replica.
func (s *Server) NeedLeaderElection() bool { return false }

// result is the JSON body of every response.
type result struct {
	Result  string `json:"result,omitempty"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

func (s *Server) serveCallback(w http.ResponseWriter, req *http.Request) {
	namespace, providerName := req.PathValue("namespace"), req.PathValue("provider")
	logger := s.Log.WithValues("namespace", namespace, "provider", providerName, "webhookID", req.Header.Get("webhook-id"))
	reject := func(code int, message string) {
		logger.Info("callback rejected", "status", code, "reason", message)
		reply(w, code, result{Error: http.StatusText(code), Message: message})
	}

	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reject(http.StatusMethodNotAllowed, "callbacks must use POST")
		return
	}
	if mediaType, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
		reject(http.StatusUnsupportedMediaType, "callbacks must have Content-Type application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			reject(http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxBodyBytes))
			return
		}
		reject(http.StatusBadRequest, "reading the body failed: "+err.Error())
		return
	}
	if len(body) == 0 {
		reject(http.StatusBadRequest, "empty body")
		return
	}

	// Bound the API server calls, so an unavailable API server gets the PSP
	// a 503 to retry on instead of a hung connection.
	ctx, cancel := context.WithTimeout(req.Context(), apiTimeout)
	defer cancel()
	provider := &v1alpha1.PaymentProvider{}
	if err := s.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: providerName}, provider); err != nil {
		if apierrors.IsNotFound(err) {
			reject(http.StatusNotFound, fmt.Sprintf("no PaymentProvider %s in namespace %s", providerName, namespace))
			return
		}
		reject(http.StatusServiceUnavailable, "reading the PaymentProvider failed: "+err.Error())
		return
	}
	adapter, err := psp.Lookup(string(provider.Spec.Type))
	if err != nil {
		reject(http.StatusNotFound, err.Error())
		return
	}
	secret, err := providers.SecretValue(ctx, s.APIReader, namespace, provider.Spec.Webhook.SigningSecretRef)
	if err != nil {
		// The PSP retries, and the provider controller may still be storing the secret.
		reject(http.StatusServiceUnavailable, "the signing secret cannot be read: "+err.Error())
		return
	}

	// The signature covers the raw body; nothing is parsed before it passes.
	if err := adapter.VerifyCallback(req.Header, body, secret); err != nil {
		reject(http.StatusUnauthorized, "signature verification failed: "+err.Error())
		return
	}
	event, err := adapter.ParseCallback(body)
	if err != nil {
		reject(http.StatusBadRequest, err.Error())
		return
	}
	logger = logger.WithValues("event", event.ID, "type", event.Type)
	if event.Payment == nil {
		logger.V(1).Info("callback ignored: not about a payment")
		reply(w, http.StatusOK, result{Result: "ignored", Message: "event type " + event.Type + " is not handled"})
		return
	}

	outcome, code, message := s.apply(ctx, logger, provider, event.Payment)
	if code >= 300 {
		reject(code, message)
		return
	}
	reply(w, code, result{Result: outcome, Message: message})
}

// apply finds the Payment that a verified callback is about and advances its
// status. It returns the outcome ("stored", "unchanged" or "ignored"), the
// HTTP status and a message.
func (s *Server) apply(ctx context.Context, logger logr.Logger, provider *v1alpha1.PaymentProvider, reported *psp.Payment) (string, int, string) {
	logger = logger.WithValues("providerPaymentID", reported.ID)
	for attempt := 0; attempt < conflictRetries; attempt++ {
		payment, err := s.findPayment(ctx, provider, reported)
		if err != nil {
			return "", http.StatusServiceUnavailable, "finding the payment failed: " + err.Error()
		}
		if payment == nil {
			logger.Info("callback ignored: no Payment matches it")
			return "ignored", http.StatusOK, "no Payment of this provider matches the callback"
		}
		logger := logger.WithValues("payment", payment.Name)

		base := payment.DeepCopy()
		now := s.now()
		changed, err := lifecycle.Advance(&payment.Status, reported, payment.Generation, metav1.NewTime(now))
		if err != nil {
			logger.Info("callback ignored", "reason", err.Error())
			return "ignored", http.StatusOK, err.Error()
		}
		if !changed {
			logger.V(1).Info("callback changes nothing", "phase", payment.Status.Phase)
			return "unchanged", http.StatusOK, "the payment is already " + string(payment.Status.Phase)
		}
		lifecycle.Describe(payment)
		if base.Status.NextPollAt == nil || payment.Status.Phase.IsTerminal() {
			lifecycle.SchedulePoll(&payment.Status, providers.PollInterval(provider), now)
		}

		if payment.Status.Phase.IsTerminal() {
			failpoint.Crash(failpoint.BeforeTerminalWrite)
		}
		patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
		err = s.Client.Status().Patch(ctx, payment, patch)
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return "", http.StatusServiceUnavailable, "writing the payment status failed: " + err.Error()
		}
		logger.Info("callback stored", "from", base.Status.Phase, "to", payment.Status.Phase)
		controllers.RecordPhase(s.Recorder, payment)
		if payment.Status.Phase.IsTerminal() {
			metrics.Settled.WithLabelValues(string(payment.Status.Phase), "callback").Inc()
		}
		return "stored", http.StatusOK, "the payment is now " + string(payment.Status.Phase)
	}
	return "", http.StatusServiceUnavailable, "the payment status kept changing under the callback; retry"
}

// findPayment returns the Payment that a callback is about, or nil. It
// matches by the metadata sent at create time, which works before the status
// holds the provider's payment id, and falls back to that id.
func (s *Server) findPayment(ctx context.Context, provider *v1alpha1.PaymentProvider, reported *psp.Payment) (*v1alpha1.Payment, error) {
	belongs := func(payment *v1alpha1.Payment) bool {
		return payment.Spec.ProviderRef.Name == provider.Name &&
			(payment.Status.ProviderPaymentID == "" || payment.Status.ProviderPaymentID == reported.ID)
	}

	meta := reported.Metadata
	if meta[psp.MetadataNamespace] == provider.Namespace && meta[psp.MetadataName] != "" {
		payment := &v1alpha1.Payment{}
		err := s.APIReader.Get(ctx, types.NamespacedName{Namespace: provider.Namespace, Name: meta[psp.MetadataName]}, payment)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, err
		case string(payment.UID) == meta[psp.MetadataUID] && belongs(payment):
			return payment, nil
		}
	}

	var payments v1alpha1.PaymentList
	if err := s.Client.List(ctx, &payments, client.InNamespace(provider.Namespace), client.MatchingFields{ProviderPaymentIDIndex: reported.ID}); err != nil {
		return nil, err
	}
	for i := range payments.Items {
		if belongs(&payments.Items[i]) {
			// The cache may lag; read the latest version before writing.
			payment := &v1alpha1.Payment{}
			if err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(&payments.Items[i]), payment); err != nil {
				return nil, client.IgnoreNotFound(err)
			}
			return payment, nil
		}
	}
	return nil, nil
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func reply(w http.ResponseWriter, code int, body result) {
	metrics.Callback(code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// The status is sent; an encoding error means the client went away.
	_ = json.NewEncoder(w).Encode(body) //nolint:errchkjson // see above
}

// The callback server reads providers, their signing Secrets and Payments,
// and patches Payment status; these permissions are also the controllers'.
// +kubebuilder:rbac:groups=payments.paymentoperator.dev,resources=payments,verbs=get;list;watch
// +kubebuilder:rbac:groups=payments.paymentoperator.dev,resources=payments/status,verbs=patch
// +kubebuilder:rbac:groups=payments.paymentoperator.dev,resources=paymentproviders,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

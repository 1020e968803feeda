// Package operator wires the controllers and the callback server into a
// controller-runtime manager. cmd/manager and the integration tests share it.
package operator

import (
	"context"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/payment-operator/payment-operator/controllers"
	"github.com/payment-operator/payment-operator/internal/providers"
	"github.com/payment-operator/payment-operator/webhookserver"
)

// Options configure the operator's parts.
type Options struct {
	// CallbackAddr is the listen address of the callback server.
	CallbackAddr string
	// PSPTimeout bounds each call to a PSP.
	PSPTimeout time.Duration
	// BackoffBase and BackoffMax bound the retry delay after transient failures.
	BackoffBase, BackoffMax time.Duration
	// Concurrency is how many payments are reconciled at once.
	Concurrency int
	// CancelTimeout bounds how long a deleted payment's cancel at the PSP is retried.
	CancelTimeout time.Duration
}

// Setup adds the Payment and PaymentProvider controllers and the callback
// server to mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	registry := &providers.Registry{Reader: mgr.GetAPIReader(), Timeout: opts.PSPTimeout}

	payments := &controllers.PaymentReconciler{
		Client:        mgr.GetClient(),
		Recorder:      mgr.GetEventRecorder("payment-controller"),
		Providers:     registry,
		PSPTimeout:    opts.PSPTimeout,
		CancelTimeout: opts.CancelTimeout,
	}
	err := payments.SetupWithManager(ctx, mgr, controller.Options{
		MaxConcurrentReconciles: opts.Concurrency,
		RateLimiter:             controllers.NewBackoff(opts.BackoffBase, opts.BackoffMax),
	})
	if err != nil {
		return err
	}

	paymentProviders := &controllers.PaymentProviderReconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Recorder:   mgr.GetEventRecorder("paymentprovider-controller"),
		Providers:  registry,
		PSPTimeout: opts.PSPTimeout,
	}
	err = paymentProviders.SetupWithManager(mgr, controller.Options{
		RateLimiter: controllers.NewBackoff(opts.BackoffBase, opts.BackoffMax),
	})
	if err != nil {
		return err
	}

	if err := webhookserver.SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	return mgr.Add(&webhookserver.Server{
		Addr:      opts.CallbackAddr,
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("payment-callbacks"),
		Log:       ctrl.Log.WithName("callbacks"),
	})
}

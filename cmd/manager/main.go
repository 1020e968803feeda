// Command manager runs payment-operator: the Payment and PaymentProvider
// controllers (on the leader) and the PSP callback server (on every replica),
// with metrics and health probes.
package main

import (
	"flag"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/payment-operator/payment-operator/api/v1alpha1"
	"github.com/payment-operator/payment-operator/internal/failpoint"
	"github.com/payment-operator/payment-operator/internal/operator"
)

// options are the manager's command-line flags.
type options struct {
	metricsAddr, probeAddr, callbackAddr string
	leaderElect                          bool
	leaderElectionNamespace              string
	pspTimeout, backoffBase, backoffMax  time.Duration
	cancelTimeout                        time.Duration
	concurrency                          int
	failpoints                           string
}

func main() {
	var opts options
	flag.StringVar(&opts.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 turns it off.")
	flag.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz probes.")
	flag.StringVar(&opts.callbackAddr, "callback-bind-address", ":9443", "Address of the PSP callback server (POST /hooks/{namespace}/{provider}).")
	flag.BoolVar(&opts.leaderElect, "leader-elect", false, "Elect a leader so that only one replica runs the controllers; every replica serves callbacks.")
	flag.StringVar(&opts.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease; empty means the namespace the manager runs in.")
	flag.DurationVar(&opts.pspTimeout, "psp-timeout", 10*time.Second, "Timeout of each call to a PSP.")
	flag.DurationVar(&opts.backoffBase, "retry-backoff-base", time.Second, "First delay before retrying a payment after a transient failure; it doubles per failure.")
	flag.DurationVar(&opts.backoffMax, "retry-backoff-max", 5*time.Minute, "Longest delay between retries of a payment after transient failures.")
	flag.IntVar(&opts.concurrency, "max-concurrent-reconciles", 4, "Payments reconciled at once.")
	flag.DurationVar(&opts.cancelTimeout, "cancel-timeout", 5*time.Minute, "How long a deleted payment's cancel at the PSP is retried before the Payment is deleted without it.")
	flag.StringVar(&opts.failpoints, "test-failpoints", "", "For fault tests only: comma-separated failpoints at which the manager kills itself (after-psp-create, before-terminal-write).")
	zapOptions := zap.Options{}
	zapOptions.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOptions)))
	logger := ctrl.Log.WithName("setup")
	if err := failpoint.Enable(opts.failpoints); err != nil {
		logger.Error(err, "invalid --test-failpoints")
		os.Exit(2)
	}

	if err := run(opts); err != nil {
		logger.Error(err, "manager stopped")
		os.Exit(1)
	}
}

func run(opts options) error {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: opts.metricsAddr},
		HealthProbeBindAddress:        opts.probeAddr,
		LeaderElection:                opts.leaderElect,
		LeaderElectionID:              "payment-operator.paymentoperator.dev",
		LeaderElectionNamespace:       opts.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return err
	}

	ctx := ctrl.SetupSignalHandler()
	err = operator.Setup(ctx, mgr, operator.Options{
		CallbackAddr:  opts.callbackAddr,
		PSPTimeout:    opts.pspTimeout,
		BackoffBase:   opts.backoffBase,
		BackoffMax:    opts.backoffMax,
		Concurrency:   opts.concurrency,
		CancelTimeout: opts.cancelTimeout,
	})
	if err != nil {
		return err
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("starting manager", "leaderElection", opts.leaderElect, "callbacks", opts.callbackAddr)
	return mgr.Start(ctx)
}

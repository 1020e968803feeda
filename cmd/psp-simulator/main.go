// Command psp-simulator runs a simulated payment service provider on one HTTP address.
// It holds payments in memory and sends signed callbacks; docs/simulator.md describes
// the API and the flags.
//
//	psp-simulator --listen 127.0.0.1:8090 --api-key sk_test_simulator --processing-delay 2s
//
// With --listen 127.0.0.1:0 it picks a free port, and its start line on stderr contains
// "listening on 127.0.0.1:PORT".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/payment-operator/payment-operator/simulator"
)

// HTTP server limits. There is no write timeout, because --api-latency may delay a
// response for longer than any fixed limit.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 10 * time.Second
)

// errUsage marks invalid command-line arguments, which exit with status 2.
var errUsage = errors.New("invalid arguments")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "psp-simulator: %v\n", err)
		os.Exit(1)
	}
}

// options holds the parsed command line.
type options struct {
	listen string
	config simulator.Config
}

// parseFlags parses args into options and writes usage and flag errors to output.
func parseFlags(args []string, output io.Writer) (options, error) {
	opts := options{config: simulator.DefaultConfig()}
	cfg := &opts.config

	flags := flag.NewFlagSet("psp-simulator", flag.ContinueOnError)
	flags.SetOutput(output)
	flags.StringVar(&opts.listen, "listen", "127.0.0.1:8090", "`address` of the API; port 0 picks a free port")
	flags.StringVar(&cfg.APIKey, "api-key", cfg.APIKey, "the only accepted API `key`")
	flags.DurationVar(&cfg.ProcessingDelay, "processing-delay", cfg.ProcessingDelay, "time from create to a payment's outcome")
	flags.DurationVar(&cfg.SlowDelay, "slow-delay", cfg.SlowDelay, "time from create to the outcome for the pm_slow token")
	flags.DurationVar(&cfg.RetryInitial, "retry-initial", cfg.RetryInitial, "wait after the first failed callback attempt, doubled after each further failure")
	flags.DurationVar(&cfg.RetryMax, "retry-max", cfg.RetryMax, "longest wait between callback attempts")
	flags.DurationVar(&cfg.RetryFor, "retry-for", cfg.RetryFor, "how long a callback is retried after its first attempt")
	flags.Float64Var(&cfg.LoseCallbacks, "lose-callbacks", 0, "`share` of events (0 to 1) never delivered")
	flags.Float64Var(&cfg.DuplicateCallbacks, "duplicate-callbacks", 0, "`share` of events (0 to 1) delivered twice")
	flags.DurationVar(&cfg.DelayCallbacks, "delay-callbacks", 0, "upper bound of a random wait before each event's first attempt")
	flags.Float64Var(&cfg.FailRequests, "fail-requests", 0, "`share` of API requests (0 to 1) rejected with 503 api_error")
	flags.Int64Var(&cfg.Seed, "seed", 0, "seed for the random choices; 0 picks one from the clock")
	flags.BoolVar(&cfg.ForgetIdempotencyKeys, "forget-idempotency-keys", false, "test-only: every payment create ignores earlier creates with the same Idempotency-Key")
	flags.DurationVar(&cfg.APILatency, "api-latency", 0, "test-only: time added to every API request")

	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return options{}, err
		}
		return options{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(output, "unexpected argument %q; psp-simulator takes only flags\n", flags.Arg(0))
		return options{}, errUsage
	}
	if err := opts.config.Validate(); err != nil {
		fmt.Fprintf(output, "invalid flags: %v\n", err)
		return options{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return opts, nil
}

// run serves the simulator until ctx is canceled, then shuts it down. It logs to
// output, never with the API key or secrets.
func run(ctx context.Context, args []string, output io.Writer) error {
	opts, err := parseFlags(args, output)
	if err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(output, nil))
	opts.config.Logger = logger
	sim := simulator.New(opts.config)
	defer sim.Close()

	listener, err := (&net.ListenConfig{}).Listen(ctx, "tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", opts.listen, err)
	}
	server := &http.Server{
		Handler:           sim.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	logStart(logger, listener.Addr(), opts.config, sim.Seed())
	runDone := make(chan error, 1)
	go func() { runDone <- sim.Run(ctx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- server.Serve(listener) }()

	var serveErr error
	var reason error
	select {
	case <-ctx.Done():
		// The cause of a signal.NotifyContext context names the signal (Go 1.26 source).
		reason = context.Cause(ctx)
	case serveErr = <-serveDone:
		serveErr = fmt.Errorf("failed to serve on %s: %w", listener.Addr(), serveErr)
		reason = serveErr
	}

	shutdownErr := shutdown(context.WithoutCancel(ctx), server)
	sim.Close()
	runErr := <-runDone
	logger.Info("stopped", "reason", reason)
	return errors.Join(serveErr, shutdownErr, runErr)
}

// shutdown stops server, giving open requests shutdownTimeout to finish.
func shutdown(ctx context.Context, server *http.Server) error {
	ctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()

	err := server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Requests still open after the timeout are cut off.
		return server.Close()
	}
	if err != nil {
		return fmt.Errorf("failed to shut down the HTTP server: %w", err)
	}
	return nil
}

// logStart writes the start line. Tests find the address in it with the regular
// expression `listening on (\S+:\d+)`.
func logStart(logger *slog.Logger, address net.Addr, cfg simulator.Config, seed int64) {
	logger.Info("listening on "+address.String(),
		"processing_delay", cfg.ProcessingDelay,
		"slow_delay", cfg.SlowDelay,
		"retry_initial", cfg.RetryInitial,
		"retry_max", cfg.RetryMax,
		"retry_for", cfg.RetryFor,
		"lose_callbacks", cfg.LoseCallbacks,
		"duplicate_callbacks", cfg.DuplicateCallbacks,
		"delay_callbacks", cfg.DelayCallbacks,
		"fail_requests", cfg.FailRequests,
		"seed", seed,
		"forget_idempotency_keys", cfg.ForgetIdempotencyKeys,
		"api_latency", cfg.APILatency,
	)
}

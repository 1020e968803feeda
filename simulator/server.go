// Package simulator implements psp-simulator, a payment service provider that holds
// payments in memory, honors idempotency keys and sends callbacks signed as Standard
// Webhooks. docs/simulator.md describes the API.
package simulator

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// callbackTimeout limits one callback attempt, from dial to the end of the response body.
const callbackTimeout = 10 * time.Second

// Server is a simulated payment service provider. Handler serves its HTTP API, and Run
// moves payments to their outcomes and delivers callbacks.
type Server struct {
	cfg     Config
	seed    int64
	log     *slog.Logger
	client  *http.Client
	handler http.Handler

	failRandom     *randomSource
	callbackRandom *randomSource
	counters       counters

	// wake has room for one signal, sent when a job is queued, so a waiting scheduler
	// looks at the queue again.
	wake chan struct{}

	mu             sync.Mutex
	payments       map[string]*paymentRecord
	paymentOrder   []*paymentRecord // in creation order
	paymentsByKey  map[string][]*paymentRecord
	endpoints      map[string]*endpointRecord
	endpointOrder  []*endpointRecord // in creation order
	endpointsByKey map[string]*endpointRecord
	jobs           jobQueue
	outageUntil    time.Time
	apiLatency     time.Duration // starts as Config.APILatency; POST /_simulator/latency changes it
	closed         bool
	stopRun        context.CancelFunc // nil until Run starts
	runDone        chan struct{}      // closed when Run returns; nil until Run starts
}

// New returns a simulator configured by cfg. Zero APIKey, RetryInitial, RetryMax and
// RetryFor take the defaults that their field comments list. New panics if the result fails
// Config.Validate, so callers that take the config from users should validate first.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("simulator: invalid config: %v", err))
	}

	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}

	s := &Server{
		cfg:        cfg,
		seed:       seed,
		apiLatency: cfg.APILatency,
		log:        cfg.Logger,
		client: &http.Client{
			Timeout: callbackTimeout,
			// A redirect response counts as a failed attempt.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		failRandom:     newRandomSource(seed, failRequestsStream),
		callbackRandom: newRandomSource(seed, callbacksStream),
		wake:           make(chan struct{}, 1),
		payments:       make(map[string]*paymentRecord),
		paymentsByKey:  make(map[string][]*paymentRecord),
		endpoints:      make(map[string]*endpointRecord),
		endpointsByKey: make(map[string]*endpointRecord),
	}
	s.handler = s.routes()
	return s
}

// Seed returns the seed of the random choices, which New picks from the clock when
// Config.Seed is zero. Passing it back as Config.Seed repeats the choices.
func (s *Server) Seed() int64 {
	return s.seed
}

// Handler returns the HTTP handler of the API and of the /_simulator/ endpoints.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// Run moves payments to their outcomes and delivers callbacks until ctx is canceled or
// Close is called. Without a running Run, payments stay in processing and no callback
// is sent. Run returns nil after its in-flight deliveries have stopped, at once if the
// server is already closed, and an error if Run has been called before.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	if s.runDone != nil {
		s.mu.Unlock()
		return errors.New("simulator: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	s.stopRun = cancel
	s.runDone = make(chan struct{})
	done := s.runDone
	s.mu.Unlock()

	defer close(done)
	defer cancel()
	s.schedule(ctx)
	return nil
}

// Close stops Run, waits for it to return and makes every later /v1/ request fail
// 503. Pending outcomes and callbacks are dropped. Calling Close twice is safe.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	stop, done := s.stopRun, s.runDone
	s.mu.Unlock()

	if stop != nil {
		stop()
		<-done
	}
	s.client.CloseIdleConnections()
}

func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("POST /v1/payments", s.createPayment)
	api.HandleFunc("GET /v1/payments", s.listPaymentsByKey)
	api.HandleFunc("GET /v1/payments/{id}", s.getPayment)
	api.HandleFunc("POST /v1/payments/{id}/cancel", s.cancelPayment)
	api.HandleFunc("POST /v1/callback_endpoints", s.createEndpoint)
	api.HandleFunc("GET /v1/callback_endpoints", s.listEndpoints)
	api.HandleFunc("DELETE /v1/callback_endpoints/{id}", s.deleteEndpoint)
	api.HandleFunc("GET /v1/account", s.getAccount)
	api.HandleFunc("/v1/", serveUnknownRoute)

	mux := http.NewServeMux()
	mux.Handle("/v1/", s.guardAPI(api))
	mux.HandleFunc("GET /_simulator/payments", s.listAllPayments)
	mux.HandleFunc("GET /_simulator/stats", s.getStats)
	mux.HandleFunc("POST /_simulator/outage", s.startOutage)
	mux.HandleFunc("POST /_simulator/latency", s.setLatency)
	mux.HandleFunc("/", serveUnknownRoute)
	return mux
}

// guardAPI wraps the /v1/ routes with, in this order: request counting, the API
// latency, the closed, outage and fail-requests checks, and authentication.
func (s *Server) guardAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.counters.apiRequests.Add(1)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/payments" {
			s.counters.paymentCreates.Add(1)
		}

		s.mu.Lock()
		latency := s.apiLatency
		s.mu.Unlock()
		if !sleepContext(r.Context(), latency) {
			return // The client went away.
		}
		if s.rejectUnavailable(w) {
			return
		}
		if !s.authenticate(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rejectUnavailable writes a 503 api_error response and returns true when the server is closed,
// in an outage or draws an injected failure.
func (s *Server) rejectUnavailable(w http.ResponseWriter) bool {
	s.mu.Lock()
	closed := s.closed
	outageLeft := time.Until(s.outageUntil)
	s.mu.Unlock()

	var message string
	switch {
	case closed:
		message = "the simulator is shutting down"
	case outageLeft > 0:
		seconds := int64((outageLeft + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(seconds, 10))
		message = fmt.Sprintf("simulated outage, %v left; retry later", outageLeft.Round(time.Millisecond))
	case s.failRandom.chance(s.cfg.FailRequests):
		message = "injected failure (--fail-requests); retry the request"
	default:
		return false
	}

	s.counters.requestsFailed.Add(1)
	writeError(w, http.StatusServiceUnavailable, ErrorAPI, message)
	return true
}

// authenticate checks the bearer token and writes a 401 authentication_error when it
// is missing or wrong.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) bool {
	header := r.Header.Get("Authorization")
	token, isBearer := strings.CutPrefix(header, "Bearer ")

	var message string
	switch {
	case header == "":
		message = "missing API key: send the header Authorization: Bearer <api key>"
	case !isBearer:
		message = "invalid Authorization header: expected Bearer <api key>"
	case subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.APIKey)) != 1:
		message = "invalid API key"
	default:
		return true
	}

	w.Header().Set("WWW-Authenticate", `Bearer realm="psp-simulator"`)
	writeError(w, http.StatusUnauthorized, ErrorAuthentication, message)
	return false
}

func (s *Server) getAccount(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"id": "acct_simulator"})
}

func serveUnknownRoute(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, ErrorNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
}

// sleepContext waits for d and reports whether ctx was still live at the end.
func sleepContext(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

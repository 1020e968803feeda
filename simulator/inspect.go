package simulator

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// Stats holds the counters that GET /_simulator/stats returns.
type Stats struct {
	// APIRequests counts every /v1/ request, including rejected and failed ones.
	APIRequests int64 `json:"api_requests"`
	// PaymentCreates counts every POST /v1/payments request, including replays,
	// rejected and failed ones.
	PaymentCreates int64 `json:"payment_creates"`
	// RequestsFailed counts /v1/ requests rejected with 503 by --fail-requests, an outage or
	// a closed server.
	RequestsFailed int64 `json:"requests_failed"`
	// Events counts the events made, one per status change.
	Events int64 `json:"events"`
	// CallbacksSent counts callback attempts; every retry and each copy of a duplicate
	// counts.
	CallbacksSent int64 `json:"callbacks_sent"`
	// CallbacksAcknowledged counts callback attempts that got a 2xx response.
	CallbacksAcknowledged int64 `json:"callbacks_acknowledged"`
	// CallbacksLost counts events that --lose-callbacks dropped.
	CallbacksLost int64 `json:"callbacks_lost"`
	// CallbacksDuplicated counts events that --duplicate-callbacks sent twice.
	CallbacksDuplicated int64 `json:"callbacks_duplicated"`
	// CallbacksAbandoned counts deliveries given up after --retry-for.
	CallbacksAbandoned int64 `json:"callbacks_abandoned"`
}

// counters holds the live values behind Stats.
type counters struct {
	apiRequests           atomic.Int64
	paymentCreates        atomic.Int64
	requestsFailed        atomic.Int64
	events                atomic.Int64
	callbacksSent         atomic.Int64
	callbacksAcknowledged atomic.Int64
	callbacksLost         atomic.Int64
	callbacksDuplicated   atomic.Int64
	callbacksAbandoned    atomic.Int64
}

// Stats returns the current counters. Each counter is read atomically, but not all of
// them at one instant.
func (s *Server) Stats() Stats {
	c := &s.counters
	return Stats{
		APIRequests:           c.apiRequests.Load(),
		PaymentCreates:        c.paymentCreates.Load(),
		RequestsFailed:        c.requestsFailed.Load(),
		Events:                c.events.Load(),
		CallbacksSent:         c.callbacksSent.Load(),
		CallbacksAcknowledged: c.callbacksAcknowledged.Load(),
		CallbacksLost:         c.callbacksLost.Load(),
		CallbacksDuplicated:   c.callbacksDuplicated.Load(),
		CallbacksAbandoned:    c.callbacksAbandoned.Load(),
	}
}

// Payments returns every payment the simulator holds, in creation order.
func (s *Server) Payments() []Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshotPayments(s.paymentOrder)
}

func (s *Server) listAllPayments(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, listBody[Payment]{Data: s.Payments()})
}

func (s *Server) getStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// queryDuration reads the duration query parameter, or writes a 400 and
// returns false.
func queryDuration(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	raw := r.URL.Query().Get("duration")
	if raw == "" {
		writeError(w, http.StatusBadRequest, ErrorInvalidRequest,
			"missing query parameter duration, for example ?duration=60s")
		return 0, false
	}
	duration, err := time.ParseDuration(raw)
	if err != nil || duration < 0 {
		writeError(w, http.StatusBadRequest, ErrorInvalidRequest,
			fmt.Sprintf("invalid duration %q: must be a Go duration of 0 or more, for example 60s", raw))
		return 0, false
	}
	return duration, true
}

// setLatency sets the latency added to every /v1/ request from now on, as
// --api-latency does at start. Test-only.
func (s *Server) setLatency(w http.ResponseWriter, r *http.Request) {
	latency, ok := queryDuration(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	s.apiLatency = latency
	s.mu.Unlock()

	s.log.Info("API latency set", "latency", latency)
	writeJSON(w, http.StatusOK, map[string]string{"api_latency": latency.String()})
}

// startOutage makes every /v1/ request fail with 503 for the duration in the query,
// replacing any outage in progress. A duration of 0 ends the outage.
func (s *Server) startOutage(w http.ResponseWriter, r *http.Request) {
	duration, ok := queryDuration(w, r)
	if !ok {
		return
	}

	until := time.Now().Add(duration)
	s.mu.Lock()
	s.outageUntil = until
	s.mu.Unlock()

	s.log.Info("outage started", "duration", duration)
	writeJSON(w, http.StatusOK, map[string]string{"outage_until": until.UTC().Format(time.RFC3339Nano)})
}

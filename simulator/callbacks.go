package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// maxConcurrentDeliveries limits the callback attempts in flight at once.
const maxConcurrentDeliveries = 16

// maxDrainedBytes is how much of a callback response body is read so that the
// connection can be reused. A longer body closes the connection.
const maxDrainedBytes = 64 << 10

// Event is the body of a callback.
type Event struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`    // "payment." and the new status
	Created int64     `json:"created"` // Unix seconds of the status change
	Data    EventData `json:"data"`
}

// EventData holds the payment as it was right after the status change.
type EventData struct {
	Object Payment `json:"object"`
}

// delivery is the sending of one event to one endpoint, retried until a 2xx response or
// until deadline. Only the goroutine that holds its job uses it.
type delivery struct {
	eventID    string
	endpointID string
	body       []byte
	attempts   int
	backoff    time.Duration // wait after the next failed attempt
	deadline   time.Time     // no attempt starts after it
}

// publishLocked makes the event for payment's new status and queues its delivery to
// every registered endpoint, applying the lose, duplicate and delay switches. The
// caller holds s.mu.
func (s *Server) publishLocked(payment Payment, now time.Time) {
	event := Event{
		ID:      newID("evt_"),
		Type:    "payment." + payment.Status,
		Created: now.Unix(),
		Data:    EventData{Object: payment},
	}
	// Marshaling cannot fail for a struct of strings, integers and a string map.
	body, _ := json.Marshal(event) //nolint:errchkjson // see above
	s.counters.events.Add(1)

	// Both draws happen for every event, so a seed gives the same choices for the same
	// order of events whatever the shares.
	lost := s.callbackRandom.chance(s.cfg.LoseCallbacks)
	duplicated := s.callbackRandom.chance(s.cfg.DuplicateCallbacks)
	if lost {
		s.counters.callbacksLost.Add(1)
		return
	}
	copies := 1
	if duplicated {
		s.counters.callbacksDuplicated.Add(1)
		copies = 2
	}

	// Each copy waits its own random delay, so the two copies of a duplicate are
	// independent deliveries of the same event id.
	for range copies {
		due := now.Add(s.callbackRandom.duration(s.cfg.DelayCallbacks))
		for _, endpoint := range s.endpointOrder {
			s.pushJobLocked(&job{due: due, delivery: &delivery{
				eventID:    event.ID,
				endpointID: endpoint.ID,
				body:       body,
				backoff:    s.cfg.RetryInitial,
				deadline:   due.Add(s.cfg.RetryFor),
			}})
		}
	}
}

// schedule runs due jobs until ctx is done, then waits for the attempts in flight,
// which end early because they use ctx. Outcome jobs run on this goroutine, and each
// callback attempt runs on its own goroutine, at most maxConcurrentDeliveries at once,
// so callbacks due together can arrive in any order.
func (s *Server) schedule(ctx context.Context) {
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	slots := make(chan struct{}, maxConcurrentDeliveries)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	for {
		due, wait := s.popDueJobs(time.Now())
		for _, j := range due {
			if j.delivery == nil {
				s.completePayment(j.paymentID)
				continue
			}
			inFlight.Go(func() { s.attemptWithSlot(ctx, slots, j.delivery) })
		}
		if len(due) > 0 {
			continue // Outcome jobs may have queued callbacks that are due now.
		}

		var timerC <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timerC:
		}
	}
}

// attemptWithSlot waits for a free slot, then makes one callback attempt.
func (s *Server) attemptWithSlot(ctx context.Context, slots chan struct{}, d *delivery) {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-slots }()
	s.attempt(ctx, d)
}

// attempt sends d once and queues a retry when that fails. A delivery to a deleted
// endpoint is dropped.
func (s *Server) attempt(ctx context.Context, d *delivery) {
	s.mu.Lock()
	endpoint := s.endpoints[d.endpointID]
	s.mu.Unlock()
	if endpoint == nil {
		return
	}

	d.attempts++
	s.counters.callbacksSent.Add(1)
	err := s.post(ctx, endpoint, d)
	if err == nil {
		s.counters.callbacksAcknowledged.Add(1)
		return
	}
	if ctx.Err() != nil {
		return // The server is closing, and the error is the cancellation.
	}
	s.retryLater(d, err)
}

// retryLater queues the next attempt of d after its backoff, or gives up when that
// would start after its deadline.
func (s *Server) retryLater(d *delivery, cause error) {
	next := time.Now().Add(d.backoff)
	if next.After(d.deadline) {
		s.counters.callbacksAbandoned.Add(1)
		s.log.Warn("callback delivery failed, giving up because the retry period has ended",
			"event_id", d.eventID, "endpoint_id", d.endpointID, "attempts", d.attempts,
			"retry_for", s.cfg.RetryFor, "error", cause)
		return
	}

	s.log.Warn("callback delivery failed, retrying",
		"event_id", d.eventID, "endpoint_id", d.endpointID, "attempt", d.attempts,
		"retry_in", d.backoff, "error", cause)
	d.backoff = min(2*d.backoff, s.cfg.RetryMax)
	s.pushJob(&job{due: next, delivery: d})
}

// post sends d's event to endpoint, signed for this attempt's timestamp, and returns an
// error unless the response status is 2xx. The error leaves out the endpoint URL, which may
// carry a token in its query.
func (s *Server) post(ctx context.Context, endpoint *endpointRecord, d *delivery) error {
	now := time.Now()
	signature, err := endpoint.signer.Sign(d.eventID, now, d.body)
	if err != nil {
		return fmt.Errorf("failed to sign the callback: %w", err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.URL, bytes.NewReader(d.body))
	if err != nil {
		return fmt.Errorf("failed to build the callback request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "psp-simulator")
	req.Header.Set(standardwebhooks.HeaderWebhookID, d.eventID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, signature)

	resp, err := s.client.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return fmt.Errorf("callback request failed: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainedBytes))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint responded with status %s", resp.Status)
	}
	return nil
}

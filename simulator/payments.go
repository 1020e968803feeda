package simulator

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Payment statuses. Succeeded, failed and canceled are terminal.
const (
	StatusProcessing     = "processing"
	StatusRequiresAction = "requires_action"
	StatusSucceeded      = "succeeded"
	StatusFailed         = "failed"
	StatusCanceled       = "canceled"
)

// Payment-method tokens. A token "pm_decline_<code>" fails the payment with failure
// code <code>.
const (
	TokenSuccess        = "pm_success"
	TokenRequiresAction = "pm_requires_action"
	TokenSlow           = "pm_slow"
	TokenDeclinePrefix  = "pm_decline_"
)

// maxIdempotencyKeyLength is the longest accepted Idempotency-Key, the limit of Stripe.
const maxIdempotencyKeyLength = 255

var (
	currencyPattern    = regexp.MustCompile(`^[A-Z]{3}$`)
	declineCodePattern = regexp.MustCompile(`^[a-z0-9_]+$`)
)

// declineMessages holds the failure messages of common decline codes. Other codes get
// a message built from the code.
var declineMessages = map[string]string{
	"card_declined":      "The card was declined.",
	"do_not_honor":       "The card was declined by the issuer.",
	"expired_card":       "The card has expired.",
	"fraudulent":         "The payment was declined as suspected fraud.",
	"incorrect_cvc":      "The card's security code is incorrect.",
	"insufficient_funds": "The card has insufficient funds.",
	"lost_card":          "The card was reported lost.",
	"processing_error":   "An error occurred while processing the card.",
	"stolen_card":        "The card was reported stolen.",
}

// Payment is the payment object of the API. It never contains the payment-method token.
type Payment struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	Amount         int64             `json:"amount"` // in minor units of Currency
	Currency       string            `json:"currency"`
	Description    string            `json:"description"`
	IdempotencyKey string            `json:"idempotency_key"`
	Metadata       map[string]string `json:"metadata"`
	FailureCode    string            `json:"failure_code"`
	FailureMessage string            `json:"failure_message"`
	Created        int64             `json:"created"` // Unix seconds
}

// CreatePaymentRequest is the body of POST /v1/payments.
type CreatePaymentRequest struct {
	Amount        int64             `json:"amount"`
	Currency      string            `json:"currency"`
	PaymentMethod string            `json:"payment_method"`
	Description   string            `json:"description"`
	Metadata      map[string]string `json:"metadata"`
}

// paymentRecord is a stored payment with what the API does not show.
type paymentRecord struct {
	Payment
	request CreatePaymentRequest // compared with later creates under the same key
	outcome outcome
}

// outcome is the state a payment moves to when it leaves processing.
type outcome struct {
	status         string
	failureCode    string
	failureMessage string
	delay          time.Duration // from create
}

// outcomeOf returns the outcome of a payment-method token, or an error for an unknown
// token.
func (s *Server) outcomeOf(token string) (outcome, error) {
	switch token {
	case TokenSuccess:
		return outcome{status: StatusSucceeded, delay: s.cfg.ProcessingDelay}, nil
	case TokenRequiresAction:
		return outcome{status: StatusRequiresAction, delay: s.cfg.ProcessingDelay}, nil
	case TokenSlow:
		return outcome{status: StatusSucceeded, delay: s.cfg.SlowDelay}, nil
	}

	code, isDecline := strings.CutPrefix(token, TokenDeclinePrefix)
	if isDecline && declineCodePattern.MatchString(code) {
		return outcome{
			status:         StatusFailed,
			failureCode:    code,
			failureMessage: declineMessage(code),
			delay:          s.cfg.ProcessingDelay,
		}, nil
	}

	// The token is not repeated: a payment-method token does not belong in error messages.
	return outcome{}, fmt.Errorf("unknown payment_method token: use %s, %s, %s or %s<code> such as %sinsufficient_funds",
		TokenSuccess, TokenRequiresAction, TokenSlow, TokenDeclinePrefix, TokenDeclinePrefix)
}

func declineMessage(code string) string {
	if message, ok := declineMessages[code]; ok {
		return message
	}
	return fmt.Sprintf("The payment was declined (%s).", strings.ReplaceAll(code, "_", " "))
}

// validatePaymentRequest returns the error message for an invalid create, or "".
func validatePaymentRequest(req CreatePaymentRequest) string {
	if req.Amount < 1 {
		return fmt.Sprintf("invalid amount %d: must be at least 1, in minor units", req.Amount)
	}
	if !currencyPattern.MatchString(req.Currency) {
		return fmt.Sprintf("invalid currency %q: must be three upper-case letters, such as USD", req.Currency)
	}
	return ""
}

// differingParameter returns the name of the first parameter in which two creates
// differ, or "" when they are the same.
func differingParameter(a, b CreatePaymentRequest) string {
	switch {
	case a.Amount != b.Amount:
		return "amount"
	case a.Currency != b.Currency:
		return "currency"
	case a.PaymentMethod != b.PaymentMethod:
		return "payment_method"
	case a.Description != b.Description:
		return "description"
	case !maps.Equal(a.Metadata, b.Metadata):
		return "metadata"
	default:
		return ""
	}
}

// readIdempotencyKey returns the Idempotency-Key header, or writes a 400 response and returns
// false when it is missing or too long.
func readIdempotencyKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		writeError(w, http.StatusBadRequest, ErrorInvalidRequest, "missing Idempotency-Key header")
		return "", false
	}
	if len(key) > maxIdempotencyKeyLength {
		writeError(w, http.StatusBadRequest, ErrorInvalidRequest,
			fmt.Sprintf("invalid Idempotency-Key header: %d bytes, the limit is %d", len(key), maxIdempotencyKeyLength))
		return "", false
	}
	return key, true
}

func (s *Server) createPayment(w http.ResponseWriter, r *http.Request) {
	key, ok := readIdempotencyKey(w, r)
	if !ok {
		return
	}
	var req CreatePaymentRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if message := validatePaymentRequest(req); message != "" {
		writeError(w, http.StatusBadRequest, ErrorInvalidRequest, message)
		return
	}
	result, err := s.outcomeOf(req.PaymentMethod)
	if err != nil {
		writeError(w, http.StatusBadRequest, ErrorInvalidRequest, err.Error())
		return
	}

	payment, replayed, apiErr := s.storePayment(key, req, result)
	switch {
	case apiErr != nil:
		apiErr.write(w)
	case replayed:
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, http.StatusOK, payment)
	default:
		writeJSON(w, http.StatusOK, payment)
	}
}

// storePayment creates a payment, or returns the earlier payment with the same key and
// replayed set. Another create with the same key and other parameters is an
// idempotency_error.
func (s *Server) storePayment(key string, req CreatePaymentRequest, result outcome) (Payment, bool, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()

	earlier := s.earlierPaymentLocked(key)
	if earlier == nil {
		return s.addPaymentLocked(key, req, result).Payment, false, nil
	}
	if parameter := differingParameter(earlier.request, req); parameter != "" {
		return Payment{}, false, &apiError{http.StatusConflict, ErrorIdempotency, fmt.Sprintf(
			"Idempotency-Key %q was already used for payment %s with a different %s; use a new key for a new payment",
			key, earlier.ID, parameter)}
	}
	return earlier.Payment, true, nil
}

// earlierPaymentLocked returns the payment created with key, or nil when there is none
// or keys are forgotten.
func (s *Server) earlierPaymentLocked(key string) *paymentRecord {
	if s.cfg.ForgetIdempotencyKeys {
		return nil
	}
	earlier := s.paymentsByKey[key]
	if len(earlier) == 0 {
		return nil
	}
	return earlier[0]
}

// addPaymentLocked stores a new payment in processing, publishes its
// payment.processing event and queues the move to its outcome.
func (s *Server) addPaymentLocked(key string, req CreatePaymentRequest, result outcome) *paymentRecord {
	now := time.Now()
	metadata := maps.Clone(req.Metadata)
	if metadata == nil {
		metadata = map[string]string{}
	}

	record := &paymentRecord{
		Payment: Payment{
			ID:             newID("pay_"),
			Status:         StatusProcessing,
			Amount:         req.Amount,
			Currency:       req.Currency,
			Description:    req.Description,
			IdempotencyKey: key,
			Metadata:       metadata,
			Created:        now.Unix(),
		},
		request: req,
		outcome: result,
	}
	s.payments[record.ID] = record
	s.paymentOrder = append(s.paymentOrder, record)
	s.paymentsByKey[key] = append(s.paymentsByKey[key], record)

	s.publishLocked(record.Payment, now)
	s.pushJobLocked(&job{due: now.Add(result.delay), paymentID: record.ID})
	return record
}

// completePayment moves a payment that is still processing to its outcome and
// publishes the event. A canceled payment stays canceled.
func (s *Server) completePayment(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()

	record := s.payments[id]
	if record == nil || record.Status != StatusProcessing {
		return
	}
	record.Status = record.outcome.status
	record.FailureCode = record.outcome.failureCode
	record.FailureMessage = record.outcome.failureMessage
	s.publishLocked(record.Payment, time.Now())
}

func (s *Server) getPayment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")

	s.mu.Lock()
	record := s.payments[id]
	var payment Payment
	if record != nil {
		payment = record.Payment
	}
	s.mu.Unlock()

	if record == nil {
		paymentNotFound(id).write(w)
		return
	}
	writeJSON(w, http.StatusOK, payment)
}

func (s *Server) listPaymentsByKey(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("idempotency_key")
	if key == "" {
		writeError(w, http.StatusBadRequest, ErrorInvalidRequest,
			"missing query parameter idempotency_key; the API lists payments only by key")
		return
	}

	s.mu.Lock()
	payments := snapshotPayments(s.paymentsByKey[key])
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, listBody[Payment]{Data: payments})
}

func (s *Server) cancelPayment(w http.ResponseWriter, r *http.Request) {
	payment, apiErr := s.cancel(r.PathValue("id"))
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	writeJSON(w, http.StatusOK, payment)
}

// cancel moves a processing or requires_action payment to canceled and publishes the
// event. Canceling a payment in a terminal status is an invalid_state error.
func (s *Server) cancel(id string) (Payment, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()

	record := s.payments[id]
	if record == nil {
		return Payment{}, paymentNotFound(id)
	}
	if record.Status != StatusProcessing && record.Status != StatusRequiresAction {
		return Payment{}, &apiError{http.StatusConflict, ErrorInvalidState, fmt.Sprintf(
			"payment %s is %s; only a processing or requires_action payment can be canceled", id, record.Status)}
	}

	record.Status = StatusCanceled
	s.publishLocked(record.Payment, time.Now())
	return record.Payment, nil
}

func paymentNotFound(id string) *apiError {
	return &apiError{http.StatusNotFound, ErrorNotFound, fmt.Sprintf("no payment with id %q", id)}
}

// snapshotPayments copies the API objects of records, never returning nil so that the
// JSON list is [] rather than null.
func snapshotPayments(records []*paymentRecord) []Payment {
	payments := make([]Payment, 0, len(records))
	for _, record := range records {
		payments = append(payments, record.Payment)
	}
	return payments
}

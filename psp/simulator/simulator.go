// Package simulator is the psp adapter for the PSP simulator bundled with
// payment-operator (cmd/psp-simulator, described in docs/simulator.md).
// Callbacks are signed with the Standard Webhooks scheme.
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
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payment-operator/payment-operator/psp"
)

// TypeName is the v1alpha1.ProviderType this adapter serves.
const TypeName = "Simulator"

// maxResponseBytes bounds how much of a PSP response is read.
const maxResponseBytes = 1 << 20

func init() {
	psp.Register(TypeName, Adapter{})
}

// Adapter creates simulator clients and verifies simulator callbacks.
type Adapter struct{}

// NewProvider returns a client for the simulator at cfg.Endpoint.
func (Adapter) NewProvider(cfg psp.Config) (psp.Provider, error) {
	base, err := url.Parse(cfg.Endpoint)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("invalid simulator endpoint %q: expected an absolute URL such as http://psp-simulator:8090", cfg.Endpoint)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &client{
		base:   strings.TrimSuffix(base.String(), "/"),
		apiKey: cfg.APIKey,
		http:   &http.Client{Timeout: timeout},
	}, nil
}

// VerifyCallback checks the Standard Webhooks signature of body: the
// webhook-id, webhook-timestamp and webhook-signature headers, a timestamp
// within five minutes of now in either direction, and any one of the
// space-separated signatures matching, compared in constant time.
func (Adapter) VerifyCallback(header http.Header, body []byte, secret string) error {
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return fmt.Errorf("invalid signing secret: %w", err)
	}
	return verifier.Verify(body, header)
}

// ParseCallback decodes a verified callback body.
func (Adapter) ParseCallback(body []byte) (*psp.Event, error) {
	var event struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Object *payment `json:"object"`
		} `json:"data"`
	}
	decoder := json.NewDecoder(bytes.NewReader(body))
	if err := decoder.Decode(&event); err != nil {
		return nil, fmt.Errorf("invalid callback JSON: %w", err)
	}
	if decoder.More() {
		return nil, errors.New("invalid callback JSON: data after the event object")
	}
	if event.ID == "" || event.Type == "" {
		return nil, errors.New("invalid callback: id and type are required")
	}

	parsed := &psp.Event{ID: event.ID, Type: event.Type}
	if strings.HasPrefix(event.Type, "payment.") {
		if event.Data.Object == nil || event.Data.Object.ID == "" {
			return nil, fmt.Errorf("invalid callback %s: a %s event needs data.object with an id", event.ID, event.Type)
		}
		converted, err := event.Data.Object.toPSP()
		if err != nil {
			return nil, fmt.Errorf("invalid callback %s: %w", event.ID, err)
		}
		parsed.Payment = converted
	}
	return parsed, nil
}

// payment is the simulator's JSON form of a payment.
type payment struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	Amount         int64             `json:"amount"`
	Currency       string            `json:"currency"`
	IdempotencyKey string            `json:"idempotency_key"`
	Metadata       map[string]string `json:"metadata"`
	FailureCode    string            `json:"failure_code"`
	FailureMessage string            `json:"failure_message"`
}

func (p *payment) toPSP() (*psp.Payment, error) {
	status := psp.Status(p.Status)
	switch status {
	case psp.StatusProcessing, psp.StatusRequiresAction, psp.StatusSucceeded, psp.StatusFailed, psp.StatusCanceled:
	default:
		return nil, fmt.Errorf("payment %s has unknown status %q", p.ID, p.Status)
	}
	return &psp.Payment{
		ID:             p.ID,
		Status:         status,
		Amount:         p.Amount,
		Currency:       p.Currency,
		IdempotencyKey: p.IdempotencyKey,
		Metadata:       p.Metadata,
		FailureCode:    p.FailureCode,
		FailureMessage: p.FailureMessage,
	}, nil
}

type client struct {
	base   string
	apiKey string
	http   *http.Client
}

func (c *client) CheckCredentials(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v1/account", "", nil, nil)
}

func (c *client) CreatePayment(ctx context.Context, req psp.CreateRequest) (*psp.Payment, error) {
	if req.IdempotencyKey == "" {
		return nil, &psp.Error{Kind: psp.Permanent, Message: "create without an idempotency key"}
	}
	body := map[string]any{
		"amount":         req.Amount,
		"currency":       req.Currency,
		"payment_method": req.PaymentMethod,
		"description":    req.Description,
		"metadata":       req.Metadata,
	}
	var created payment
	if err := c.do(ctx, http.MethodPost, "/v1/payments", req.IdempotencyKey, body, &created); err != nil {
		return nil, err
	}
	return created.toPSP()
}

func (c *client) GetPayment(ctx context.Context, id string) (*psp.Payment, error) {
	var found payment
	if err := c.do(ctx, http.MethodGet, "/v1/payments/"+url.PathEscape(id), "", nil, &found); err != nil {
		return nil, err
	}
	return found.toPSP()
}

func (c *client) FindPayment(ctx context.Context, idempotencyKey string) (*psp.Payment, error) {
	var list struct {
		Data []payment `json:"data"`
	}
	path := "/v1/payments?idempotency_key=" + url.QueryEscape(idempotencyKey)
	if err := c.do(ctx, http.MethodGet, path, "", nil, &list); err != nil {
		return nil, err
	}
	if len(list.Data) == 0 {
		return nil, &psp.Error{Kind: psp.NotFound, Message: "no payment with that idempotency key"}
	}
	return list.Data[0].toPSP()
}

func (c *client) CancelPayment(ctx context.Context, id string) (*psp.Payment, error) {
	var canceled payment
	if err := c.do(ctx, http.MethodPost, "/v1/payments/"+url.PathEscape(id)+"/cancel", "", nil, &canceled); err != nil {
		return nil, err
	}
	return canceled.toPSP()
}

func (c *client) RegisterCallback(ctx context.Context, registrationKey, callbackURL, secret string) (*psp.CallbackEndpoint, error) {
	body := map[string]string{"url": callbackURL}
	if secret != "" {
		body["secret"] = secret
	}
	var endpoint struct {
		ID     string `json:"id"`
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/callback_endpoints", registrationKey, body, &endpoint); err != nil {
		return nil, err
	}
	return &psp.CallbackEndpoint{ID: endpoint.ID, URL: endpoint.URL, Secret: endpoint.Secret}, nil
}

// do sends one API request and decodes a 2xx response into out. Any other
// response becomes a *psp.Error classified by status code and error type.
func (c *client) do(ctx context.Context, method, path, idempotencyKey string, in, out any) error {
	var body io.Reader
	if in != nil {
		encoded, err := json.Marshal(in)
		if err != nil {
			return &psp.Error{Kind: psp.Permanent, Message: "cannot encode request", Err: err}
		}
		body = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return &psp.Error{Kind: psp.Permanent, Message: "cannot build request", Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		// The URL in a *url.Error is ours and holds no secret; the API key
		// travels in a header and never appears here.
		return &psp.Error{Kind: psp.Transient, Message: fmt.Sprintf("%s %s failed", method, path), Err: err}
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return &psp.Error{Kind: psp.Transient, Message: fmt.Sprintf("%s %s: reading the response failed", method, path), StatusCode: resp.StatusCode, Err: err}
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(method, path, resp.StatusCode, payload)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(payload, out); err != nil {
		return &psp.Error{Kind: psp.Transient, Message: fmt.Sprintf("%s %s: invalid JSON in the response", method, path), StatusCode: resp.StatusCode, Err: err}
	}
	return nil
}

// responseError turns a non-2xx response into a *psp.Error.
func responseError(method, path string, status int, payload []byte) error {
	var apiErr struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(payload, &apiErr)

	kind := psp.KindForStatus(status)
	if apiErr.Error.Type == "idempotency_error" {
		// The key was used with other parameters: retrying cannot help.
		kind = psp.Permanent
	}
	message := apiErr.Error.Message
	if message == "" {
		message = fmt.Sprintf("%s %s returned %s", method, path, http.StatusText(status))
	}
	return &psp.Error{Kind: kind, Code: apiErr.Error.Type, Message: message, StatusCode: status}
}

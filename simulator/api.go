package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Error types of the API, each with the status codes it is sent with.
const (
	ErrorInvalidRequest = "invalid_request"      // 400
	ErrorAuthentication = "authentication_error" // 401
	ErrorNotFound       = "not_found"            // 404
	ErrorIdempotency    = "idempotency_error"    // 409
	ErrorInvalidState   = "invalid_state"        // 409
	ErrorAPI            = "api_error"            // 500 or 503
)

// maxBodyBytes is the largest request body the API reads; a larger one gets 400.
const maxBodyBytes = 1 << 20

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error object inside ErrorBody.
type ErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// apiError is an error response that a handler has yet to write.
type apiError struct {
	status    int
	errorType string
	message   string
}

func (e *apiError) write(w http.ResponseWriter) {
	writeError(w, e.status, e.errorType, e.message)
}

// listBody is the JSON body of every list response.
type listBody[T any] struct {
	Data []T `json:"data"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	encoder := json.NewEncoder(w)
	encoder.SetEscapeHTML(false) // Keeps <api key> in messages readable.
	// An encoding error here means the client went away, and the status is already sent.
	_ = encoder.Encode(body) //nolint:errchkjson // see above
}

func writeError(w http.ResponseWriter, status int, errorType, message string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Type: errorType, Message: message}})
}

// decodeBody decodes the request's JSON body into dst and reports whether that
// succeeded. It rejects bodies larger than maxBodyBytes, unknown fields and trailing
// data with a 400 response, so on false the caller only returns.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	err := decodeJSON(http.MaxBytesReader(w, r.Body, maxBodyBytes), dst)
	if err != nil {
		writeError(w, http.StatusBadRequest, ErrorInvalidRequest, err.Error())
		return false
	}
	return true
}

func decodeJSON(body io.Reader, dst any) error {
	decoder := json.NewDecoder(body)
	decoder.DisallowUnknownFields()

	err := decoder.Decode(dst)
	if err == nil {
		err = expectEnd(decoder)
	}

	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return fmt.Errorf("invalid request body: larger than the limit of %d bytes", tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return errors.New("invalid request body: empty, expected a JSON object")
	default:
		return fmt.Errorf("invalid request body: %w", err)
	}
}

// expectEnd returns an error unless only white space follows the decoded value.
func expectEnd(decoder *json.Decoder) error {
	err := decoder.Decode(&json.RawMessage{})
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return errors.New("unexpected data after the JSON object")
	default:
		return err
	}
}

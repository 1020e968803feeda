package simulator

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultAPIKey is the API key that the simulator accepts unless configured otherwise.
const DefaultAPIKey = "sk_test_simulator" //nolint:gosec // the simulator's public test key, not a credential

// Config holds the switches of a simulator. DefaultConfig returns the defaults of the
// psp-simulator binary.
type Config struct {
	// APIKey is the only accepted bearer token. Empty means DefaultAPIKey.
	APIKey string

	// ProcessingDelay is the time from create to a payment's outcome. Zero moves the
	// payment on the next scheduler pass.
	ProcessingDelay time.Duration
	// SlowDelay replaces ProcessingDelay for the pm_slow token.
	SlowDelay time.Duration

	// RetryInitial is the wait after the first failed callback attempt. Each later wait
	// doubles, up to RetryMax. Zero means 1s.
	RetryInitial time.Duration
	// RetryMax caps the wait between callback attempts. Zero means 30s, or RetryInitial
	// when that is longer.
	RetryMax time.Duration
	// RetryFor is how long after its first attempt a callback delivery is retried.
	// Zero means 1h.
	RetryFor time.Duration

	// LoseCallbacks is the share of events (0 to 1) that are never delivered.
	LoseCallbacks float64
	// DuplicateCallbacks is the share of events (0 to 1) delivered twice.
	DuplicateCallbacks float64
	// DelayCallbacks is the upper bound of a random wait before an event's first attempt.
	DelayCallbacks time.Duration
	// FailRequests is the share of /v1/ requests (0 to 1) rejected with 503 api_error.
	FailRequests float64
	// Seed seeds the random choices above. Zero picks a seed from the clock.
	Seed int64

	// ForgetIdempotencyKeys makes every payment create ignore earlier creates with the
	// same Idempotency-Key, like a PSP whose idempotency window has passed. Test-only.
	ForgetIdempotencyKeys bool
	// APILatency is added to every /v1/ request, to play a slow PSP. Test-only.
	APILatency time.Duration

	// Logger receives callback delivery failures and retries. Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults of the psp-simulator binary.
func DefaultConfig() Config {
	return Config{
		APIKey:          DefaultAPIKey,
		ProcessingDelay: 2 * time.Second,
		SlowDelay:       30 * time.Second,
		RetryInitial:    time.Second,
		RetryMax:        30 * time.Second,
		RetryFor:        time.Hour,
	}
}

// Validate returns an error that names every invalid field. It does not apply the
// zero-value defaults that New applies, so zero retry settings are invalid here.
func (c Config) Validate() error {
	var errs []error

	if c.APIKey == "" {
		errs = append(errs, errors.New("api key must not be empty"))
	}

	durations := []struct {
		name     string
		value    time.Duration
		positive bool
	}{
		{"processing delay", c.ProcessingDelay, false},
		{"slow delay", c.SlowDelay, false},
		{"retry initial", c.RetryInitial, true},
		{"retry max", c.RetryMax, true},
		{"retry for", c.RetryFor, true},
		{"delay callbacks", c.DelayCallbacks, false},
		{"api latency", c.APILatency, false},
	}
	for _, d := range durations {
		if d.value < 0 || (d.positive && d.value == 0) {
			errs = append(errs, fmt.Errorf("invalid %s %v: must be %s", d.name, d.value, durationRule(d.positive)))
		}
	}
	if c.RetryMax < c.RetryInitial {
		errs = append(errs, fmt.Errorf("invalid retry max %v: must be at least retry initial %v", c.RetryMax, c.RetryInitial))
	}

	shares := []struct {
		name  string
		value float64
	}{
		{"lose callbacks", c.LoseCallbacks},
		{"duplicate callbacks", c.DuplicateCallbacks},
		{"fail requests", c.FailRequests},
	}
	for _, s := range shares {
		// The negated comparison also rejects NaN.
		if !(s.value >= 0 && s.value <= 1) {
			errs = append(errs, fmt.Errorf("invalid %s %v: must be a share from 0 to 1", s.name, s.value))
		}
	}

	return errors.Join(errs...)
}

func durationRule(positive bool) string {
	if positive {
		return "positive"
	}
	return "zero or positive"
}

// withDefaults returns c with defaults in place of a zero APIKey, RetryInitial,
// RetryMax or RetryFor, as the field comments list, and a discarding Logger in place
// of nil.
func (c Config) withDefaults() Config {
	defaults := DefaultConfig()
	if c.APIKey == "" {
		c.APIKey = defaults.APIKey
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = defaults.RetryInitial
	}
	if c.RetryMax == 0 {
		c.RetryMax = max(defaults.RetryMax, c.RetryInitial)
	}
	if c.RetryFor == 0 {
		c.RetryFor = defaults.RetryFor
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/payment-operator/payment-operator/simulator"
)

// listeningPattern finds the address in the start line. It is the expression that
// the doc comment of logStart documents.
var listeningPattern = regexp.MustCompile(`listening on (\S+:\d+)`)

// syncBuffer is a bytes.Buffer that is safe for concurrent use, for the log output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunServesUntilCanceled(t *testing.T) {
	const apiKey = "sk_test_do_not_log_me"
	var output syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() {
		runDone <- run(ctx, []string{"--listen", "127.0.0.1:0", "--api-key", apiKey, "--processing-delay", "10ms"}, &output)
	}()

	var address string
	deadline := time.Now().Add(5 * time.Second)
	for address == "" {
		if match := listeningPattern.FindStringSubmatch(output.String()); match != nil {
			address = match[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no start line within 5s; output %q", output.String())
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !strings.HasPrefix(address, "127.0.0.1:") || strings.HasSuffix(address, ":0") {
		t.Errorf("address = %q, want 127.0.0.1 with the port that was picked", address)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+address+"/v1/account", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/account: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/account status = %d, want 200", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("run returned %v, want nil after cancel", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return within 15s after cancel")
	}
	logs := output.String()
	if got := strings.Count(logs, "\n"); got != 2 {
		t.Errorf("log has %d lines, want 2, one for the start and one for the stop:\n%s", got, logs)
	}
	if !strings.Contains(logs, "msg=stopped") {
		t.Errorf("log has no stop line:\n%s", logs)
	}
	if strings.Contains(logs, apiKey) {
		t.Errorf("log contains the API key:\n%s", logs)
	}
}

func TestRunListenError(t *testing.T) {
	err := run(context.Background(), []string{"--listen", "127.0.0.1:-1"}, io.Discard)

	if err == nil || !strings.Contains(err.Error(), "failed to listen on 127.0.0.1:-1") {
		t.Errorf("run error = %v, want a listen failure that names the address", err)
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	opts, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}

	if opts.listen != "127.0.0.1:8090" {
		t.Errorf("listen = %q, want 127.0.0.1:8090", opts.listen)
	}
	if diff := cmp.Diff(simulator.DefaultConfig(), opts.config); diff != "" {
		t.Errorf("config mismatch with the defaults of the doc (-want +got):\n%s", diff)
	}
}

func TestParseFlagsAll(t *testing.T) {
	args := []string{
		"--listen", "127.0.0.1:9000",
		"--api-key", "sk_test_other",
		"--processing-delay", "1s",
		"--slow-delay", "5s",
		"--retry-initial", "100ms",
		"--retry-max", "2s",
		"--retry-for", "1m",
		"--lose-callbacks", "0.1",
		"--duplicate-callbacks", "0.2",
		"--delay-callbacks", "3s",
		"--fail-requests", "0.3",
		"--seed", "42",
		"--forget-idempotency-keys",
		"--api-latency", "250ms",
	}

	opts, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}

	want := simulator.Config{
		APIKey:                "sk_test_other",
		ProcessingDelay:       time.Second,
		SlowDelay:             5 * time.Second,
		RetryInitial:          100 * time.Millisecond,
		RetryMax:              2 * time.Second,
		RetryFor:              time.Minute,
		LoseCallbacks:         0.1,
		DuplicateCallbacks:    0.2,
		DelayCallbacks:        3 * time.Second,
		FailRequests:          0.3,
		Seed:                  42,
		ForgetIdempotencyKeys: true,
		APILatency:            250 * time.Millisecond,
	}
	if opts.listen != "127.0.0.1:9000" {
		t.Errorf("listen = %q, want 127.0.0.1:9000", opts.listen)
	}
	if diff := cmp.Diff(want, opts.config, cmpopts.IgnoreFields(simulator.Config{}, "Logger")); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestParseFlagsRejected(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		args   []string
		want   string // part of the output
	}{
		{"share above 1", "shares are from 0 to 1", []string{"--fail-requests", "1.5"}, "invalid fail requests 1.5"},
		{"negative share", "shares are from 0 to 1", []string{"--lose-callbacks", "-0.1"}, "invalid lose callbacks -0.1"},
		{"share not a number", "NaN is no share", []string{"--duplicate-callbacks", "NaN"}, "invalid duplicate callbacks NaN"},
		{"zero retry initial", "a zero backoff would retry in a busy loop", []string{"--retry-initial", "0"}, "invalid retry initial 0s"},
		{"retry max below initial", "the backoff cap cannot be below its start", []string{"--retry-initial", "5s", "--retry-max", "1s"}, "invalid retry max 1s"},
		{"negative delay", "delays cannot be negative", []string{"--processing-delay", "-1s"}, "invalid processing delay -1s"},
		{"empty api key", "some key must be required", []string{"--api-key", ""}, "api key must not be empty"},
		{"unknown flag", "typos must not pass silently", []string{"--listen-address", "x"}, "flag provided but not defined"},
		{"bad duration", "durations need a unit", []string{"--slow-delay", "30"}, "invalid value"},
		{"positional argument", "the command takes only flags", []string{"serve"}, `unexpected argument "serve"`},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var output bytes.Buffer

			_, err := parseFlags(tt.args, &output)

			if !errors.Is(err, errUsage) {
				t.Errorf("error = %v, want a usage error (%s)", err, tt.reason)
			}
			if !strings.Contains(output.String(), tt.want) {
				t.Errorf("output %q does not contain %q (%s)", output.String(), tt.want, tt.reason)
			}
		})
	}
}

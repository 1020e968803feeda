package simulator

import (
	cryptorand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"sync"
	"time"
)

// Streams of the PCG generator, one per switch, so that the draws of one switch do not
// shift the draws of another when both share a seed.
const (
	failRequestsStream = 1
	callbacksStream    = 2
)

// randomSource is a seeded generator that is safe for concurrent use.
type randomSource struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newRandomSource(seed int64, stream uint64) *randomSource {
	// Simulated outcomes need reproducibility, not secrecy; the conversion
	// keeps every bit of the seed.
	return &randomSource{rng: rand.New(rand.NewPCG(uint64(seed), stream))} //nolint:gosec // see above
}

// chance draws a number and reports whether it falls within share, a value from 0 to 1.
// It draws even when share is 0 or 1, so the sequence does not depend on the shares.
func (s *randomSource) chance(share float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < share
}

// duration draws a duration in [0, limit). It returns 0 without drawing when limit is
// not positive.
func (s *randomSource) duration(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.rng.Int64N(int64(limit)))
}

// newID returns prefix followed by 24 random hex digits. Go 1.24 and later crash the
// program instead of returning an error from crypto/rand.Read.
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = cryptorand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newSecret returns a Standard Webhooks secret: "whsec_" and 24 random bytes in base64.
func newSecret() string {
	b := make([]byte, 24)
	_, _ = cryptorand.Read(b)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

package rabbitmq_test

import (
	"crypto/tls"
	"testing"

	"github.com/qscale/qscale/sources/internal/sourcetest"
)

// newProxy puts a sourcetest.Proxy in front of the broker's target port, once the broker runs.
func newProxy(t testing.TB, target string, tc *tls.Config) *sourcetest.Proxy {
	t.Helper()
	broker(t)
	return sourcetest.NewProxy(t, target, tc)
}

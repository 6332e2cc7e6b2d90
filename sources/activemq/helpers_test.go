package activemq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/qscale/qscale/internal/activemqtest"
	"github.com/qscale/qscale/sources"
	"github.com/qscale/qscale/sources/activemq"
	"github.com/qscale/qscale/sources/internal/sourcetest"
)

var registry = sources.Registry{"activemq": activemq.Kind}

// shared is the broker that most tests read, started by the first test that needs one and
// stopped when the package's tests end.
var shared struct {
	once sync.Once
	b    *activemqtest.Broker
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.b != nil {
		_ = shared.b.Close()
	}
	os.Exit(code)
}

// broker returns the shared broker. It fails the test, rather than skipping it, when the
// broker cannot start: a skipped integration test reads as a passing one.
func broker(t testing.TB) *activemqtest.Broker {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), activemqtest.DefaultStartTimeout)
		defer cancel()
		shared.b, shared.err = activemqtest.Start(ctx, activemqtest.Options{})
	})
	if shared.err != nil {
		t.Fatalf("%v", shared.err)
	}
	return shared.b
}

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// fill sends n messages to queue and consumes m of them, leaving n-m.
func fill(t testing.TB, b *activemqtest.Broker, queue string, n, m int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Send(ctx, queue, n); err != nil {
		t.Fatal(err)
	}
	if m > 0 {
		if err := b.Consume(ctx, queue, m); err != nil {
			t.Fatal(err)
		}
	}
}

// md builds trigger metadata from key, value pairs.
func md(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// with returns a copy of m with the key, value pairs set; an empty value removes the key.
func with(m map[string]string, kv ...string) map[string]string { return sourcetest.With(m, kv...) }

// protocols lists, for each protocol, the metadata that reads queue on b, KEDA's way or
// the statistics plugin's.
func protocols(b *activemqtest.Broker) []struct {
	name string
	md   func(queue string) map[string]string
} {
	return []struct {
		name string
		md   func(queue string) map[string]string
	}{
		{"jolokia", func(q string) map[string]string {
			return md("managementEndpoint", b.JolokiaAddr, "brokerName", b.Name, "destinationName", q)
		}},
		{"stomp", func(q string) map[string]string {
			return md("protocol", "stomp", "stompEndpoint", b.StompAddr, "destinationName", q)
		}},
	}
}

// login is the Secret holding the broker's credentials.
func login(b *activemqtest.Broker) map[string]string {
	return map[string]string{"username": b.User, "password": b.Password}
}

// parse builds an activemq trigger, failing the test on a configuration error.
func parse(t testing.TB, metadata, secret map[string]string) sources.Trigger {
	t.Helper()
	return sourcetest.Parse(t, registry, "activemq", metadata, secret)
}

func newPool(t testing.TB) *sources.Pool { return sourcetest.NewPool(t, registry) }

func poll(_ testing.TB, pool *sources.Pool, triggers ...sources.Trigger) []sources.Sample {
	return sourcetest.Poll(pool, 10*time.Second, triggers...)
}

// wantSample checks a sample as sourcetest.WantSample does; no error may reveal password.
func wantSample(t testing.TB, got sources.Sample, password string, value float64, active bool, wantErr ...string) {
	t.Helper()
	sourcetest.WantSample(t, got, password, value, active, wantErr...)
}

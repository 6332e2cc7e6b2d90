package kafka_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/qscale/qscale/sources/internal/testpki"
)

func TestSASL(t *testing.T) {
	tests := []struct {
		name      string
		method    string // kfake's mechanism name
		sasl      string // the trigger's sasl parameter
		password  string
		wantError string
	}{
		{name: "plain", method: "PLAIN", sasl: "plain", password: "s3cret"},
		{name: "plaintext, KEDA's spelling", method: "PLAIN", sasl: "plaintext", password: "s3cret"},
		{name: "scram sha256", method: "SCRAM-SHA-256", sasl: "scram_sha256", password: "s3cret"},
		{name: "scram sha512", method: "SCRAM-SHA-512", sasl: "scram_sha512", password: "s3cret"},
		{name: "plain wrong password", method: "PLAIN", sasl: "plain", password: "wrong", wantError: "SASL plain authentication"},
		{name: "scram sha256 wrong password", method: "SCRAM-SHA-256", sasl: "scram_sha256", password: "wrong", wantError: "SASL scram_sha256 authentication"},
		{name: "scram sha512 wrong password", method: "SCRAM-SHA-512", sasl: "scram_sha512", password: "wrong", wantError: "SASL scram_sha512 authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newCluster(t, kfake.EnableSASL(), kfake.Superuser(tt.method, "qscale", "s3cret"), kfake.SeedTopics(2, "orders"))
			tr := parse(t, map[string]string{
				"bootstrapServers": tc.addrs, "consumerGroup": "g", "topic": "orders", "sasl": tt.sasl,
			}, map[string]string{"username": "qscale", "password": tt.password})
			got := pollOnce(t, newPool(t), 3*time.Second, tr)[0]
			checkAuthOutcome(t, got.Err, tt.wantError)
			if got.Err != nil && strings.Contains(got.Err.Error(), tt.password) {
				t.Errorf("error reveals the password: %v", got.Err)
			}
		})
	}
}

func checkAuthOutcome(t *testing.T, err error, wantError string) {
	t.Helper()
	switch {
	case wantError == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case wantError != "" && (err == nil || !strings.Contains(err.Error(), wantError)):
		t.Fatalf("err = %v, want it to contain %q", err, wantError)
	}
}

func TestTLS(t *testing.T) {
	pki := testpki.New(t)
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{pki.Server},
		ClientCAs:    pki.Pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
	}
	tc := newCluster(t, kfake.TLS(serverTLS), kfake.SeedTopics(1, "orders"))
	mtls := newCluster(t, kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{pki.Server}, ClientCAs: pki.Pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}), kfake.SeedTopics(1, "orders"))
	plainCluster := newCluster(t, kfake.SeedTopics(1, "orders"))

	tests := []struct {
		name      string
		addrs     string
		secret    map[string]string
		md        map[string]string
		wantError string
	}{
		{name: "trusted CA", addrs: tc.addrs, secret: map[string]string{"tls": "enable", "ca": pki.CAPEM}},
		{name: "untrusted server", addrs: tc.addrs, secret: map[string]string{"tls": "enable"}, wantError: "not trusted"},
		{name: "unsafeSsl skips verification", addrs: tc.addrs, secret: map[string]string{"tls": "enable"}, md: map[string]string{"unsafeSsl": "true"}},
		{name: "client certificate", addrs: mtls.addrs, secret: map[string]string{"tls": "enable", "ca": pki.CAPEM, "cert": pki.ClientCertPEM, "key": pki.ClientKeyPEM}},
		{name: "encrypted client key", addrs: mtls.addrs, secret: map[string]string{"tls": "enable", "ca": pki.CAPEM, "cert": pki.ClientCertPEM, "key": pki.EncryptedKeyPEM, "keyPassword": testpki.KeyPassword}},
		{name: "client certificate missing", addrs: mtls.addrs, secret: map[string]string{"tls": "enable", "ca": pki.CAPEM}, wantError: "kafka cluster"},
		{name: "tls against a plain listener", addrs: plainCluster.addrs, secret: map[string]string{"tls": "enable", "ca": pki.CAPEM}, wantError: "kafka cluster " + plainCluster.addrs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := map[string]string{"bootstrapServers": tt.addrs, "consumerGroup": "g", "topic": "orders"}
			for k, v := range tt.md {
				md[k] = v
			}
			got := pollOnce(t, newPool(t), 3*time.Second, parse(t, md, tt.secret))[0]
			checkAuthOutcome(t, got.Err, tt.wantError)
		})
	}
}

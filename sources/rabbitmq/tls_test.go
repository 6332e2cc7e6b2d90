package rabbitmq_test

import (
	"crypto/tls"
	"testing"

	"github.com/qscale/qscale/sources/internal/sourcetest"
	"github.com/qscale/qscale/sources/internal/testpki"
)

// The broker here has no TLS listener: a proxy terminates TLS in front of its plain ports,
// with a certificate from a test CA, and asks for client certificates where a case says so.
func TestTLS(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	createQueues(t, v, "orders")
	newPublisher(t, v).publish(t, "orders", 2)
	pki := testpki.New(t)
	serverOnly := &tls.Config{Certificates: []tls.Certificate{pki.Server}, MinVersion: tls.VersionTLS12}
	mutual := serverOnly.Clone()
	mutual.ClientAuth, mutual.ClientCAs = tls.RequireAndVerifyClientCert, pki.Pool
	proxies := map[string]*sourcetest.Proxy{
		"amqps":        newProxy(t, amqpAddr, serverOnly),
		"https":        newProxy(t, "127.0.0.1:15672", serverOnly),
		"amqps-mutual": newProxy(t, amqpAddr, mutual),
		"https-mutual": newProxy(t, "127.0.0.1:15672", mutual),
	}
	host := func(proxy string) map[string]string {
		scheme := proxy[:5]
		return map[string]string{"host": scheme + "://guest:guest@" + proxies[proxy].Addr + "/" + esc(v)}
	}
	with := func(secret map[string]string, kv ...string) map[string]string {
		for i := 0; i+1 < len(kv); i += 2 {
			secret[kv[i]] = kv[i+1]
		}
		return secret
	}
	q := md("queueName", "orders")
	var tests []depthCase
	for _, scheme := range []string{"amqps", "https"} {
		mutualProxy := scheme + "-mutual"
		tests = append(tests,
			depthCase{name: scheme + " with ca", md: q, secret: with(host(scheme), "tls", "enable", "ca", pki.CAPEM), wantValue: 2, wantActive: true},
			depthCase{name: scheme + " with an untrusted certificate", md: q, secret: host(scheme),
				wantErr: []string{"TLS: the certificate of", proxies[scheme].Addr, "is not trusted: set ca"}},
			depthCase{name: scheme + " with unsafeSsl", md: md("queueName", "orders", "unsafeSsl", "true"), secret: host(scheme), wantValue: 2, wantActive: true},
			depthCase{name: scheme + " with a client certificate", md: q,
				secret: with(host(mutualProxy), "tls", "enable", "ca", pki.CAPEM, "cert", pki.ClientCertPEM, "key", pki.ClientKeyPEM), wantValue: 2, wantActive: true},
			depthCase{name: scheme + " with an encrypted client key", md: q,
				secret: with(host(mutualProxy), "tls", "enable", "ca", pki.CAPEM, "cert", pki.ClientCertPEM, "key", pki.EncryptedKeyPEM, "keyPassword", testpki.KeyPassword), wantValue: 2, wantActive: true},
			depthCase{name: scheme + " without the client certificate the server asks for", md: q,
				secret: with(host(mutualProxy), "tls", "enable", "ca", pki.CAPEM), wantErr: []string{proxies[mutualProxy].Addr, "wants a client certificate it trusts (set cert and key)"}},
		)
	}
	runDepthCases(t, tests)
}

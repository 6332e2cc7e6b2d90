package rabbitmq_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/youmark/pkcs8"
)

// The broker here has no TLS listener: a proxy terminates TLS in front of its plain ports,
// with a certificate from a test CA, and asks for client certificates where a case says so.
func TestTLS(t *testing.T) {
	t.Parallel()
	v := newVhost(t)
	createQueues(t, v, "orders")
	newPublisher(t, v).publish(t, "orders", 2)
	pki := newPKI(t)
	serverOnly := &tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}
	mutual := serverOnly.Clone()
	mutual.ClientAuth, mutual.ClientCAs = tls.RequireAndVerifyClientCert, pki.pool
	proxies := map[string]*tcpProxy{
		"amqps":        newProxy(t, amqpAddr, serverOnly),
		"https":        newProxy(t, "127.0.0.1:15672", serverOnly),
		"amqps-mutual": newProxy(t, amqpAddr, mutual),
		"https-mutual": newProxy(t, "127.0.0.1:15672", mutual),
	}
	host := func(proxy string) map[string]string {
		scheme := proxy[:5]
		return map[string]string{"host": scheme + "://guest:guest@" + proxies[proxy].addr + "/" + esc(v)}
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
			depthCase{name: scheme + " with ca", md: q, secret: with(host(scheme), "tls", "enable", "ca", pki.caPEM), wantValue: 2, wantActive: true},
			depthCase{name: scheme + " with an untrusted certificate", md: q, secret: host(scheme),
				wantErr: []string{"TLS: the certificate of", proxies[scheme].addr, "is not trusted: set ca"}},
			depthCase{name: scheme + " with unsafeSsl", md: md("queueName", "orders", "unsafeSsl", "true"), secret: host(scheme), wantValue: 2, wantActive: true},
			depthCase{name: scheme + " with a client certificate", md: q,
				secret: with(host(mutualProxy), "tls", "enable", "ca", pki.caPEM, "cert", pki.clientCertPEM, "key", pki.clientKeyPEM), wantValue: 2, wantActive: true},
			depthCase{name: scheme + " with an encrypted client key", md: q,
				secret: with(host(mutualProxy), "tls", "enable", "ca", pki.caPEM, "cert", pki.clientCertPEM, "key", pki.encryptedKeyPEM, "keyPassword", "pw"), wantValue: 2, wantActive: true},
			depthCase{name: scheme + " without the client certificate the server asks for", md: q,
				secret: with(host(mutualProxy), "tls", "enable", "ca", pki.caPEM), wantErr: []string{proxies[mutualProxy].addr, "refused the handshake: it wants a client certificate", "certificate required"}},
		)
	}
	runDepthCases(t, tests)
}

type testPKI struct {
	pool                                                *x509.CertPool
	server                                              tls.Certificate
	caPEM, clientCertPEM, clientKeyPEM, encryptedKeyPEM string
}

// newPKI makes a CA, a server certificate for 127.0.0.1 and a client certificate, with the
// client key in plain and in encrypted PKCS#8 (password "pw").
func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "qscale test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return key, der
	}
	serverKey, serverDER := issue(2, x509.ExtKeyUsageServerAuth)
	clientKey, clientDER := issue(3, x509.ExtKeyUsageClientAuth)
	p := testPKI{pool: x509.NewCertPool(), server: tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}}
	p.pool.AddCert(ca)
	p.caPEM = pemText("CERTIFICATE", caDER)
	p.clientCertPEM = pemText("CERTIFICATE", clientDER)
	plain, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	p.clientKeyPEM = pemText("PRIVATE KEY", plain)
	encrypted, err := pkcs8.MarshalPrivateKey(clientKey, []byte("pw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.encryptedKeyPEM = pemText("ENCRYPTED PRIVATE KEY", encrypted)
	return p
}

func pemText(kind string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

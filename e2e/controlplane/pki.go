package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki writes the certificates and keys a control plane needs into dir: a cluster CA with the
// apiserver's serving certificate and client certificates for the admin, the
// controller-manager, the scheduler and kwok, a separate front-proxy CA with the aggregator's
// client certificate, and the service-account signing key.
type pki struct{ dir string }

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (p pki) generate() error {
	ca, err := p.newCA("ca", "qscale-e2e-ca")
	if err != nil {
		return err
	}
	frontCA, err := p.newCA("front-proxy-ca", "qscale-e2e-front-proxy-ca")
	if err != nil {
		return err
	}
	leaves := []struct {
		name, cn string
		orgs     []string
		signer   issued
		server   bool
	}{
		{"apiserver", "kube-apiserver", nil, ca, true},
		{"admin", "qscale-e2e-admin", []string{"system:masters"}, ca, false},
		{"controller-manager", "system:kube-controller-manager", nil, ca, false},
		{"front-proxy-client", "front-proxy-client", nil, frontCA, false},
		{"scheduler", "system:kube-scheduler", nil, ca, false},
		{"kwok", "kwok-controller", []string{"system:masters"}, ca, false},
	}
	for i, l := range leaves {
		if err := p.newLeaf(int64(10+i), l.name, l.cn, l.orgs, l.signer, l.server); err != nil {
			return err
		}
	}
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(p.path("sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(sa)); err != nil {
		return err
	}
	return writePEM(p.path("sa.pub"), "PUBLIC KEY", pub)
}

func (p pki) newCA(name, cn string) (issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return issued{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return issued{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return issued{}, err
	}
	return issued{cert, key}, p.write(name, der, key)
}

func (p pki) newLeaf(serial int64, name, cn string, orgs []string, ca issued, server bool) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return err
	}
	return p.write(name, der, key)
}

func (p pki) write(name string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(p.path(name+".crt"), "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(p.path(name+".key"), "EC PRIVATE KEY", keyDER)
}

func writePEM(path, typ string, der []byte) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// loadCA reads back a CA that newCA wrote.
func (p pki) loadCA(name string) (issued, error) {
	certPEM, err := os.ReadFile(p.path(name + ".crt"))
	if err != nil {
		return issued{}, err
	}
	keyPEM, err := os.ReadFile(p.path(name + ".key"))
	if err != nil {
		return issued{}, err
	}
	certBlock, _ := pem.Decode(certPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if certBlock == nil || keyBlock == nil {
		return issued{}, fmt.Errorf("%s: no PEM block", name)
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return issued{}, err
	}
	key, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		return issued{}, err
	}
	return issued{cert, key}, nil
}

// AdminKubeconfig writes a kubeconfig for a client certificate of user in group
// system:masters, issued by the cluster CA, and returns its path. The user has the admin's
// rights under a name of its own, which the audit log (Options.Audit) records with each of
// its requests: two qscale replicas given two such users can be told apart there.
func (cp *ControlPlane) AdminKubeconfig(user string) (string, error) {
	ca, err := cp.pki.loadCA("ca")
	if err != nil {
		return "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return "", err
	}
	name := "user-" + user
	// Serials below 100 are the control plane's own certificates.
	if err := cp.pki.newLeaf(serial.Int64()+100, name, user, []string{"system:masters"}, ca, false); err != nil {
		return "", err
	}
	path := filepath.Join(cp.Dir, name+".kubeconfig")
	return path, cp.pki.kubeconfig(path, cp.Config.Host, name)
}

// kubeconfig writes a kubeconfig for server with the named client certificate.
func (p pki) kubeconfig(file, server, client string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: %s
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: %s}
current-context: e2e
`, server, p.path("ca.crt"), client, p.path(client+".crt"), p.path(client+".key"), client)
	return os.WriteFile(file, []byte(cfg), 0o600)
}

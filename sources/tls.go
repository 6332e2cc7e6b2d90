package sources

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/youmark/pkcs8"
)

// TLSMaterial is the PEM text of the TLS parameters that every source shares: ca, cert, key
// and keyPassword, plus unsafeSsl.
type TLSMaterial struct {
	CA, Cert, Key, KeyPassword string
	// InsecureSkipVerify skips verification of the server's certificate (unsafeSsl).
	InsecureSkipVerify bool
}

// Config builds the client TLS configuration. Without CA the system roots are used; without
// Cert and Key no client certificate is sent. An encrypted key is decrypted with KeyPassword.
// Errors name the parameter at fault and never contain key material.
func (m TLSMaterial) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: m.InsecureSkipVerify} //nolint:gosec // unsafeSsl is the user's explicit choice
	if m.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(m.CA)) {
			return nil, errors.New("ca: no PEM certificate found")
		}
		cfg.RootCAs = pool
	}
	if m.Cert == "" && m.Key == "" {
		return cfg, nil
	}
	keyPEM, err := m.decryptedKey()
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair([]byte(m.Cert), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cert/key: not a matching PEM certificate and private key: %w", err)
	}
	cfg.Certificates = []tls.Certificate{pair}
	return cfg, nil
}

// decryptedKey returns the key as unencrypted PEM. Encrypted keys are PKCS#8 ("ENCRYPTED
// PRIVATE KEY"), what current OpenSSL writes; the legacy encrypted-PEM format is insecure and
// is refused with a hint to convert it.
func (m TLSMaterial) decryptedKey() ([]byte, error) {
	block, _ := pem.Decode([]byte(m.Key))
	if block == nil {
		return nil, errors.New("key: no PEM block found")
	}
	switch {
	case block.Type == "ENCRYPTED PRIVATE KEY":
		if m.KeyPassword == "" {
			return nil, errors.New("key: is encrypted; set keyPassword")
		}
		priv, err := pkcs8.ParsePKCS8PrivateKey(block.Bytes, []byte(m.KeyPassword))
		if err != nil {
			return nil, errors.New("keyPassword: does not decrypt key")
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	case block.Headers["Proc-Type"] != "":
		return nil, errors.New("key: legacy encrypted PEM is not supported; convert it with `openssl pkcs8 -topk8`")
	case m.KeyPassword != "":
		return nil, errors.New("keyPassword: is set but key is not encrypted")
	}
	return []byte(m.Key), nil
}

package cluster

import (
	"crypto"
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

// pki holds the file paths of the certificates and keys of one cluster.
type pki struct {
	dir string

	caCert, caKey         string
	servingCert, servingK string
	saPub, saKey          string

	// client certificates by identity name (admin, kcm, scheduler, kwok)
	clients map[string]clientCert

	caPEM []byte
	ca    *certAuthority
}

type clientCert struct {
	cert, key string
	certPEM   []byte
	keyPEM    []byte
}

type certAuthority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// nextSerial returns a random 127-bit serial number.
func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// clientIdentities are the client certificates the control plane needs:
// name -> (common name, organisations).
var clientIdentities = map[string]struct {
	cn   string
	orgs []string
}{
	"admin":                   {"kubernetes-admin", []string{"system:masters"}},
	"kube-controller-manager": {"system:kube-controller-manager", nil},
	"kube-scheduler":          {"system:kube-scheduler", nil},
	// kwok writes node and pod status for fake nodes, which the Node
	// authorizer would only allow per node; it acts as a cluster admin.
	"kwok": {"kwok-controller", []string{"system:masters"}},
}

// generatePKI writes a fresh CA, an API server serving certificate valid for
// 127.0.0.1/localhost and the in-cluster names, client certificates and a
// service-account key pair into dir.
func generatePKI(dir string, extraIPs ...net.IP) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{dir: dir, clients: map[string]clientCert{}}

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: "kubectl-cni-migrate-e2e-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	ca := &certAuthority{cert: caCert, key: caKey}
	p.ca = ca
	p.caPEM = pemBlock("CERTIFICATE", caDER)
	if p.caCert, p.caKey, err = writePair(dir, "ca", p.caPEM, caKey); err != nil {
		return nil, err
	}

	// API server serving certificate.
	servingPEM, servingKey, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: append([]net.IP{net.ParseIP("127.0.0.1")}, extraIPs...),
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	})
	if err != nil {
		return nil, err
	}
	if p.servingCert, p.servingK, err = writePair(dir, "apiserver", servingPEM, servingKey); err != nil {
		return nil, err
	}

	for name, id := range clientIdentities {
		certPEM, key, err := ca.issue(&x509.Certificate{
			Subject:     pkix.Name{CommonName: id.cn, Organization: id.orgs},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return nil, err
		}
		certFile, keyFile, err := writePair(dir, name, certPEM, key)
		if err != nil {
			return nil, err
		}
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, err
		}
		p.clients[name] = clientCert{cert: certFile, key: keyFile, certPEM: certPEM, keyPEM: keyPEM}
	}

	// Service-account token signing key (RSA: accepted by every consumer).
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	p.saPub = filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(p.saPub, pemBlock("PUBLIC KEY", saPubDER), 0o600); err != nil {
		return nil, err
	}
	p.saKey = filepath.Join(dir, "sa.key")
	if err := writeKey(p.saKey, saKey); err != nil {
		return nil, err
	}
	return p, nil
}

// issue signs a leaf certificate from tmpl with a new P-256 key.
func (ca *certAuthority) issue(tmpl *x509.Certificate) ([]byte, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().Add(-time.Hour)
	tmpl.SerialNumber = nextSerial()
	tmpl.NotBefore = now
	tmpl.NotAfter = now.Add(5 * 365 * 24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign %s: %w", tmpl.Subject.CommonName, err)
	}
	return pemBlock("CERTIFICATE", der), key, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pemBlock("PRIVATE KEY", der), 0o600)
}

func writePair(dir, name string, certPEM []byte, key crypto.Signer) (string, string, error) {
	certFile := filepath.Join(dir, name+".crt")
	keyFile := filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeKey(keyFile, key); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Names of the self-signed certificate files under <data-dir>/tls/.
const (
	selfCertFile = "node.crt"
	selfKeyFile  = "node.key"
)

// loadTLS returns the node's certificate: the configured files, or a
// self-signed ECDSA P-256 certificate created under <data-dir>/tls/ on first
// start and reused afterwards (so clients can pin its fingerprint). It also
// returns the hex SHA-256 fingerprint of the leaf certificate's DER bytes.
func loadTLS(cfg Config) (tls.Certificate, string, bool, error) {
	certFile, keyFile := cfg.TLSCertFile, cfg.TLSKeyFile
	created := false
	if certFile == "" {
		dir := filepath.Join(cfg.DataDir, "tls")
		certFile, keyFile = filepath.Join(dir, selfCertFile), filepath.Join(dir, selfKeyFile)
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := writeSelfSigned(dir, certFile, keyFile, cfg.NodeName, cfg.HTTPAddr); err != nil {
				return tls.Certificate{}, "", false, fmt.Errorf("create self-signed certificate: %w", err)
			}
			created = true
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("load certificate %s: %w", certFile, err)
	}
	return cert, Fingerprint(cert.Certificate[0]), created, nil
}

// Fingerprint is the hex SHA-256 of a certificate's DER bytes, the value
// clients pin with --pin.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func writeSelfSigned(dir, certFile, keyFile, nodeName, httpAddr string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "demandflow " + nodeName, Organization: []string{"Demandflow self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, n := range []string{host, nodeName} {
		if n != "" && net.ParseIP(n) == nil {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if h, _, err := net.SplitHostPort(httpAddr); err == nil {
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if ip == nil && h != "" && h != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// muxListener serves TLS and plain HTTP on one TCP port: a connection
// whose first byte is a TLS handshake record (0x16) is returned from Accept
// as a *tls.Conn (so net/http negotiates h2 or http/1.1 by ALPN), any other
// as a plain connection (HTTP/1.1 or cleartext HTTP/2). Peeking happens in a
// goroutine per connection, bounded by sniffTimeout, so a silent client
// cannot stall Accept. Close closes the listener and every connection still
// being classified, and waits for those goroutines.
type muxListener struct {
	ln      net.Listener
	tlsConf *tls.Config

	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{}
}

// sniffTimeout bounds how long a new connection may stay silent.
const sniffTimeout = 10 * time.Second

func newMuxListener(ln net.Listener, tlsConf *tls.Config) *muxListener {
	m := &muxListener{ln: ln, tlsConf: tlsConf, conns: make(chan net.Conn), errc: make(chan error, 1),
		done: make(chan struct{}), pending: map[net.Conn]struct{}{}}
	m.wg.Go(m.acceptLoop)
	return m
}

func (m *muxListener) acceptLoop() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case m.errc <- err:
			case <-m.done:
			}
			return
		}
		m.mu.Lock()
		m.pending[c] = struct{}{}
		m.mu.Unlock()
		m.wg.Go(func() { m.classify(c) })
	}
}

func (m *muxListener) classify(c net.Conn) {
	defer func() {
		m.mu.Lock()
		delete(m.pending, c)
		m.mu.Unlock()
	}()
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, first: b[0], has: true}
	if b[0] == 0x16 && m.tlsConf != nil {
		out = tls.Server(out, m.tlsConf)
	}
	select {
	case m.conns <- out:
	case <-m.done:
		_ = out.Close()
	}
}

func (m *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case err := <-m.errc:
		return nil, err
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *muxListener) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.ln.Close()
		m.mu.Lock()
		for c := range m.pending {
			_ = c.Close()
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
	return err
}

func (m *muxListener) Addr() net.Addr { return m.ln.Addr() }

// peekedConn gives back the byte the listener peeked before reading on.
type peekedConn struct {
	net.Conn
	first byte
	has   bool
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		b[0] = p.first
		p.has = false
		return 1, nil
	}
	return p.Conn.Read(b)
}

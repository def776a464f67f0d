package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The cluster port carries two kinds of connection, told apart by the first
// byte after the TLS handshake and authentication:
//
//	TLS handshake (every connection is TLS 1.3)
//	client -> server: kind byte ('R' raft, 'F' forward)
//	                  32-byte HMAC-SHA256(cluster key, "demandflow/cluster/v1" || kind || EKM)
//	then raft's own protocol ('R') or forward frames ('F', see forward.go)
//
// EKM is the TLS exporter keying material of the connection (RFC 5705,
// label "demandflow-cluster", 32 bytes), so the proof is bound to this very
// session and cannot be replayed. Node certificates need no common CA: a
// peer is trusted because it knows the cluster key, the same key that
// encrypts gossip. Without a cluster key the HMAC uses an empty key, which
// only keeps casual clients out (the node warns about it).
//
// WARNING: changing the kinds, the label or the HMAC input breaks mixed-
// version clusters.
const (
	connRaft    byte = 'R'
	connForward byte = 'F'

	authLabel     = "demandflow/cluster/v1"
	ekmLabel      = "demandflow-cluster"
	handshakeWait = 10 * time.Second
)

// errAuth is returned when a peer fails cluster-key authentication.
var errAuth = errors.New("cluster: peer failed cluster key authentication")

// netLayer owns the cluster TCP listener and dials peers.
type netLayer struct {
	ln        net.Listener
	advertise net.Addr
	key       []byte
	serverTLS *tls.Config
	clientTLS *tls.Config
	log       *slog.Logger

	raftConns chan net.Conn
	forward   func(net.Conn) // serves one forward connection until it closes

	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // accepted forward conns, closed on Close
}

func newNetLayer(ln net.Listener, advertise net.Addr, key []byte, cert tls.Certificate, log *slog.Logger) *netLayer {
	return &netLayer{
		ln: ln, advertise: advertise, key: key, log: log,
		serverTLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		// Peers are authenticated by the cluster-key HMAC below, not by a
		// CA; the TLS layer provides confidentiality and the EKM binding.
		clientTLS: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, //nolint:gosec // see authProof
		raftConns: make(chan net.Conn),
		done:      make(chan struct{}),
		conns:     map[net.Conn]struct{}{},
	}
}

// start begins accepting; forward serves forward connections.
func (l *netLayer) start(forward func(net.Conn)) {
	l.forward = forward
	l.wg.Go(l.acceptLoop)
}

func (l *netLayer) acceptLoop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
			default:
				l.log.Error("cluster listener stopped", "error", err)
			}
			return
		}
		l.track(c, true)
		l.wg.Go(func() { l.handshake(c) })
	}
}

func (l *netLayer) track(c net.Conn, add bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if add {
		l.conns[c] = struct{}{}
	} else {
		delete(l.conns, c)
	}
}

func authProof(key []byte, kind byte, cs tls.ConnectionState) ([]byte, error) {
	ekm, err := cs.ExportKeyingMaterial(ekmLabel, nil, 32)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(authLabel))
	m.Write([]byte{kind})
	m.Write(ekm)
	return m.Sum(nil), nil
}

func (l *netLayer) handshake(raw net.Conn) {
	_ = raw.SetDeadline(time.Now().Add(handshakeWait))
	tc := tls.Server(raw, l.serverTLS)
	var hdr [1 + sha256.Size]byte
	err := tc.Handshake()
	if err == nil {
		_, err = io.ReadFull(tc, hdr[:])
	}
	if err == nil {
		var want []byte
		want, err = authProof(l.key, hdr[0], tc.ConnectionState())
		if err == nil && !hmac.Equal(want, hdr[1:]) {
			err = errAuth
		}
	}
	if err != nil {
		l.log.Warn("refused cluster connection", "remote", raw.RemoteAddr().String(), "error", err)
		l.track(raw, false)
		_ = tc.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	switch hdr[0] {
	case connRaft:
		l.track(raw, false) // raft owns it from here and closes it on shutdown
		select {
		case l.raftConns <- tc:
		case <-l.done:
			_ = tc.Close()
		}
	case connForward:
		l.forward(tc)
		l.track(raw, false)
		_ = tc.Close()
	default:
		l.log.Warn("refused cluster connection", "remote", raw.RemoteAddr().String(), "error", fmt.Sprintf("unknown kind %q", hdr[0]))
		l.track(raw, false)
		_ = tc.Close()
	}
}

// dial opens an authenticated connection of the given kind to addr.
func (l *netLayer) dial(addr string, kind byte, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	tc, err := tls.DialWithDialer(d, "tcp", addr, l.clientTLS)
	if err != nil {
		return nil, err
	}
	_ = tc.SetDeadline(time.Now().Add(timeout))
	proof, err := authProof(l.key, kind, tc.ConnectionState())
	if err == nil {
		_, err = tc.Write(append([]byte{kind}, proof...))
	}
	if err != nil {
		_ = tc.Close()
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// close stops accepting, closes connections in handshake or forwarding,
// and waits for their goroutines.
func (l *netLayer) close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close()
		l.mu.Lock()
		for c := range l.conns {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// raftLayer adapts netLayer to raft.StreamLayer.
type raftLayer struct{ l *netLayer }

var _ raft.StreamLayer = raftLayer{}

func (r raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-r.l.raftConns:
		return c, nil
	case <-r.l.done:
		return nil, net.ErrClosed
	}
}

// Close is a no-op: the netLayer owns the listener and closes it after
// raft has shut down.
func (r raftLayer) Close() error { return nil }

func (r raftLayer) Addr() net.Addr { return r.l.advertise }

func (r raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return r.l.dial(string(address), connRaft, timeout)
}

// ephemeralCert makes an in-memory self-signed certificate for the cluster
// port when the node has none to share.
func ephemeralCert(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "demandflow cluster " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

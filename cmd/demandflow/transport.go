package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/spf13/cobra"
)

// transportFlags are the connection flags shared by push and bench.
type transportFlags struct {
	addrs    string // comma-separated base URLs
	proto    string // h1, h2, h3
	caFile   string
	pin      string
	insecure bool
	token    string
	timeout  time.Duration
	retries  int
}

func (f *transportFlags) register(cmd *cobra.Command, addrFlag string) {
	def := os.Getenv("DEMANDFLOW_ADDR")
	if def == "" {
		def = "http://127.0.0.1:7070"
	}
	fs := cmd.Flags()
	fs.StringVar(&f.addrs, addrFlag, def, "node base URLs, comma-separated, in failover order (env DEMANDFLOW_ADDR)")
	fs.StringVar(&f.proto, "proto", "h1", "protocol: h1 (HTTP/1.1), h2 (HTTP/2; cleartext h2c on http:// URLs) or h3 (HTTP/3 over QUIC; always TLS, to the node's http3 address)")
	fs.StringVar(&f.caFile, "ca", "", "PEM CA bundle to verify the node certificates with (implies https)")
	fs.StringVar(&f.pin, "pin", "", "hex SHA-256 fingerprint of the node's leaf certificate (addrs.json \"fingerprint\"); accepts a self-signed certificate that matches it (implies https)")
	fs.BoolVar(&f.insecure, "insecure", false, "skip certificate verification entirely (testing only; prefer --pin)")
	fs.StringVar(&f.token, "token", os.Getenv("DEMANDFLOW_TOKEN"), "API key (env DEMANDFLOW_TOKEN)")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "timeout of one request attempt")
	fs.IntVar(&f.retries, "retries", 10, "retries of a request after the first attempt (timeouts, 429, 502-504, leader changes)")
}

// transport is a built RoundTripper and the base URLs to use with it.
type transport struct {
	rt    http.RoundTripper
	addrs []string
	close func()
}

// buildTransport makes the RoundTripper for proto with the TLS settings;
// conns sizes the connection pool.
func (f *transportFlags) build(conns int) (*transport, error) {
	tlsConf, err := clientTLS(f.caFile, f.pin, f.insecure)
	if err != nil {
		return nil, err
	}
	wantTLS := f.caFile != "" || f.pin != "" || f.proto == "h3"
	var addrs []string
	for a := range strings.SplitSeq(f.addrs, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		if wantTLS && strings.HasPrefix(a, "http://") {
			a = "https://" + strings.TrimPrefix(a, "http://")
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, errors.New("no node address (--addr)")
	}
	switch f.proto {
	case "h1", "h2":
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tlsConf
		t.MaxIdleConnsPerHost = max(conns, 2)
		t.MaxConnsPerHost = 0
		var p http.Protocols
		if f.proto == "h1" {
			p.SetHTTP1(true)
		} else {
			// No HTTP/1 at all, so http:// URLs use h2 with prior
			// knowledge (the node enables unencrypted HTTP/2).
			p.SetHTTP2(true)
			p.SetUnencryptedHTTP2(true)
		}
		t.Protocols = &p
		t.ForceAttemptHTTP2 = f.proto == "h2"
		return &transport{rt: t, addrs: addrs, close: t.CloseIdleConnections}, nil
	case "h3":
		if tlsConf == nil {
			tlsConf = &tls.Config{}
		}
		t := &http3.Transport{
			TLSClientConfig: tlsConf,
			QUICConfig: &quic.Config{
				MaxIdleTimeout:                 f.timeout + 30*time.Second,
				KeepAlivePeriod:                15 * time.Second,
				MaxIncomingStreams:             int64(max(conns, 100)),
				InitialStreamReceiveWindow:     4 << 20,
				MaxStreamReceiveWindow:         16 << 20,
				InitialConnectionReceiveWindow: 8 << 20,
				MaxConnectionReceiveWindow:     64 << 20,
			},
		}
		return &transport{rt: t, addrs: addrs, close: func() { _ = t.Close() }}, nil
	}
	return nil, fmt.Errorf("--proto %q: want h1, h2 or h3", f.proto)
}

// clientTLS returns the client TLS config for the flags; nil means the
// defaults (system roots).
func clientTLS(caFile, pin string, insecure bool) (*tls.Config, error) {
	if caFile == "" && pin == "" && !insecure {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificates in it", caFile)
		}
		conf.RootCAs = pool
	}
	if insecure {
		conf.InsecureSkipVerify = true
	}
	if pin != "" {
		want, err := hex.DecodeString(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(pin)), ":", ""))
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("--pin %q: want 64 hex digits (the SHA-256 of the certificate)", pin)
		}
		roots := conf.RootCAs
		// The pin replaces chain verification (self-signed node
		// certificates have no chain), so Go's own check is off and
		// VerifyConnection does the work: the leaf must match the pin.
		// With --ca as well, the chain must also verify.
		conf.InsecureSkipVerify = true
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the node sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], want) != 1 {
				return fmt.Errorf("tls: certificate fingerprint %x does not match --pin %x", sum, want)
			}
			if roots != nil {
				opts := x509.VerifyOptions{Roots: roots, DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
				if net.ParseIP(cs.ServerName) != nil {
					opts.DNSName = ""
				}
				for _, c := range cs.PeerCertificates[1:] {
					opts.Intermediates.AddCert(c)
				}
				if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
					return fmt.Errorf("tls: pinned certificate does not verify against --ca: %w", err)
				}
			}
			return nil
		}
	}
	return conf, nil
}

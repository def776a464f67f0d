package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/quic-go/quic-go/http3"

	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/stream/streamtest"
)

// pinned returns a TLS config that accepts only the certificate with the
// given SHA-256 fingerprint.
func pinned(fp string) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || Fingerprint(raw[0]) != fp {
				return errors.New("certificate fingerprint mismatch")
			}
			return nil
		},
	}
}

func TestTLSAndHTTP3(t *testing.T) {
	n := startNode(t, nil)
	a := n.Addrs()
	if !a.TLS || len(a.Fingerprint) != 64 || a.HTTP3 == "" {
		t.Fatalf("addrs: got %+v, want TLS with a fingerprint and an http3 address", a)
	}
	createShop(t, n)
	body := streamtest.Body(stream.NDJSON, shopHeader, shopRows)

	h2 := &http.Transport{TLSClientConfig: pinned(a.Fingerprint), ForceAttemptHTTP2: true}
	var h2p http.Protocols
	h2p.SetHTTP2(true)
	h2.Protocols = &h2p
	h3 := &http3.Transport{TLSClientConfig: pinned(a.Fingerprint)}
	defer h3.Close()
	cases := []struct {
		name      string
		rt        http.RoundTripper
		url       string
		wantProto int
	}{
		{"http1 plain", http.DefaultTransport, "http://" + a.HTTP, 1},
		{"http1 tls", &http.Transport{TLSClientConfig: pinned(a.Fingerprint)}, "https://" + a.HTTP, 1},
		{"http2 tls", h2, "https://" + a.HTTP, 2},
		{"http3", h3, "https://" + a.HTTP3, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hc := &http.Client{Transport: tc.rt}
			req, _ := http.NewRequestWithContext(t.Context(), "POST", tc.url+"/v1/datasets/shop/records", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/x-ndjson")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"accepted":3`) {
				t.Fatalf("got %d %s", resp.StatusCode, b)
			}
			if resp.ProtoMajor != tc.wantProto {
				t.Errorf("protocol: got HTTP/%d, want HTTP/%d", resp.ProtoMajor, tc.wantProto)
			}
			if alt := resp.Header.Get("Alt-Svc"); tc.wantProto < 3 && !strings.HasPrefix(alt, `h3=":`) {
				t.Errorf("Alt-Svc: got %q, want h3 advertised", alt)
			}
		})
	}
	t.Run("wrong pin refused", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: pinned(strings.Repeat("0", 64))}}
		if _, err := hc.Get("https://" + a.HTTP + "/healthz"); err == nil || !strings.Contains(err.Error(), "fingerprint") {
			t.Errorf("got %v, want a fingerprint mismatch", err)
		}
		h3bad := &http3.Transport{TLSClientConfig: pinned(strings.Repeat("0", 64))}
		defer h3bad.Close()
		if _, err := (&http.Client{Transport: h3bad}).Get("https://" + a.HTTP3 + "/healthz"); err == nil {
			t.Error("http3 with a wrong pin: got nil error")
		}
	})
}

func TestTLSCertificateKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	n1 := startNode(t, func(c *Config) { c.DataDir = dir })
	fp := n1.Addrs().Fingerprint
	if err := n1.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, func(c *Config) { c.DataDir = dir })
	if got := n2.Addrs().Fingerprint; got != fp {
		t.Errorf("fingerprint after restart: got %s, want %s", got, fp)
	}
}

func TestTLSDisabled(t *testing.T) {
	n := startNode(t, func(c *Config) { c.TLSDisable = true })
	a := n.Addrs()
	if a.TLS || a.Fingerprint != "" || a.HTTP3 != "" {
		t.Errorf("got %+v, want no TLS and no HTTP/3", a)
	}
	if r := do(t, "GET", n.URL()+"/healthz", nil, nil); r.status != 200 || r.header.Get("Alt-Svc") != "" {
		t.Errorf("plain healthz: got %d Alt-Svc=%q", r.status, r.header.Get("Alt-Svc"))
	}
}

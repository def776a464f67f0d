package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClientTLSPin(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	sum := sha256.Sum256(srv.Certificate().Raw)
	good := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name, pin string
		ok        bool
	}{
		{"pinned", good, true},
		{"pinned with colons", strings.ToUpper(good[:2]) + ":" + good[2:], true},
		{"wrong pin", strings.Repeat("0", 64), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := &transportFlags{addrs: srv.URL, proto: "h1", pin: tc.pin}
			tr, err := tf.build(1)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.close()
			resp, err := (&http.Client{Transport: tr.rt}).Get(tr.addrs[0])
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if _, err := (&transportFlags{addrs: "x", proto: "h1", pin: "zz"}).build(1); err == nil {
		t.Errorf("bad --pin: got no error")
	}
	if _, err := (&transportFlags{addrs: "x", proto: "h4"}).build(1); err == nil {
		t.Errorf("bad --proto: got no error")
	}
	tr, _ := (&transportFlags{addrs: "127.0.0.1:7070, http://n2:7070", proto: "h3"}).build(1)
	if strings.Join(tr.addrs, " ") != "https://127.0.0.1:7070 https://n2:7070" {
		t.Errorf("h3 addresses: got %v, want https URLs", tr.addrs)
	}
}

package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures a Client. A zero field means its default.
type Config struct {
	// Addrs are the base URLs of the nodes, in failover order
	// ("http://10.0.0.1:7070", "https://n2:7070"). An address without a
	// scheme gets "http://". Required.
	Addrs []string
	// Transport sends the requests; it decides the protocol (HTTP/1.1, h2,
	// h3) and TLS. Default: a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Timeout bounds one attempt (request sent to response body read).
	// Default 60s.
	Timeout time.Duration
	// MaxRetries is how many times a call is retried after its first
	// attempt. Default 10; a negative value means no retries.
	MaxRetries int
	// Backoff is the wait before the first retry; it doubles on every
	// further retry up to MaxBackoff, with +-25% jitter. Default 50ms.
	Backoff time.Duration
	// MaxBackoff caps Backoff and a server's Retry-After. Default 5s.
	MaxBackoff time.Duration
	// Token is sent as "Authorization: Bearer <Token>" when set.
	Token string
	// UserAgent is the User-Agent header. Default "demandflow-go-client".
	UserAgent string
	// MaxResponseBytes bounds a response body. Default 256 MiB.
	MaxResponseBytes int64
}

// DefaultConfig returns a Config with every default filled in except Addrs.
func DefaultConfig() Config {
	return Config{
		Timeout:          60 * time.Second,
		MaxRetries:       10,
		Backoff:          50 * time.Millisecond,
		MaxBackoff:       5 * time.Second,
		UserAgent:        "demandflow-go-client",
		MaxResponseBytes: 256 << 20,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = d.MaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.Backoff == 0 {
		c.Backoff = d.Backoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.UserAgent == "" {
		c.UserAgent = d.UserAgent
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = d.MaxResponseBytes
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return c
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if len(c.Addrs) == 0 {
		return errors.New("client: no node addresses")
	}
	for _, a := range c.Addrs {
		if _, err := normalizeAddr(a); err != nil {
			return err
		}
	}
	if c.Timeout < 0 || c.Backoff < 0 || c.MaxBackoff < 0 || c.MaxResponseBytes < 0 {
		return errors.New("client: negative duration or size in config")
	}
	return nil
}

// normalizeAddr turns "host:port" or a URL into a base URL without a
// trailing slash.
func normalizeAddr(a string) (string, error) {
	a = strings.TrimSpace(a)
	if a == "" {
		return "", errors.New("client: empty node address")
	}
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil {
		return "", fmt.Errorf("client: node address %q: %w", a, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("client: node address %q: want an http or https URL", a)
	}
	if u.Host == "" {
		return "", fmt.Errorf("client: node address %q: no host", a)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

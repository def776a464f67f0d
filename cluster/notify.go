package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	// URLs are the webhook endpoints (http or https); every event is POSTed
	// to each of them. None means the Notifier drops every event.
	URLs []string
	// Node is the delivering node's name, sent in every body.
	Node string
	// Client sends the requests; nil means a client with a 10s timeout.
	Client *http.Client
	// MaxTries is the number of attempts per event and URL; default 8.
	MaxTries int
	// BackoffMin and BackoffMax bound the exponential backoff between
	// attempts (doubling from BackoffMin); defaults 0.5s and 30s.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// QueueSize bounds the events waiting per URL; when full the oldest is
	// dropped with a Warn log. Default 1000.
	QueueSize int
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
}

// Defaults of NotifierConfig.
const (
	DefaultNotifyMaxTries   = 8
	DefaultNotifyBackoffMin = 500 * time.Millisecond
	DefaultNotifyBackoffMax = 30 * time.Second
	DefaultNotifyQueueSize  = 1000
	defaultNotifyTimeout    = 10 * time.Second
	// maxWebhookResponse is how much of a response body is read (and
	// discarded) so the connection can be reused.
	maxWebhookResponse = 64 << 10
)

// Validate reports the first invalid field.
func (c NotifierConfig) Validate() error {
	for _, u := range c.URLs {
		pu, err := url.Parse(u)
		if err != nil {
			return fmt.Errorf("notifier: webhook url %q: %w", u, err)
		}
		if (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Errorf("notifier: webhook url %q is not an absolute http(s) url", u)
		}
	}
	if c.MaxTries < 0 || c.QueueSize < 0 || c.BackoffMin < 0 || c.BackoffMax < 0 {
		return errors.New("notifier: max tries, queue size and backoffs must not be negative")
	}
	return nil
}

func (c NotifierConfig) withDefaults() NotifierConfig {
	if c.Client == nil {
		c.Client = &http.Client{Timeout: defaultNotifyTimeout}
	}
	if c.MaxTries == 0 {
		c.MaxTries = DefaultNotifyMaxTries
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultNotifyBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultNotifyBackoffMax
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.QueueSize == 0 {
		c.QueueSize = DefaultNotifyQueueSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// WebhookBody is the JSON body POSTed for one alarm event.
type WebhookBody struct {
	// Event is "raised" or "cleared".
	Event AlarmEventType `json:"event"`
	Alarm Alarm          `json:"alarm"`
	// Node is the node that delivered the event.
	Node string `json:"node"`
	// Index is the Raft index of the entry that raised or cleared the
	// alarm; 0 for a local alarm.
	Index uint64 `json:"index"`
}

// Notifier delivers alarm events to webhooks: one JSON POST (WebhookBody,
// Content-Type application/json) per event and URL, with the header
// X-Demandflow-Delivery = "<index>-<event>-<alarm id>" (stable across
// retries and nodes, for deduplication). A 2xx response is success; network
// errors, 408, 429 and 5xx are retried with exponential backoff
// (BackoffMin doubling to BackoffMax, at most MaxTries attempts); other
// statuses and exhausted retries drop the event with a Warn log. Each URL
// has its own queue and goroutine, so a slow receiver delays only itself,
// and events to one URL are delivered in order.
//
// # Delivery semantics
//
// Delivery is at-least-once while the cluster keeps a leader, and
// best-effort across leader changes: only the leader delivers replicated
// events (the node's observer calls Deliver only when it is leader), and
// the queue is in memory. A leader that crashes loses its queue; an event
// it delivered but whose entry a new leader re-applies after a restart is
// delivered again. Receivers should deduplicate on X-Demandflow-Delivery
// and treat the alarm list at GET /v1/alarms as the truth.
type Notifier struct {
	cfg    NotifierConfig
	log    *slog.Logger
	queues []*webhookQueue

	startOnce sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// webhookQueue is the bounded queue of one URL.
type webhookQueue struct {
	url    string
	mu     sync.Mutex
	items  []webhookItem
	signal chan struct{} // cap 1: items were added
}

type webhookItem struct {
	id   string // X-Demandflow-Delivery
	body []byte
}

// NewNotifier returns a Notifier for cfg (zero fields take defaults). It
// delivers nothing until Start; events given to Deliver before are queued.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Notifier{cfg: cfg, log: cfg.Logger.With("component", "notifier")}
	for _, u := range cfg.URLs {
		n.queues = append(n.queues, &webhookQueue{url: u, signal: make(chan struct{}, 1)})
	}
	return n, nil
}

// Start starts one delivery goroutine per URL; they run until ctx ends or
// Shutdown. Calling it again does nothing.
func (n *Notifier) Start(ctx context.Context) {
	n.startOnce.Do(func() {
		ctx, n.cancel = context.WithCancel(ctx)
		for _, q := range n.queues {
			n.wg.Go(func() { n.worker(ctx, q) })
		}
	})
}

// Shutdown stops the delivery goroutines (an attempt in flight is
// canceled) and waits for them, or returns ctx.Err() when ctx ends first.
// Events still queued are dropped and counted in a Warn log. It is
// idempotent.
func (n *Notifier) Shutdown(ctx context.Context) error {
	n.startOnce.Do(func() {})
	if n.cancel == nil {
		return nil
	}
	n.cancel()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, q := range n.queues {
		q.mu.Lock()
		left := len(q.items)
		q.items = nil
		q.mu.Unlock()
		if left > 0 {
			n.log.Warn("webhook events not delivered at shutdown", "url", q.url, "events", left)
		}
	}
	return nil
}

// Deliver queues ev for every URL; it never blocks, so it may be called
// from the FSM's alarm observer.
func (n *Notifier) Deliver(ev AlarmEvent) {
	if len(n.queues) == 0 {
		return
	}
	body, err := json.Marshal(WebhookBody{Event: ev.Type, Alarm: ev.Alarm, Node: n.cfg.Node, Index: ev.Index})
	if err != nil {
		n.log.Error("encode webhook body", "alarm", ev.Alarm.ID, "error", err)
		return
	}
	it := webhookItem{id: strconv.FormatUint(ev.Index, 10) + "-" + string(ev.Type) + "-" + ev.Alarm.ID, body: body}
	for _, q := range n.queues {
		q.mu.Lock()
		var dropped webhookItem
		full := len(q.items) >= n.cfg.QueueSize
		if full {
			dropped = q.items[0]
			q.items = append(q.items[:0], q.items[1:]...)
		}
		q.items = append(q.items, it)
		q.mu.Unlock()
		if full {
			n.log.Warn("webhook queue full, oldest event dropped", "url", q.url, "delivery", dropped.id)
		}
		select {
		case q.signal <- struct{}{}:
		default:
		}
	}
}

func (q *webhookQueue) pop() (webhookItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return webhookItem{}, false
	}
	it := q.items[0]
	q.items[0] = webhookItem{}
	q.items = q.items[1:]
	return it, true
}

func (n *Notifier) worker(ctx context.Context, q *webhookQueue) {
	for {
		it, ok := q.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.signal:
				continue
			}
		}
		n.deliver(ctx, q.url, it)
		if ctx.Err() != nil {
			return
		}
	}
}

// deliver POSTs one item with retries.
func (n *Notifier) deliver(ctx context.Context, u string, it webhookItem) {
	backoff := n.cfg.BackoffMin
	for try := 1; ; try++ {
		retry, err := n.post(ctx, u, it)
		if err == nil {
			n.log.Debug("webhook delivered", "url", u, "delivery", it.id, "tries", try)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retry || try >= n.cfg.MaxTries {
			n.log.Warn("webhook delivery failed, event dropped", "url", u, "delivery", it.id, "tries", try, "error", err)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, n.cfg.BackoffMax)
	}
}

// post makes one attempt; retry says whether a failure may succeed later.
func (n *Notifier) post(ctx context.Context, u string, it webhookItem) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(it.body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "demandflow-alarms")
	req.Header.Set("X-Demandflow-Delivery", it.id)
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookResponse))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return false, fmt.Errorf("webhook answered %s", resp.Status)
	}
}

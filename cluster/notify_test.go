package cluster

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// webhookRecorder is a webhook receiver answering with the statuses in
// codes (then 200) and recording every attempt.
type webhookRecorder struct {
	mu       sync.Mutex
	codes    []int
	attempts []time.Time
	bodies   []WebhookBody
	ids      []string
	got      chan struct{} // a 2xx was answered
}

func newWebhookRecorder(codes ...int) *webhookRecorder {
	return &webhookRecorder{codes: codes, got: make(chan struct{}, 100)}
}

func (w *webhookRecorder) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	code := http.StatusOK
	if len(w.codes) > 0 {
		code, w.codes = w.codes[0], w.codes[1:]
	}
	w.attempts = append(w.attempts, time.Now())
	if code/100 == 2 {
		var body WebhookBody
		if err := json.Unmarshal(b, &body); err != nil || r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			code = http.StatusBadRequest
		} else {
			w.bodies = append(w.bodies, body)
			w.ids = append(w.ids, r.Header.Get("X-Demandflow-Delivery"))
		}
	}
	w.mu.Unlock()
	rw.WriteHeader(code)
	if code/100 == 2 {
		w.got <- struct{}{}
	}
}

func (w *webhookRecorder) counts() (attempts, delivered int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.attempts), len(w.bodies)
}

// inProcess is a RoundTripper that serves requests with h directly
// (httptest.NewRecorder), so no network goroutines join the bubble.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func testEvent(index uint64, subject string) AlarmEvent {
	return AlarmEvent{Type: AlarmRaised, Index: index, Alarm: Alarm{ID: AlarmID(AlarmNodeDown, subject),
		Kind: AlarmNodeDown, Subject: subject, Severity: SeverityCritical, RaisedAt: testTime, RaisedBy: "n1"}}
}

func startNotifier(t *testing.T, cfg NotifierConfig) *Notifier {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	n, err := NewNotifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Start(t.Context())
	t.Cleanup(func() {
		if err := n.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return n
}

func TestNotifierRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newWebhookRecorder(500, 500)
		n := startNotifier(t, NotifierConfig{URLs: []string{"http://hook.example/alarms"}, Node: "n1",
			Client: &http.Client{Transport: inProcess{rec}}})
		start := time.Now()
		n.Deliver(testEvent(42, "n2"))
		synctest.Wait()
		if a, d := rec.counts(); a != 1 || d != 0 {
			t.Fatalf("at once: got %d attempts, %d delivered, want 1, 0", a, d)
		}
		time.Sleep(1499 * time.Millisecond) // backoff 0.5s then 1s
		synctest.Wait()
		if a, d := rec.counts(); a != 2 || d != 0 {
			t.Fatalf("after 1.499s: got %d attempts, %d delivered, want 2, 0", a, d)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if a, d := rec.counts(); a != 3 || d != 1 {
			t.Fatalf("after 1.5s: got %d attempts, %d delivered, want 3, 1", a, d)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if a, d := rec.counts(); a != 3 || d != 1 {
			t.Fatalf("later: got %d attempts, %d delivered, want 3, 1 (delivered once)", a, d)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if got := rec.attempts[2].Sub(start); got != 1500*time.Millisecond {
			t.Errorf("third attempt after %v, want 1.5s", got)
		}
		b := rec.bodies[0]
		if b.Event != AlarmRaised || b.Node != "n1" || b.Index != 42 || b.Alarm.ID != "node_down:n2" || !b.Alarm.RaisedAt.Equal(testTime) {
			t.Errorf("body: got %+v", b)
		}
		if got, want := rec.ids[0], "42-raised-node_down:n2"; got != want {
			t.Errorf("delivery id: got %q, want %q", got, want)
		}
	})
}

func TestNotifierGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     int
		attempts int
		took     time.Duration
	}{
		{"server error", 500, 8, (500 + 1000 + 2000 + 4000 + 8000 + 16000 + 30000) * time.Millisecond},
		{"too many requests", 429, 8, 61500 * time.Millisecond},
		{"client error", 400, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				codes := make([]int, 20)
				for i := range codes {
					codes[i] = tc.code
				}
				rec := newWebhookRecorder(codes...)
				n := startNotifier(t, NotifierConfig{URLs: []string{"http://hook.example/"}, Node: "n1",
					Client: &http.Client{Transport: inProcess{rec}}})
				start := time.Now()
				n.Deliver(testEvent(1, "n2"))
				time.Sleep(10 * time.Minute)
				synctest.Wait()
				if a, _ := rec.counts(); a != tc.attempts {
					t.Fatalf("got %d attempts, want %d", a, tc.attempts)
				}
				rec.mu.Lock()
				defer rec.mu.Unlock()
				if got := rec.attempts[len(rec.attempts)-1].Sub(start); got != tc.took {
					t.Errorf("last attempt after %v, want %v", got, tc.took)
				}
			})
		})
	}
}

func TestNotifierQueueDropsOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newWebhookRecorder()
		n, err := NewNotifier(NotifierConfig{URLs: []string{"http://a.example/", "http://b.example/"}, Node: "n1",
			QueueSize: 3, Client: &http.Client{Transport: inProcess{rec}}, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 { // queued before Start
			n.Deliver(testEvent(uint64(i+1), "n2"))
		}
		n.Start(t.Context())
		defer n.Shutdown(context.Background())
		synctest.Wait()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		var idx []string
		for _, id := range rec.ids {
			idx = append(idx, strings.SplitN(id, "-", 2)[0])
		}
		// Two URLs, each with the 3 newest events in order; the URLs'
		// workers interleave.
		counts := map[string]int{}
		for _, i := range idx {
			counts[i]++
		}
		if len(idx) != 6 || counts["3"] != 2 || counts["4"] != 2 || counts["5"] != 2 {
			t.Fatalf("delivered %v, want events 3, 4, 5 to each URL", idx)
		}
	})
}

func TestNotifierValidate(t *testing.T) {
	for _, u := range []string{"ftp://x/", "/relative", "http://"} {
		if _, err := NewNotifier(NotifierConfig{URLs: []string{u}}); err == nil {
			t.Errorf("url %q: got nil, want an error", u)
		}
	}
	n, err := NewNotifier(NotifierConfig{})
	if err != nil {
		t.Fatal(err)
	}
	n.Deliver(testEvent(1, "n2")) // no URLs: dropped
	if err := n.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown without Start: %v", err)
	}
}

// TestNotifierHTTP delivers over a real loopback server (outside a bubble,
// short backoff).
func TestNotifierHTTP(t *testing.T) {
	rec := newWebhookRecorder(503, 500)
	srv := httptest.NewServer(rec)
	defer srv.Close()
	n := startNotifier(t, NotifierConfig{URLs: []string{srv.URL + "/hook"}, Node: "n3", BackoffMin: time.Millisecond})
	ev := testEvent(7, "n2")
	cleared := testTime.Add(time.Minute)
	ev.Type, ev.Alarm.ClearedAt, ev.Alarm.ClearedBy = AlarmCleared, &cleared, "n3"
	n.Deliver(ev)
	select {
	case <-rec.got:
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered within 10s")
	}
	a, d := rec.counts()
	if a != 3 || d != 1 {
		t.Fatalf("got %d attempts, %d delivered, want 3, 1", a, d)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if b := rec.bodies[0]; b.Event != AlarmCleared || b.Node != "n3" || b.Alarm.ClearedAt == nil || !b.Alarm.ClearedAt.Equal(cleared) {
		t.Fatalf("body: got %+v", b)
	}
}

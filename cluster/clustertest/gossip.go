package clustertest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipNetwork is an in-memory network for memberlist, like
// memberlist.MockNetwork but safe for concurrent use and with faults:
// memberlist's mock has unsynchronised maps, blocks a sender forever on an
// unbuffered channel once the receiver shut down, and cannot partition.
// Packets are datagrams (dropped when the receiver is unreachable or its
// queue is full, as UDP); streams are net.Pipe pairs refused between
// unreachable nodes.
type GossipNetwork struct {
	mu    sync.Mutex
	port  int
	nodes map[string]*GossipTransport // by address
	group map[string]int              // address -> partition group (0 when absent)
	iso   int                         // last group given to an isolated node (negative)
}

// NewGossipNetwork returns an empty network.
func NewGossipNetwork() *GossipNetwork {
	return &GossipNetwork{nodes: map[string]*GossipTransport{}, group: map[string]int{}}
}

// NewTransport returns a transport at addr, or at a new unique
// 127.0.0.1:<port> address when addr is empty. A transport already at addr
// (a node that crashed) is replaced.
func (n *GossipNetwork) NewTransport(addr string) *GossipTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr == "" {
		n.port++
		addr = "127.0.0.1:" + strconv.Itoa(10000+n.port)
	}
	t := &GossipTransport{net: n, addr: addr, packetCh: make(chan *memberlist.Packet, 1024),
		streamCh: make(chan net.Conn), done: make(chan struct{})}
	n.nodes[addr] = t
	return t
}

// Isolate cuts addr off from every other node.
func (n *GossipNetwork) Isolate(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.iso--
	n.group[addr] = n.iso // a group of its own
}

// Partition puts each list of addresses into its own group; nodes in
// different groups cannot reach each other. Unlisted nodes form group 0.
func (n *GossipNetwork) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.group)
	for i, g := range groups {
		for _, a := range g {
			n.group[a] = i + 1
		}
	}
}

// Heal removes every partition.
func (n *GossipNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.group)
}

// peer returns the live transport at to if from can reach it.
func (n *GossipNetwork) peer(from, to string) (*GossipTransport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.nodes[to]
	if !ok || n.group[from] != n.group[to] {
		return nil, fmt.Errorf("no route to %s", to)
	}
	return t, nil
}

func (n *GossipNetwork) remove(t *GossipTransport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[t.addr] == t {
		delete(n.nodes, t.addr)
	}
}

// GossipTransport is one node's memberlist.Transport on a GossipNetwork.
type GossipTransport struct {
	net      *GossipNetwork
	addr     string
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{}
	once     sync.Once
}

var _ memberlist.NodeAwareTransport = (*GossipTransport)(nil)

type gossipAddr string

func (a gossipAddr) Network() string { return "mock" }
func (a gossipAddr) String() string  { return string(a) }

// Addr returns the transport's address.
func (t *GossipTransport) Addr() string { return t.addr }

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *GossipTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	host, ps, err := net.SplitHostPort(t.addr)
	if err != nil {
		return nil, 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return nil, 0, err
	}
	return net.ParseIP(host), port, nil
}

// WriteTo implements memberlist.Transport.
func (t *GossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport. An unreachable
// destination drops the packet silently, as UDP would.
func (t *GossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	if t.closed() {
		return now, errors.New("transport shut down")
	}
	dest, err := t.net.peer(t.addr, a.Addr)
	if err != nil {
		return now, nil
	}
	p := &memberlist.Packet{Buf: bytes.Clone(b), From: gossipAddr(t.addr), Timestamp: now}
	select {
	case dest.packetCh <- p:
	default: // receiver gone or overloaded: lost datagram
	}
	return now, nil
}

// PacketCh implements memberlist.Transport.
func (t *GossipTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// IngestPacket implements memberlist.NodeAwareTransport.
func (t *GossipTransport) IngestPacket(conn net.Conn, addr net.Addr, now time.Time, shouldClose bool) error {
	if shouldClose {
		defer conn.Close()
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, conn); err != nil {
		return fmt.Errorf("read packet: %w", err)
	}
	if buf.Len() < 1 {
		return errors.New("packet too short")
	}
	select {
	case t.packetCh <- &memberlist.Packet{Buf: buf.Bytes(), From: addr, Timestamp: now}:
	case <-t.done:
	}
	return nil
}

// DialTimeout implements memberlist.Transport.
func (t *GossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *GossipTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.closed() {
		return nil, errors.New("transport shut down")
	}
	dest, err := t.net.peer(t.addr, a.Addr)
	if err != nil {
		return nil, err
	}
	p1, p2 := net.Pipe()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case dest.streamCh <- p1:
		return p2, nil
	case <-dest.done:
	case <-tm.C:
	}
	_ = p1.Close()
	_ = p2.Close()
	return nil, fmt.Errorf("dial %s: connection refused", a.Addr)
}

// StreamCh implements memberlist.Transport.
func (t *GossipTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// IngestStream implements memberlist.NodeAwareTransport.
func (t *GossipTransport) IngestStream(conn net.Conn) error {
	select {
	case t.streamCh <- conn:
		return nil
	case <-t.done:
		return errors.New("transport shut down")
	}
}

// Shutdown implements memberlist.Transport; it leaves the network.
func (t *GossipTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		t.net.remove(t)
	})
	return nil
}

func (t *GossipTransport) closed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// Package netns holds the partition drill (`make drill-netns`, build tag
// drill): three nodes in their own network namespaces df-n1..df-n3, joined
// by veth pairs to a bridge in a fourth namespace df-br (10.77.0.1-3/24,
// the drill's own view from 10.77.0.254 in df-br). Nothing is configured in
// the root namespace and every request runs inside those namespaces
// (`ip netns exec ... curl`), so no drill traffic leaves them.
//
// The drill finds the leader, cuts its veth off the bridge, checks that the
// minority stops acking writes (they fail or time out) and raises the
// local quorum_lost alarm, that the majority elects a new leader and keeps
// acking, then heals the link and checks that all nodes converge on the
// same rows_accepted (every acked row, once) and applied index. The
// namespaces and processes are removed on every exit path, including
// SIGINT/SIGTERM. Without root or `ip netns` it skips with a message.
package netns

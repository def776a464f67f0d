// Package drill holds the failover drill run as a test: `go test -tags
// drill ./bench/drill/` builds the demandflow binary (or uses
// $DEMANDFLOW_BIN), runs `demandflow drill failover` against a local
// 3-process cluster and checks its JSON report: every cycle measured,
// nothing acked lost or duplicated. Without the drill tag it is empty.
package drill

#!/bin/sh
# tracking-ratio.sh [ROUNDS] [BENCHTIME] [BINARY...]
#
# Measures issue 4's target, "ingest throughput with tracking and the
# object index >= 90% of tracking off", in a way that survives a noisy
# 2-core machine: node/BenchmarkIngestTracking's tracking=off and
# tracking=objects run each in its own process, alternating, ROUNDS times
# (default 7) at -benchtime BENCHTIME (default 300x). It prints every
# round's rows/s and process cpu-s per million rows, the per-round ratios
# and the medians. Single runs of this benchmark vary by +-20% on that
# machine (other work, CPU steal), so compare medians, not runs.
#
# Given test binaries (go test -c ./node) as extra arguments, it runs them
# interleaved in the same rounds, so two builds can be compared under the
# same conditions; otherwise it builds the checkout's node tests.
set -eu
rounds=${1:-7}
benchtime=${2:-300x}
[ $# -ge 2 ] && shift 2 || shift $#
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ $# -eq 0 ]; then
	go test -c -o "$tmp/node.test" ./node
	set -- "$tmp/node.test"
fi
i=0
while [ "$i" -lt "$rounds" ]; do
	i=$((i + 1))
	for bin in "$@"; do
		for mode in off objects; do
			line=$("$bin" -test.run '^$' -test.bench "IngestTracking/tracking=$mode\$" -test.benchtime "$benchtime" 2>&1 | grep '^BenchmarkIngestTracking' || true)
			if [ -z "$line" ]; then
				echo "tracking-ratio: $bin tracking=$mode printed no result" >&2
				exit 1
			fi
			# ... N ns/op MB/s-value MB/s cpu-value cpu-s/Mrow rows-value rows/s
			echo "$line" | awk -v b="$(basename "$bin")" -v m="$mode" -v r="$i" \
				'{for (f = 2; f <= NF; f++) { if ($f == "cpu-s/Mrow") c = $(f-1); if ($f == "rows/s") s = $(f-1) } print r, b, m, s, c}'
		done
	done
done | tee "$tmp/rounds" | awk '{printf "round %s %-12s %-8s %9.0f rows/s  %.3f cpu-s/Mrow\n", $1, $2, $3, $4, $5}'
awk '
function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{ key = $2; rows[key, $3, $1] = $4; cpu[key, $3, $1] = $5; bins[key] = 1; if ($1 > n) n = $1 }
END {
	for (b in bins) {
		delete ro; delete rc; delete ra; delete co; delete cc
		for (i = 1; i <= n; i++) {
			ro[i] = rows[b, "off", i]; rc[i] = rows[b, "objects", i]
			ra[i] = rc[i] / ro[i]; co[i] = cpu[b, "off", i]; cc[i] = cpu[b, "objects", i]
		}
		printf "%s: median rows/s off %.0f, objects %.0f; median cpu-s/Mrow off %.3f, objects %.3f; median of round ratios %.1f%%\n",
			b, median(ro, n), median(rc, n), median(co, n), median(cc, n), 100 * median(ra, n)
	}
}' "$tmp/rounds"

#!/usr/bin/env bash
# Install a Demandflow node on this machine (run as root from a checkout
# after `make build`, or with BIN=/path/to/demandflow).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN:-$here/../bin/demandflow}
[ -x "$bin" ] || { echo "install: $bin not found; run 'make build' first or set BIN" >&2; exit 1; }
id demandflow >/dev/null 2>&1 || useradd --system --home /var/lib/demandflow --shell /usr/sbin/nologin demandflow
install -m 0755 "$bin" /usr/local/bin/demandflow
install -d -m 0755 /etc/demandflow
[ -f /etc/demandflow/demandflow.toml ] || install -m 0644 "$here/demandflow.toml" /etc/demandflow/demandflow.toml
install -d -o demandflow -g demandflow -m 0750 /var/lib/demandflow
install -m 0644 "$here/90-demandflow.conf" /etc/sysctl.d/90-demandflow.conf
sysctl --system >/dev/null || true
install -m 0644 "$here/demandflow.service" /etc/systemd/system/demandflow.service
systemctl daemon-reload
systemctl enable --now demandflow
echo "demandflow installed; logs: journalctl -u demandflow -f"

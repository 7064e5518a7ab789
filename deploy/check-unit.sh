#!/usr/bin/env bash
# Checks the systemd files in deploy/ (run by .ci/run):
#   - `systemd-analyze verify` prints nothing at all for chatd.service (it exits 0 even on
#     some bad values, so its output is what counts);
#   - `systemd-analyze security --offline=true` rates its exposure at most $MAX_EXPOSURE;
#   - systemd-sysusers accepts sysusers.d/chatd.conf and creates the chatd user (in a scratch
#     root, not on this machine).
# Needs systemd-analyze and systemd-sysusers (Debian package `systemd`).
set -euo pipefail
cd "$(dirname "$0")"
MAX_EXPOSURE=2.0

for tool in systemd-analyze systemd-sysusers; do
  command -v "$tool" >/dev/null || { echo "check-unit: $tool not found (apt-get install systemd)" >&2; exit 1; }
done
# Not under /tmp: verify resolves ExecStart= as the service would see it, with PrivateTmp=yes.
tmp=$(mktemp -d "$PWD/.check-unit.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

# verify also checks that ExecStart= binaries exist; the unit names their installed paths, so
# check a copy that points at stand-ins (only those paths differ).
mkdir -p "$tmp/bin"
ln -s "$(type -P true)" "$tmp/bin/chatd"
sed "s|/usr/bin/chatd|$tmp/bin/chatd|g" chatd.service > "$tmp/chatd.service"
set +e
verify=$(systemd-analyze verify --man=no "$tmp/chatd.service" 2>&1)
rc=$?
set -e
if [[ $rc -ne 0 || -n "$verify" ]]; then
  echo "check-unit: systemd-analyze verify chatd.service (exit $rc):" >&2
  echo "$verify" >&2
  exit 1
fi

report=$(systemd-analyze security --offline=true chatd.service 2>&1) || true
exposure=$(sed -n 's/.*Overall exposure level for chatd.service: \([0-9.]*\).*/\1/p' <<<"$report")
if [[ -z "$exposure" ]]; then
  echo "check-unit: no exposure level in systemd-analyze security output:" >&2
  echo "$report" >&2
  exit 1
fi
if ! awk -v e="$exposure" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(e <= max) }'; then
  echo "check-unit: exposure $exposure > $MAX_EXPOSURE:" >&2
  grep '✗' <<<"$report" >&2 || true
  exit 1
fi

mkdir -p "$tmp/root/etc" "$tmp/root/usr/lib/sysusers.d"
cp sysusers.d/chatd.conf "$tmp/root/usr/lib/sysusers.d/"
systemd-sysusers --root="$tmp/root" chatd.conf
if ! grep -q '^chatd:' "$tmp/root/etc/passwd" || ! grep -q '^chatd:' "$tmp/root/etc/group"; then
  echo "check-unit: systemd-sysusers did not create user and group chatd" >&2
  exit 1
fi

echo "check-unit: chatd.service verifies cleanly, exposure $exposure (max $MAX_EXPOSURE); sysusers ok"

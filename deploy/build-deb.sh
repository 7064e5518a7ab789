#!/usr/bin/env bash
# Builds the Debian package with cargo-deb and checks its contents.
#
#   deploy/build-deb.sh              release build (what you ship)
#   deploy/build-deb.sh --profile dev   reuse the test build (what CI does: no second compile)
#
# Generates the man pages and shell completions from the binaries first (they are assets of
# the package, see [package.metadata.deb] in daemon/Cargo.toml), then checks the file list and
# the conffiles with dpkg-deb. Needs cargo-deb (`cargo install cargo-deb`) and dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [[ "${1:-}" == --profile ]]; then profile="${2:?--profile needs a name}"; fi
case "$profile" in dev|test) dir=debug ;; *) dir="$profile" ;; esac
target="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target/$dir"

cargo build --locked --profile "$profile" -p chatd -p chatctl --bins
assets="$out/deb-assets"
mkdir -p "$assets"
"$out/chatd" man | gzip -9n > "$assets/chatd.1.gz"
"$out/chatctl" man | gzip -9n > "$assets/chatctl.1.gz"
"$out/chatctl" completions bash > "$assets/chatctl.bash"
"$out/chatctl" completions zsh > "$assets/_chatctl"
"$out/chatctl" completions fish > "$assets/chatctl.fish"

rm -rf "$target/debian"
# (cargo-deb warns that dev profiles may become unsupported; CI pins cargo-deb 3.8.0.)
cargo deb --locked -p chatd --no-build --strip --profile "$profile" --output "$target/debian/" 2>&1 \
  | { grep -v "dev profile is not supported\|debug symbols set\|^$" || true; } >&2
deb=$(ls "$target"/debian/chatd_*.deb)

# The file list: every file the package must install, and nothing empty among them.
listing=$(dpkg-deb -c "$deb")
status=0
for path in \
  ./usr/bin/chatd ./usr/bin/chatctl \
  ./etc/chatd/chatd.toml \
  ./usr/lib/sysusers.d/chatd.conf \
  ./usr/lib/systemd/system/chatd.service \
  ./usr/share/man/man1/chatd.1.gz ./usr/share/man/man1/chatctl.1.gz \
  ./usr/share/bash-completion/completions/chatctl \
  ./usr/share/zsh/vendor-completions/_chatctl \
  ./usr/share/fish/vendor_completions.d/chatctl.fish \
  ./usr/share/doc/chatd/operations.md ./usr/share/doc/chatd/copyright
do
  line=$(awk -v p="$path" '$6 == p' <<<"$listing")
  if [[ -z "$line" ]]; then
    echo "build-deb: $path missing from $deb" >&2; status=1
  elif [[ $(awk '{print $3}' <<<"$line") == 0 ]]; then
    echo "build-deb: $path is empty in $deb" >&2; status=1
  fi
done
control=$(mktemp -d)
trap 'rm -rf "$control"' EXIT
dpkg-deb -e "$deb" "$control"
grep -qx /etc/chatd/chatd.toml "$control/conffiles" || { echo "build-deb: chatd.toml is not a conffile" >&2; status=1; }
grep -q systemd-sysusers "$control/postinst" || { echo "build-deb: postinst does not create the user" >&2; status=1; }
if [[ $status -ne 0 ]]; then echo "$listing" >&2; exit 1; fi

# The packaged binary accepts the packaged configuration, and prints its man page.
dpkg-deb -x "$deb" "$control/root"
env -i HOME="$control" "$control/root/usr/bin/chatd" --config "$control/root/etc/chatd/chatd.toml" check-config --quiet
"$control/root/usr/bin/chatctl" --version >/dev/null
echo "build-deb: $deb ($(du -h "$deb" | cut -f1)) has every expected file"

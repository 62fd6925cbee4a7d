#!/usr/bin/env bash
# Tests the Debian package as a user meets it: installs .build/package/flare_*.deb
# with dpkg -i, uses the installed binary from a directory with no checkout and
# with the build tree hidden (a private mount namespace puts an empty tmpfs
# over it), as root and as nobody, checks the units, the conffile, the user,
# the completions and the man pages, runs the browser tests' landing and
# export checks against /usr/bin/flare, then removes and purges the package.
# Needs root; `scripts/package` first. Last line: "package: N checks passed".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
scripts/install-deps
version=$(tr -d '[:space:]' <VERSION)
deb=$(ls .build/package/flare_"$version"_*.deb 2>/dev/null | head -1)
[[ $(id -u) -eq 0 ]] || { echo "error: the package tests install a package: run them as root" >&2; exit 1; }
[[ -n $deb ]] || { echo "error: no .build/package/flare_${version}_*.deb: run scripts/package first" >&2; exit 1; }

checks=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d /tmp/flare-package-test.XXXXXX)
store_pid=""
cleanup() {
  [[ -n $store_pid ]] && kill "$store_pid" 2>/dev/null || true
  # Purged whatever state a failure left it in (installed, or removed with its conffile kept):
  # a conffile left behind would configure every later `flare agent` on this machine.
  if dpkg-query -W flare >/dev/null 2>&1; then dpkg -P flare >/dev/null 2>&1 || true; fi
  pkill -u flare -x flare 2>/dev/null || true
  rm -rf "$work" /var/lib/flare-store
}
trap cleanup EXIT

# A leftover install (an interrupted run) would hide what this one installs.
dpkg-query -W flare >/dev/null 2>&1 && dpkg -P flare >/dev/null
rm -rf /var/lib/flare-store

begin=$(date +%s.%N)
dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log"; fail "dpkg -i $deb"; }
pass "dpkg -i $deb"

# What dpkg says it installed.
dpkg-query -W -f='${Version}\n' flare | grep -qx "$version" || fail "installed version is not $version"
for path in /usr/bin/flare /lib/systemd/system/flare-agent.service /lib/systemd/system/flare-store.service /etc/flare/agent.toml \
            /usr/share/bash-completion/completions/flare /usr/share/zsh/vendor-completions/_flare \
            /usr/share/fish/vendor_completions.d/flare.fish /usr/share/man/man1/flare.1.gz /usr/share/man/man1/flare-record.1.gz \
            /usr/share/doc/flare/copyright; do
  dpkg -L flare | grep -qx "$path" || fail "the package does not list $path"
  [[ -e $path ]] || fail "$path is listed but missing"
done
pass "the package holds the binary, units, conffile, completions, man pages and copyright"
dpkg-query -W -f='${Conffiles}\n' flare | grep -q '^ /etc/flare/agent.toml ' || fail "/etc/flare/agent.toml is not a conffile"
pass "/etc/flare/agent.toml is a conffile"
entry=$(getent passwd flare) || fail "postinst created no flare user"
uid=$(cut -d: -f3 <<<"$entry")
((uid < 1000)) || fail "the flare user is not a system user (uid $uid)"
[[ $(cut -d: -f7 <<<"$entry") == */nologin || $(cut -d: -f7 <<<"$entry") == /bin/false ]] || fail "the flare user has a login shell"
pass "flare is a system user without a login (uid $uid)"
systemctl is-enabled flare-agent.service >/dev/null 2>&1 && fail "flare-agent.service was enabled by the install"
zgrep -q "Fl -frequency" /usr/share/man/man1/flare-record.1.gz || fail "the flare record man page does not document -F/--frequency"
grep -q "record" /usr/share/bash-completion/completions/flare || fail "the bash completion does not complete subcommands"
pass "man pages and completions describe the commands"

# The installed units as systemd reads them (User=flare now exists).
verify=$(systemd-analyze verify /lib/systemd/system/flare-agent.service /lib/systemd/system/flare-store.service 2>&1) || fail "systemd-analyze verify: $verify"
[[ -z $verify ]] || fail "systemd-analyze verify printed: $verify"
pass "systemd-analyze verify passes on the installed units"

# The conffile is what the agent reads when it is given no --config.
sed -i 's/^frequency = 99 /frequency = 49 /' /etc/flare/agent.toml
grep -q '^frequency = 49 ' /etc/flare/agent.toml || fail "could not edit the conffile's frequency"

# Everything else from a directory with no checkout, with the build tree hidden.
cat >"$work/unseen.sh" <<'EOF'
set -euo pipefail
work=$1
mount -t tmpfs -o size=1m,mode=0755 flare-hidden "$2"
[[ -z $(ls -A "$2") ]] || { echo "FAIL: the build tree is still visible" >&2; exit 1; }
mkdir -p "$work/empty" && chmod 0777 "$work" "$work/empty" && cd "$work/empty"
as_nobody() { setpriv --reuid nobody --regid nogroup --clear-groups -- "$@"; }

as_nobody flare --version | grep -qE '^flare [0-9][^ ]* \(commit ([0-9a-f]{40}|unknown[^)]*)\)$' || { echo "FAIL: flare --version" >&2; exit 1; }
echo "ok: flare --version as nobody: $(flare --version)"

config=$(as_nobody flare agent --print-config)
grep -qx 'sampling.frequency = 49' <<<"$config" || { echo "FAIL: flare agent --print-config did not read /etc/flare/agent.toml: $config" >&2; exit 1; }
echo "ok: flare agent --print-config reads /etc/flare/agent.toml"

# The first profile, as a user's first command (root: perf_event for a command it starts).
flare record -o "$work/first.pb.gz" -- sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done' >/dev/null 2>"$work/record.err" \
  || { cat "$work/record.err" >&2; echo "FAIL: flare record" >&2; exit 1; }
date +%s.%N >"$work/first-profile-at"
[[ -s $work/first.pb.gz ]] || { echo "FAIL: flare record wrote no profile" >&2; exit 1; }
chmod 0644 "$work/first.pb.gz"
echo "ok: flare record wrote its first profile"

as_nobody flare export --html "$work/first.pb.gz" -o "$work/empty/first.html"
grep -q 'id="flame"' "$work/empty/first.html" && grep -q 'flare-data' "$work/empty/first.html" \
  || { echo "FAIL: the export holds no viewer or no data" >&2; exit 1; }
! grep -qE 'src="(https?:)?//|href="(https?:)?//' "$work/empty/first.html" || { echo "FAIL: the export loads from the network" >&2; exit 1; }
echo "ok: flare export --html as nobody inlines the built-in viewer ($(wc -c <"$work/empty/first.html") bytes)"

# exec: $! is then the store itself, which the kill below must reach.
(exec setpriv --reuid nobody --regid nogroup --clear-groups -- flare store --data-dir "$work/empty/store" --address 127.0.0.1:4197 >"$work/empty/store.log" 2>&1) &
store=$!
for _ in $(seq 100); do curl -fsS http://127.0.0.1:4197/health >/dev/null 2>&1 && break; sleep 0.1; done
page=$(curl -fsS http://127.0.0.1:4197/) && app=$(curl -fsS http://127.0.0.1:4197/ui/app.js) \
  || { kill $store; cat "$work/empty/store.log" >&2; echo "FAIL: the store serves no viewer" >&2; exit 1; }
kill $store; wait $store 2>/dev/null || true
grep -q 'id="flame"' <<<"$page" && [[ ${#app} -gt 1000 ]] || { echo "FAIL: the store's / is not the viewer" >&2; exit 1; }
echo "ok: flare store as nobody serves the built-in viewer at / and /ui/app.js"
EOF
unshare --mount --propagation private bash "$work/unseen.sh" "$work" "$repo" | tee "$work/unseen.log"
checks=$((checks + $(grep -c '^ok:' "$work/unseen.log")))
first_profile=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$begin" "$(cat "$work/first-profile-at")")
echo "time from dpkg -i to the first profile written by flare record: ${first_profile} s"

# The browser tests' landing and export checks, against the installed binary.
if FLARE_BINARY=/usr/bin/flare Tests/viewer/run.sh test_known_profile_renders test_export_opens_offline >"$work/browser.log" 2>&1; then
  pass "browser: $(tail -1 "$work/browser.log") (landing page and offline export, /usr/bin/flare)"
else
  cat "$work/browser.log"; fail "the browser tests against /usr/bin/flare"
fi

# Data the store keeps: written by the flare user, as the unit runs it.
setpriv --reuid flare --regid flare --clear-groups -- true || fail "cannot run as the flare user"
install -d -o flare -g flare -m 0750 /var/lib/flare-store
(cd / && exec setpriv --reuid flare --regid flare --clear-groups -- flare store --data-dir /var/lib/flare-store --address 127.0.0.1:4198 >"$work/unit-store.log" 2>&1) &
store_pid=$!
for _ in $(seq 100); do curl -fsS http://127.0.0.1:4198/health >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS --data-binary @"$work/first.pb.gz" "http://127.0.0.1:4198/api/v1/profiles?service=package-test&window_id=p1" >/dev/null \
  || { cat "$work/unit-store.log"; fail "the store running as flare took no profile"; }
kill "$store_pid"; wait "$store_pid" 2>/dev/null || true; store_pid=""
pgrep -u flare -x flare >/dev/null && fail "a store of the flare user still runs"
data_files=$(find /var/lib/flare-store -type f | wc -l)
((data_files > 0)) || fail "the store wrote nothing under /var/lib/flare-store"
pass "the store as the flare user keeps its data in /var/lib/flare-store"

dpkg -r flare >"$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log"; fail "dpkg -r flare"; }
for path in /usr/bin/flare /lib/systemd/system/flare-agent.service /lib/systemd/system/flare-store.service \
            /usr/share/bash-completion/completions/flare /usr/share/man/man1/flare.1.gz /usr/share/doc/flare; do
  [[ ! -e $path ]] || fail "dpkg -r left $path"
done
grep -q '^frequency = 49 ' /etc/flare/agent.toml || fail "dpkg -r did not keep the edited conffile"
(($(find /var/lib/flare-store -type f | wc -l) == data_files)) || fail "dpkg -r touched the store's data"
pass "dpkg -r removes everything but the conffile and the data"

dpkg -P flare >"$work/dpkg-p.log" 2>&1 || { cat "$work/dpkg-p.log"; fail "dpkg -P flare"; }
[[ ! -e /etc/flare/agent.toml ]] || fail "dpkg -P left the conffile"
pass "dpkg -P removes the conffile (the data stays, as postrm says)"

echo "package: $checks checks passed"

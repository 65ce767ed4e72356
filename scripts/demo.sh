#!/usr/bin/env bash
# make demo: knockgate standalone protecting a small TCP service, opened by the real `knock` and
# `fwknop` clients, closing again on its own. Everything happens inside network namespaces this
# script creates (10.213.0.0/16 and fd00:213::/32, no default route) and is removed at the end, also
# when interrupted. Needs root; `make demo` has already installed the packages and built knockgate.
set -euo pipefail

cd "$(dirname "$0")/.."
KG="node $PWD/dist/cmd/knockgate.js"
TAG="kgdemo$$"
SRV="${TAG}-srv" ALICE="${TAG}-alice" BOB="${TAG}-bob"
SRV_A=10.213.1.1 ALICE_IP=10.213.1.2 SRV_B=10.213.2.1 BOB_IP=10.213.2.2
PORT=2222 DURATION=20
WORK=$(mktemp -d /tmp/knockgate-demo.XXXXXX)
DAEMON_PID="" SERVICE_PID=""

bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' dim=$'\e[2m' off=$'\e[0m'
[ -t 1 ] || { bold="" green="" red="" dim="" off=""; }
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
say() { printf '    %s\n' "$*"; }
run() { printf '    %s$ %s%s\n' "$dim" "$*" "$off"; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  step "Cleaning up"
  [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
  [ -n "$SERVICE_PID" ] && kill -TERM "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null || true
  if ip netns list | grep -q "^$SRV\b"; then
    ip netns exec "$SRV" $KG standalone --cleanup --log-level warn >/dev/null 2>&1 || true
  fi
  for ns in "$SRV" "$ALICE" "$BOB"; do
    # Anything still running in the namespace is ours: stop it by PID, then remove the namespace.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$WORK"
  say "removed the namespaces, processes, firewall rules and $WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "make demo: run as root (it creates network namespaces)" >&2; exit 1; }

# connect NS ADDR: prints what the protected service answered, or fails within 2 seconds.
connect() {
  ip netns exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/$PORT && head -c 64 <&3" 2>/dev/null
}
expect_open() {
  local who=$1 ns=$2 addr=$3 answer
  run "ip netns exec $who bash -c 'exec 3<>/dev/tcp/$addr/$PORT'"
  if answer=$(connect "$ns" "$addr"); then
    say "${green}connected${off}: the service says \"$answer\""
  else
    say "${red}unexpected: $who cannot connect${off}"; return 1
  fi
}
expect_closed() {
  local who=$1 ns=$2 addr=$3
  run "ip netns exec $who bash -c 'exec 3<>/dev/tcp/$addr/$PORT'"
  if connect "$ns" "$addr" >/dev/null; then
    say "${red}unexpected: $who could connect${off}"; return 1
  fi
  say "${green}no connection${off}: the port is dropped for $who (no answer at all)"
}
# wait_for WHAT CMD...: up to 10 seconds.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: timed out waiting for $what" >&2; return 1
}

step "Building a server and two clients as network namespaces"
ip netns add "$SRV"; ip netns add "$ALICE"; ip netns add "$BOB"
link() { # link CLIENT_NS SRV_IF CLIENT_IF SRV_ADDR CLIENT_ADDR V6NET
  ip link add "$2" netns "$SRV" type veth peer name "$3" netns "$1"
  ip -n "$SRV" addr add "$4/24" dev "$2"; ip -n "$1" addr add "$5/24" dev "$3"
  ip -n "$SRV" addr add "$6::1/64" dev "$2" nodad; ip -n "$1" addr add "$6::2/64" dev "$3" nodad
  ip -n "$SRV" link set "$2" up; ip -n "$1" link set "$3" up
}
link "$ALICE" kgd-a eth0 "$SRV_A" "$ALICE_IP" fd00:213:1
link "$BOB" kgd-b eth0 "$SRV_B" "$BOB_IP" fd00:213:2
for ns in "$SRV" "$ALICE" "$BOB"; do ip -n "$ns" link set lo up; done
say "server $SRV ($SRV_A, $SRV_B), alice $ALICE_IP, bob $BOB_IP"

step "Starting a small TCP service on port $PORT in the server namespace"
ip netns exec "$SRV" node -e "
  require('net').createServer((s) => { s.on('error', () => {}); s.end('hello from the protected service\n'); })
    .listen($PORT, '::', () => console.log('listening'));" >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
wait_for "the service" grep -q listening "$WORK/service.log"
expect_open alice "$ALICE" "$SRV_A"

step "Writing the knockgate config: a knock sequence and an fwknop SPA policy, both opening $PORT/tcp for ${DURATION}s"
eval "$($KG keygen | sed -n 's/^KEY_BASE64: */KEY=/p; s/^HMAC_KEY_BASE64: */HMAC=/p')"
cat >"$WORK/knockgate.yaml" <<EOF
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: ssh-knock}
spec:
  knock: {sequence: ["7000/tcp", "8000/tcp", "9000/tcp"], sequenceTimeoutSeconds: 10}
  grant: {ports: ["$PORT/tcp"], durationSeconds: $DURATION}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: ssh-spa}
spec:
  spa: {keySecretRef: {name: demo-keys}, port: "62201/udp"}
  grant: {ports: ["$PORT/tcp"], durationSeconds: $DURATION}
---
apiVersion: v1
kind: Secret
metadata: {name: demo-keys}
stringData: {KEY_BASE64: "$KEY", HMAC_KEY_BASE64: "$HMAC"}
EOF
chmod 600 "$WORK/knockgate.yaml"
sed -e 's/\(KEY_BASE64: \)"[^"]*"/\1"<redacted>"/g' "$WORK/knockgate.yaml" | sed 's/^/    /'

step "Starting knockgate standalone (nftables backend) in the server namespace"
run "knockgate standalone --config knockgate.yaml --interface kgd-a kgd-b --state-dir $WORK/state"
ip netns exec "$SRV" $KG standalone --config "$WORK/knockgate.yaml" --interface kgd-a kgd-b \
  --state-dir "$WORK/state" --log-level info >"$WORK/knockgate.log" 2>&1 &
DAEMON_PID=$!
wait_for "knockgate to start" grep -q '"event":"started"' "$WORK/knockgate.log" || {
  cat "$WORK/knockgate.log" >&2; exit 1; }
say "started (log: $WORK/knockgate.log); the firewall it installed:"
ip netns exec "$SRV" nft list table inet knockgate | sed -n '1,12p' | sed 's/^/      /'
say "..."

step "Before any knock, port $PORT is closed to everyone"
expect_closed alice "$ALICE" "$SRV_A"
expect_closed bob "$BOB" "$SRV_B"

step "Alice knocks with the real knock client"
run "knock $SRV_A 7000 8000 9000"
ip netns exec "$ALICE" knock "$SRV_A" 7000 8000 9000
wait_for "alice's grant" bash -c "$KG grants --state-dir '$WORK/state' | grep -q $ALICE_IP"
expect_open alice "$ALICE" "$SRV_A"
say "bob did not knock:"
expect_closed bob "$BOB" "$SRV_B"

step "Bob sends an SPA packet with the real fwknop client"
run "fwknop --no-rc-file -A tcp/$PORT -a $BOB_IP -D $SRV_B --key-base64-rijndael ... --key-base64-hmac ... --use-hmac"
ip netns exec "$BOB" fwknop --no-rc-file -A "tcp/$PORT" -a "$BOB_IP" -D "$SRV_B" \
  --key-base64-rijndael "$KEY" --key-base64-hmac "$HMAC" --use-hmac >/dev/null
wait_for "bob's grant" bash -c "$KG grants --state-dir '$WORK/state' | grep -q $BOB_IP"
expect_open bob "$BOB" "$SRV_B"

step "knockgate grants shows both"
run "knockgate grants --state-dir $WORK/state"
$KG grants --state-dir "$WORK/state" | sed 's/^/    /'

step "Waiting for the grants to expire (${DURATION}s after they opened)"
for _ in $(seq 1 $((DURATION * 2 + 20))); do
  $KG grants --state-dir "$WORK/state" | grep -q "No live grants" && break
  sleep 0.5
done
$KG grants --state-dir "$WORK/state" --all | sed 's/^/    /'
expect_closed alice "$ALICE" "$SRV_A"
expect_closed bob "$BOB" "$SRV_B"

step "What knockgate logged (audit lines)"
grep -E '"event":"(open|expire|refuse)"' "$WORK/knockgate.log" |
  sed -E 's/.*"msg":"([^"]*)".*/\1/' | sed 's/^/    /'

step "Done: access opened for exactly the client that knocked or sent SPA, and closed again on its own"

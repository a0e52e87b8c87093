#!/bin/sh
# fuzz/capture.sh CAPTURE: regenerates the seeds captured from the simulator
# (every file named sim-* under fuzz/seeds/) and fuzz/replay.expect, what
# each captured conversation returned step by step. Run by `make
# fuzz-seeds`; needs root, like the simulator.
set -eu
cap=$1
seeds=fuzz/seeds
tmp=$(mktemp -d /tmp/capture.XXXXXX)
eval "$(sim/start --config fuzz/capture-hosts.lua)"
trap 'sim/stop "$TERMSRV_SIM_DIR" >/dev/null; rm -rf "$tmp"' EXIT
export TERMSRV_CAPTURE_PASSWORD="$TERMSRV_SIM_PASSWORD"
/usr/bin/python3 -c 'import json,sys
for h in json.load(open(sys.argv[1])): print(h["name"], h["port"])' "$TERMSRV_SIM_HOSTS_FILE" |
while read -r name port; do
  case $name in *-p) auth=privacy ;; *) auth=none ;; esac
  "$cap" --host 127.0.0.1 --port "$port" --user "$TERMSRV_SIM_USER" \
    --domain "$TERMSRV_SIM_DOMAIN" --auth "$auth" --label "sim-$name" --out "$tmp" \
    --expect "$tmp/expect" >/dev/null
done
# The whole conversations are kept (the replay spec checks each against
# fuzz/replay.expect); the per-pipe and per-PDU captures overlap a lot, so
# they are reduced with libFuzzer's merge to those that add coverage, under
# their descriptive names (libFuzzer names what it keeps by SHA-1).
for d in tsts_client rpc_pdu rpc_stream rpc_sealed tsts_parse ntlm_challenge; do
  mkdir -p "$seeds/$d"
  find "$seeds/$d" -name 'sim-*' -type f -delete
  [ -d "$tmp/$d" ] || continue
  if [ "$d" = tsts_client ]; then
    cp "$tmp/$d"/* "$seeds/$d/"
    continue
  fi
  mkdir -p "$tmp/merged-$d"
  "build-fuzz/fuzz_$d" -merge=1 "$tmp/merged-$d" "$tmp/$d" >"$tmp/merge-$d.log" 2>&1 ||
    { cat "$tmp/merge-$d.log" >&2; exit 1; }
  for f in "$tmp/$d"/*; do
    h=$(sha1sum "$f" | cut -d' ' -f1)
    if [ -f "$tmp/merged-$d/$h" ]; then cp "$f" "$seeds/$d/"; fi
  done
done
sort "$tmp/expect" >fuzz/replay.expect
echo "captured: $(find "$seeds" -name 'sim-*' -type f | wc -l) seeds, $(wc -l <fuzz/replay.expect) conversations"

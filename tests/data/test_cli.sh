#!/bin/sh
# gemmnet synth / check-data / bench-data from the command line: exit codes and output lines.
set -u
G="${GEMMNET:?GEMMNET must name the gemmnet binary}"
T=$(mktemp -d /tmp/gn_cli_test_XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $1"; fail=1; fi; }

"$G" synth "$T/s" --classes 3 --train 6 --val 2 --min-side 40 --max-side 80 --seed 3 > "$T/out" 2>&1
check '[ $? -eq 0 ]'
check '[ -f "$T/s/.complete" ] && [ ! -e "$T/s/.incomplete" ]'
"$G" check-data "$T/s/train" > "$T/out" 2>&1
check '[ $? -eq 0 ]'
check '[ "$(tail -n 1 "$T/out")" = "18 files, 0 unreadable" ]'
printf '\211PNG\r\n\032\nxxxx' > "$T/s/train/disc/fake.JPEG"
: > "$T/s/train/ring/empty.jpg"
"$G" check-data "$T/s/train" > "$T/out" 2>&1
check '[ $? -eq 1 ]'
check '[ "$(tail -n 1 "$T/out")" = "20 files, 2 unreadable" ]'
check 'grep -q "fake.JPEG: not a JPEG (PNG data)" "$T/out"'
check 'grep -q "empty.jpg: empty file" "$T/out"'
printf '[net]\nwidth=32\nheight=32\nchannels=3\n[data]\ntrain=s/val\nval=s/val\nmax_bad_fraction=1\n' > "$T/b.cfg"
"$G" bench-data "$T/b.cfg" --images 20 --batch 2 --workers 1,2 > "$T/out" 2>&1
check '[ $? -eq 0 ]'
check '[ "$(grep -c "img/s total" "$T/out")" -eq 4 ]'
"$G" bench-data "$T/b.cfg" --workers x > /dev/null 2>&1
check '[ $? -eq 2 ]'
"$G" synth > /dev/null 2>&1
check '[ $? -eq 2 ]'
[ $fail -eq 0 ] && echo "cli data tests passed"
exit $fail

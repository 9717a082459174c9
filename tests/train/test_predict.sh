#!/usr/bin/env bash
# gemmnet predict at scale: a folder, list files (plain and Caffe-style) and single images give
# the same CSV rows (so a batch of 4 with a short last batch gives each image the probabilities
# it gets alone at batch 1); the CSV's layout (path, top-1 class, its probability, one column
# per class named from the checkpoint); broken JPEGs skipped and counted; nothing written when
# no image can be read; with eval.tta=flip, the same top-1 as gemmnet eval.
set -uo pipefail
G=${GEMMNET:?}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/small_run.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
small_run "$tmp" 6 0 0 0 || { echo "setup failed"; exit 1; }
"$G" train "$tmp/t.cfg" --out "$tmp/run" >/dev/null || { echo "training failed"; exit 1; }
W=$tmp/run/last.safetensors
P=("$G" predict "$tmp/t.cfg" --weights "$W")

# a folder, batches of 4 (18 images: the last batch has 2)
"${P[@]}" --batch 4 --csv "$tmp/dir.csv" "$tmp/d/val" >"$tmp/dir.out" || fail=1
check '[ "$(head -1 "$tmp/dir.csv")" = "path,class,probability,disc,ring,square" ]' "header names the classes"
check '[ "$(tail -n +2 "$tmp/dir.csv" | wc -l)" = 18 ]' "one row per image"
check 'grep -q "^18 images -> " "$tmp/dir.out"' "the summary line counts them"
# every row: the class column is the arg max, its probability repeated, the row sums to 1
check 'awk -F, "NR > 1 { b = 4; for (j = 5; j <= NF; j++) if (\$j > \$b) b = j;
        s = 0; for (j = 4; j <= NF; j++) s += \$j;
        if (\$3 != \$b || s < 0.99999 || s > 1.00001) bad++ }
        NR > 1 { h[NR] = 1 } END { exit bad > 0 }" "$tmp/dir.csv"' "top-1 and probabilities consistent"
check 'awk -F, -v names="disc ring square" "BEGIN { split(names, n, \" \") }
        NR > 1 { b = 4; for (j = 5; j <= NF; j++) if (\$j > \$b) b = j; if (\$2 != n[b - 3]) bad++ }
        END { exit bad > 0 }" "$tmp/dir.csv"' "the class column names the arg max"

# the same images as single images, one run each at batch 1
: >"$tmp/single.rows"
for f in $(tail -n +2 "$tmp/dir.csv" | cut -d, -f1); do
    "${P[@]}" --csv "$tmp/one.csv" "$f" >/dev/null || fail=1
    tail -n +2 "$tmp/one.csv" >>"$tmp/single.rows"
done
tail -n +2 "$tmp/dir.csv" >"$tmp/dir.rows"
check 'cmp -s "$tmp/dir.rows" "$tmp/single.rows"' "folder rows equal single-image rows"

# test-time augmentation (eval.tta=flip): predict's top-1 over the validation folder equals
# gemmnet eval's, with and without it, and the mirrored view changes the probabilities
acc_of() { awk -F, 'NR > 1 { n = split($1, p, "/"); right += ($2 == p[n - 1]); all++ }
                    END { printf "%.2f%%", 100 * right / all }' "$1"; }
for tta in none flip; do
    "${P[@]}" --batch 4 --set eval.tta=$tta --csv "$tmp/tta-$tta.csv" "$tmp/d/val" >/dev/null ||
        fail=1
    ev=$("$G" eval "$tmp/t.cfg" --weights "$W" --batch 4 --set eval.tta=$tta |
        sed -n 's/.*top1 \([0-9.]*%\).*/\1/p')
    check '[ -n "$ev" ] && [ "$(acc_of "$tmp/tta-$tta.csv")" = "$ev" ]' \
        "tta=$tta: predict's top-1 is eval's ($ev)"
done
check 'cmp -s "$tmp/dir.csv" "$tmp/tta-none.csv"' "tta=none is the plain output"
check '! cmp -s "$tmp/tta-none.csv" "$tmp/tta-flip.csv"' "tta=flip changes the probabilities"

# a plain list (absolute paths) and a Caffe-style list (relative to its folder, with labels)
cut -d, -f1 "$tmp/dir.rows" >"$tmp/list.txt"
sed "s|^$tmp/||; s|\$| 1|" "$tmp/list.txt" >"$tmp/caffe.txt"
"${P[@]}" --batch 5 --csv "$tmp/list.csv" "$tmp/list.txt" >/dev/null || fail=1
"${P[@]}" --batch 7 --csv "$tmp/caffe.csv" "$tmp/caffe.txt" >/dev/null || fail=1
check 'cmp -s "$tmp/dir.csv" "$tmp/list.csv"' "list file rows equal folder rows"
check 'cmp -s "$tmp/dir.csv" "$tmp/caffe.csv"' "Caffe-style list rows equal folder rows"

# without --csv: today's plain output (path, then the top classes), same top-1
"${P[@]}" --top 1 "$tmp/d/val/ring" >"$tmp/plain.out" || fail=1
first=$(grep -m1 ',ring,\|,disc,\|,square,' <(grep "/ring/" "$tmp/dir.csv") | cut -d, -f2,3)
want=$(echo "$first" | awk -F, '{ printf "%.2f%%  %s", 100 * $2, $1 }')
check '[ "$(sed -n 2p "$tmp/plain.out" | sed "s/^ *//")" = "$want" ]' "plain output's top-1 matches the CSV"

# broken files: a truncated JPEG and a text file named .jpg among good ones
mkdir -p "$tmp/mixed/sub"
good=$(head -1 "$tmp/list.txt")
cp "$good" "$tmp/mixed/a.jpg"
cp "$good" "$tmp/mixed/sub/c.JPEG"
head -c 200 "$good" >"$tmp/mixed/b.jpg"
echo "not a jpeg" >"$tmp/mixed/sub/d.jpg"
"${P[@]}" --csv "$tmp/mixed.csv" "$tmp/mixed" >"$tmp/mixed.out" 2>"$tmp/mixed.err"
check '[ $? = 0 ]' "broken files do not fail the run"
check '[ "$(tail -n +2 "$tmp/mixed.csv" | cut -d, -f1 | tr "\n" " ")" = "$tmp/mixed/a.jpg $tmp/mixed/sub/c.JPEG " ]' \
    "only the readable images have rows, in name order, recursively"
check 'grep -q "skipped 2 unreadable files" "$tmp/mixed.out"' "the skipped files are counted"
check '[ "$(grep -c "warning: skipped" "$tmp/mixed.err")" = 2 ]' "each skipped file is reported"

# nothing readable: exit 1 and no CSV (an old one stays as it was)
echo old >"$tmp/none.csv"
"${P[@]}" --csv "$tmp/none.csv" "$tmp/mixed/b.jpg" "$tmp/mixed/sub/d.jpg" >/dev/null 2>&1
check '[ $? = 1 ]' "no readable image: exit 1"
check '[ "$(cat "$tmp/none.csv")" = old ] && [ -z "$(ls "$tmp" | grep "none.csv.tmp")" ]' \
    "the old CSV untouched, no temporary file left"
exit $fail

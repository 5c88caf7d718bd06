#!/usr/bin/env bash
# Runs every ganalyze command over the corpus and golden captures and writes each output
# (stdout, stderr, exit code) to OUT_DIR, then their sha256 sums to OUT_DIR.sha256, so a
# rework can prove its outputs unchanged: run it with the old and the new binary against the
# same checkout and diff the two .sha256 files.
#   usage: scripts/output-hashes.sh GANALYZE_BIN REPO_DIR OUT_DIR
set -u
G=$1; R=$2; O=$3; rm -rf "$O"; mkdir -p "$O"
run() { local name=$1; shift; ( cd "$R" && "$G" "$@" ) >"$O/$name.out" 2>"$O/$name.err"; echo "rc=$?" >>"$O/$name.out"; }
for f in "$R"/corpus/captures/*.gcap "$R"/corpus/golden/*.gcap; do
  c=$(basename "$f" .gcap)
  run "$c.info" info "$f"; run "$c.info.json" info "$f" --format json; run "$c.verify" verify "$f"
  for fm in text json csv; do
    run "$c.goroutines.$fm" goroutines "$f" --format $fm --limit 0
    run "$c.spans.$fm" spans "$f" --format $fm --limit 0
  done
  for fm in text json markdown html; do
    run "$c.report.$fm" report "$f" --format $fm
    run "$c.report-slo.$fm" report "$f" --format $fm --slo "*: p99 < 20ms" --slo "GET /api/*: 99% < 5ms, errors < 1%"
  done
  run "$c.report-slofile" report "$f" --slo-file "$R/analyze/tests/data/slos.yaml" --format json
  run "$c.export.chrome" export "$f" --format chrome -o "$O/$c.chrome.json"
  run "$c.export.folded" export "$f" --format folded -o "$O/$c.folded"
  run "$c.export.parquet" export "$f" --format parquet -o "$O/$c.parquet"
done
run all.report report "$R"/corpus/captures/*.gcap --format json --slo "*: p99 < 20ms"
run all.goroutines goroutines "$R"/corpus/captures/*.gcap --format json
# errors
run err.badslo report "$R/corpus/captures/lock_convoy.gcap" --slo "GET /x p99 200ms"
run err.missing info /nonexistent.gcap
( cd "$O" && find . -type f | sort | xargs sha256sum ) > "$O.sha256"
echo "wrote $O.sha256 ($(wc -l < "$O.sha256") files)"

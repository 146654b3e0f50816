#!/usr/bin/env bash
# bench/mini-t0/real.sh — the mini-T0 harness on real data (issue #9 item 5):
#
#   bench/mini-t0/real.sh [RUN_DIR]          (default: ./mini-t0-real)
#
# Held-in experts on the real SST-2, TREC, AG News and BoolQ files, held-out evaluation on
# the real SuperGLUE validation sets CB, COPA, RTE, WiC and WSC (T0 held-out tasks of the
# paper), all converted with `gaggle debug convert` (T0-style prompt templates), then the
# same experts, gates, Multitask and table as bench/mini-t0/run.sh (which it runs).
#
# On the tiny default base (examples/base, a vocabulary learnt from the synthetic suite)
# this proves the pipeline on real formats; the scores are near chance. With a real base
# (GAGGLE_BASE=t5-base-lm-adapt, MINI_DEVICE=cuda) it is a real experiment: see
# docs/real-setting.md.
# Environment: DATA (default: ../shared/data beside the repository), REAL_TRAIN (training
# rows per held-in task, default 2000), REAL_HELDOUT (rows per held-out task before
# templates, default 0 = all), and everything bench/mini-t0/run.sh reads.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -z "${GAGGLE:-}" ]; then
  if command -v gaggle >/dev/null 2>&1; then GAGGLE=gaggle; else GAGGLE="$root/build/gaggle"; fi
fi
export GAGGLE
DATA="${DATA:-$root/../shared/data}"
RUN="${1:-mini-t0-real}"
N="${REAL_TRAIN:-2000}"
HO="${REAL_HELDOUT:-0}"
for f in classic/sst2/train.txt classic/sst2/dev.txt classic/trec/train.txt classic/trec/test.txt \
  classic/agnews/test.csv superglue/boolq/val.jsonl superglue/boolq/train.jsonl; do
  [ -f "$DATA/$f" ] || { echo "real.sh: missing $DATA/$f (set DATA to the shared data folder)" >&2; exit 1; }
done
mkdir -p "$RUN"
RUN="$(cd "$RUN" && pwd)"
T="$RUN/tasks"

if [ ! -f "$T/suite.json" ]; then
  echo "==> converting the real data into task JSONL ($T)" >&2
  rm -rf "$T" "$RUN/convert"
  mkdir -p "$T/train" "$T/validation" "$T/heldout" "$RUN/convert"
  cv() { "$GAGGLE" debug convert "$@"; }
  # Held-in: one template per row for training; validation files keep choices + label.
  cv --from sst2 "$DATA/classic/sst2/train.txt" --out "$T/train" --templates rotate --limit "$N"
  cv --from sst2 "$DATA/classic/sst2/dev.txt" --out "$T/validation" --templates rotate --limit 200
  cv --from trec "$DATA/classic/trec/train.txt" --out "$RUN/convert/trec" --templates rotate
  head -n "$N" "$RUN/convert/trec/trec.jsonl" >"$T/train/trec.jsonl"
  cv --from trec "$DATA/classic/trec/test.txt" --out "$T/validation" --templates rotate --limit 200
  # AG News ships only its test split: its first rows train, its last 200 validate.
  cv --from agnews "$DATA/classic/agnews/test.csv" --out "$RUN/convert/agnews" --templates rotate
  head -n "$N" "$RUN/convert/agnews/agnews.jsonl" >"$T/train/agnews.jsonl"
  tail -n 200 "$RUN/convert/agnews/agnews.jsonl" >"$T/validation/agnews.jsonl"
  # BoolQ: the 3,270-row validation set trains (BoolQ is held-in here), the 32-row train set validates.
  cv --from superglue-boolq "$DATA/superglue/boolq/val.jsonl" --out "$T/train" --templates rotate --limit "$N"
  cv --from superglue-boolq "$DATA/superglue/boolq/train.jsonl" --out "$T/validation" --templates rotate
  # Held-out: the SuperGLUE validation sets, every template on every row.
  for t in cb copa rte wic wsc; do
    cv --from "superglue-$t" "$DATA/superglue/$t/val.jsonl" --out "$T/heldout" --templates all --limit "$HO"
  done
  jq -n '{generator: "bench/mini-t0/real.sh",
          held_in: [("sst2","trec","agnews","boolq") | {name: .}],
          held_out: [("cb","copa","rte","wic","wsc") | {name: .}]}' >"$T/suite.json"
fi

TASKS_DIR="$T" "$root/bench/mini-t0/run.sh" "$RUN"

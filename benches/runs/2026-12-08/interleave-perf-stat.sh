#!/bin/bash
# Interleaved perf stat -e task-clock of commands (interleaved-slice-*.txt).
# usage: inter.sh ROUNDS name=cmd...
rounds=$1; shift
for i in $(seq $rounds); do
  for spec in "$@"; do
    name=${spec%%=*}; cmd=${spec#*=}
    ms=$(perf stat -x, -e task-clock $cmd 2>&1 >/dev/null | grep task-clock | cut -d, -f1)
    echo "$name $ms"
  done
done

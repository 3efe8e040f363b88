#!/usr/bin/env bash
# Multi-process tensor parallelism on the host (docs/tensor_parallel.md "Multi-node"): the ranks
# of a --tp N artifact as N processes of ds-run on this machine, joined over TCP the way mpirun /
# torchrun start them (DS_WORLD_SIZE, DS_RANK, MASTER_ADDR, MASTER_PORT). The leader's greedy
# tokens must equal the single-process run's (the collectives add in the same rank order), every
# follower must exit 0, and a world that does not divide the ranks is refused by every process.
set -u
ds_run="$1"; art="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# run <artifact> <processes> <out>: the leader's stdout in <out>; exit codes in <out>.rc.
run() {
  local a="$1" n="$2" out="$3" p; p=$(port)
  local pids=()
  for ((r = n - 1; r >= 1; r--)); do
    DS_WORLD_SIZE=$n DS_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$p DS_WORLD_TIMEOUT_S=60 \
      "$ds_run" "$a" -p "ignored by followers" -n 2 --ids > "$out.f$r" 2> "$out.f$r.err" &
    pids+=($!)
  done
  DS_WORLD_SIZE=$n DS_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p DS_WORLD_TIMEOUT_S=60 \
    "$ds_run" "$a" -p "Once upon a time" -p "Lily and Tom" -p "" -n 24 --ids > "$out" 2> "$out.err"
  local rc=$?
  local codes="$rc"
  for pid in "${pids[@]}"; do wait "$pid"; codes="$codes $?"; done
  echo "$codes" > "$out.rc"
}

for spec in stories260K.tp2:2 stories260K.tp4:4 tiny-deepseek-v3.tp2:2 tiny-deepseek-v3-fp8.tp4ep4:4 tiny-llama.tp2:2; do
  name="${spec%%:*}"; n="${spec##*:}"; a="$art/$name.dsa"
  [ -f "$a" ] || { echo "SKIP $name: $a not built"; continue; }
  "$ds_run" "$a" -p "Once upon a time" -p "Lily and Tom" -p "" -n 24 --ids > "$tmp/$name.single" 2> "$tmp/$name.single.err" \
    || { echo "FAIL $name: single-process run: $(cat "$tmp/$name.single.err")"; fail=1; continue; }
  run "$a" "$n" "$tmp/$name.multi"
  if [ "$(cat "$tmp/$name.multi.rc")" != "$(printf '0%.0s ' $(seq "$n") | sed 's/ $//')" ]; then
    echo "FAIL $name over $n processes: exit codes $(cat "$tmp/$name.multi.rc")"; cat "$tmp/$name.multi.err" "$tmp/$name.multi".f*.err; fail=1
  elif ! cmp -s "$tmp/$name.single" "$tmp/$name.multi"; then
    echo "FAIL $name over $n processes: tokens differ"; diff "$tmp/$name.single" "$tmp/$name.multi" | head; fail=1
  elif [ -s "$tmp/$name.multi.f1" ]; then
    echo "FAIL $name: a follower printed tokens"; fail=1
  else
    echo "ok   $name over $n processes: $(wc -l < "$tmp/$name.single") sequences, same tokens"
  fi
done

# The same under OpenMPI's mpirun (Debian's openmpi-bin; its OMPI_COMM_WORLD_* variables).
a="$art/stories260K.tp2.dsa"
if command -v mpirun > /dev/null && [ -f "$a" ]; then
  [ "$(id -u)" -eq 0 ] && root="--allow-run-as-root" || root=""
  timeout 120 mpirun $root --oversubscribe -np 2 -x MASTER_ADDR=127.0.0.1 -x MASTER_PORT="$(port)" \
    "$ds_run" "$a" -p "Once upon a time" -p "Lily and Tom" -p "" -n 24 --ids > "$tmp/mpi" 2> "$tmp/mpi.err"
  rc=$?
  if [ $rc -ne 0 ] || ! cmp -s "$tmp/stories260K.tp2.single" "$tmp/mpi"; then
    echo "FAIL mpirun -np 2: exit $rc, tokens $(cmp -s "$tmp/stories260K.tp2.single" "$tmp/mpi" && echo same || echo differ)"
    cat "$tmp/mpi.err"; fail=1
  else
    echo "ok   stories260K.tp2 under mpirun -np 2: same tokens"
  fi
else
  echo "SKIP mpirun: not installed (scripts/setup.sh installs openmpi-bin)"
fi

# A tp 1 run inside someone else's job (an sbatch script: SLURM_NTASKS) stays one process.
a="$art/stories260K.dsa"
if [ -f "$a" ]; then
  if SLURM_NTASKS=4 SLURM_PROCID=0 "$ds_run" "$a" -p "Once upon a time" -n 8 --ids > "$tmp/slurm" 2> "$tmp/slurm.err"; then
    echo "ok   a tp 1 artifact under SLURM_NTASKS=4 runs as one process"
  else
    echo "FAIL a tp 1 artifact under SLURM_NTASKS=4: $(cat "$tmp/slurm.err")"; fail=1
  fi
fi

# A follower given another artifact is refused and the leader says its follower did not start.
a="$art/stories260K.tp2.dsa"; b="$art/tiny-llama.tp2.dsa"
if [ -f "$a" ] && [ -f "$b" ]; then
  p=$(port)
  DS_WORLD_SIZE=2 DS_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p DS_WORLD_TIMEOUT_S=60 \
    "$ds_run" "$b" -p "x" -n 2 --ids > /dev/null 2> "$tmp/other.f.err" &
  pid=$!
  DS_WORLD_SIZE=2 DS_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p DS_WORLD_TIMEOUT_S=60 \
    "$ds_run" "$a" -p "Once" -n 4 --ids > /dev/null 2> "$tmp/other.err"
  rc=$?; wait $pid; frc=$?
  if [ $rc -ne 0 ] && [ $frc -ne 0 ] && grep -q "runs another artifact" "$tmp/other.f.err" &&
     grep -q "follower process 1 runs another artifact" "$tmp/other.err"; then
    echo "ok   a follower with another artifact refused; the leader names it"
  else
    echo "FAIL another artifact: exit codes $rc $frc: $(cat "$tmp/other.err" "$tmp/other.f.err")"; fail=1
  fi
fi

# Three processes for two ranks: refused by every process, naming the counts.
a="$art/stories260K.tp2.dsa"
if [ -f "$a" ]; then
  run "$a" 3 "$tmp/bad"
  codes=$(cat "$tmp/bad.rc")
  if [ "$codes" != "1 1 1" ] || ! grep -q "2 tensor-parallel ranks do not divide over 3 processes" "$tmp/bad.err"; then
    echo "FAIL 3 processes for --tp 2: exit codes $codes: $(cat "$tmp/bad.err")"; fail=1
  else
    echo "ok   3 processes for --tp 2 refused by every process"
  fi
fi
exit $fail

# The cases of slurm_test.sh (sourced by it: uses its sbatch_worker, wait_workers, submit,
# wait_sweep, trial_json, fail, $dir, $src).

# spec NAME EPOCHS TRAIN_IMAGES NODES: a one-trial LeNet-5 2/4 sweep on Fashion-MNIST, on the
# CPU; a multi-node one takes one device slot per node (workers --gpus 1), as gangs need GPUs.
spec() {
  cat >"$dir/$1.yaml" <<YAML
name: $1
dataset: {kind: fashion_mnist, train_subset: $3, test_subset: 256, augment: false}
axes: {network: lenet5, width: [1], precision: ["2/4"], seed: [0]}
recipe: {device: cpu, epochs: $2, batch_size: 64, optimizer: sgd, lr: 0.05, momentum: 0.9, nesterov: true,
         weight_decay: 5.0e-4, schedule: cosine, num_workers: 1, threads: 1}
resources: {gpus_per_node: $(($4 > 1 ? 1 : 0)), nodes: $4}
max_attempts: 3
YAML
  echo "$dir/$1.yaml"
}
first_trial() { wrpn -o json trial list "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])'; }
# field TRIAL EXPR: a Python expression over t (GetTrialResponse as JSON).
field() { trial_json "$1" | python3 -c "import json, sys; t = json.load(sys.stdin); print($2)"; }
job_state() {  # the final state Slurm recorded for a job (jobcomp/filetxt)
  grep -o "JobId=$1 .*" "$dir/cluster/jobcomp.txt" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | tail -n 1
}
wait_job_end() {
  local end=$((SECONDS + $2))
  while ((SECONDS < end)); do
    [[ -z "$(squeue --noheader --jobs="$1" 2>/dev/null)" ]] && return 0
    sleep 0.2
  done
  squeue; fail "job $1 still in the queue after $2 s"
}

case_array() {
  job=$(sbatch_worker --array=0-1 --time=30 --)
  wait_workers 2
  wrpn worker list
  names=$(wrpn -o json worker list | python3 -c '
import json, sys
print(" ".join(sorted(w["name"] for w in json.load(sys.stdin))))')
  [[ "$names" == "slurm-${job}_0-n"[12]" slurm-${job}_1-n"[12] ]] ||
    fail "workers are not named after the array tasks and nodes: '$names'"
  id=$(submit "$src/examples/sweeps/ci-tiny.yaml")
  wait_sweep "$id" 240
  used=$(wrpn -o json trial list "$id" | python3 -c '
import json, sys
print(sum(1 for t in json.load(sys.stdin) if t["state"] == "TRIAL_SUCCEEDED"))')
  [[ "$used" == 2 ]] || fail "expected 2 succeeded trials, got $used"
}

# The final metrics of a trial that must not depend on how its ranks were started.
results() {
  trial_json "$1" | python3 -c '
import json, sys
t = json.load(sys.stdin)
keep = {m["name"]: m["value"] for m in t.get("last_metrics", [])
        if m["name"] in ("top1", "top5", "test_loss", "train_loss", "loss")}
print(json.dumps({"final_top1": t["trial"].get("final_top1"), "final_top5": t["trial"].get("final_top5"),
                  **keep}, sort_keys=True))'
}

case_gang() {
  s=$(spec gang 1 1024 2)
  # Two workers, one per node (mode node): the trial as a gang of two agents.
  job=$(GPUS=1 sbatch_worker --nodes=2 --time=30 --)
  wait_workers 2
  id=$(submit "$s"); t=$(first_trial "$id")
  wait_sweep "$id" 240
  two_agents=$(results "$t")
  workers=$(field "$t" 'len(t["attempts"][-1]["worker_ids"])')
  [[ "$workers" == 2 ]] || fail "mode node: attempt leased to $workers workers, expected 2"
  scancel "$job"; wait_job_end "$job" 60
  # One worker for the two-node allocation (mode step): the gang is one srun -N2 step. (It takes
  # the gang alone, so the two workers above, gone but not yet lost, do not matter.)
  job2=$(GPUS=1 WRPN_SLURM_MODE=step sbatch_worker --nodes=2 --time=30 --)
  wait_workers 3
  id2=$(submit "$s"); t2=$(first_trial "$id2")
  wait_sweep "$id2" 240
  one_step=$(results "$t2")
  workers=$(field "$t2" 'len(t["attempts"][-1]["worker_ids"])')
  [[ "$workers" == 1 ]] || fail "mode step: attempt leased to $workers workers, expected 1"
  wrpn trial logs "$t2" | grep -q "1: " || fail "no log line from task 1 of the srun step"
  echo "two agents:    $two_agents"
  echo "one srun step: $one_step"
  [[ "$one_step" == *final_top1* && "$one_step" != *'"final_top1": null'* ]] || fail "no result"
  [[ "$one_step" == "$two_agents" ]] || fail "the srun step and the two agents disagree"
}

case_scancel() {
  s=$(spec scancel 6 2048 1)
  job=$(sbatch_worker --array=0-1 --time=30 --)
  wait_workers 2
  id=$(submit "$s"); t=$(first_trial "$id")
  end=$((SECONDS + 120))
  while ((SECONDS < end)); do
    [[ $(field "$t" 't["trial"].get("checkpoint_epoch", 0)') -ge 1 ]] && break
    sleep 0.3
  done
  [[ $(field "$t" 't["trial"].get("checkpoint_epoch", 0)') -ge 1 ]] || fail "no checkpoint within 120 s"
  w=$(field "$t" 't["attempts"][-1]["worker_ids"][0]')
  victim=$(wrpn -o json worker list | python3 -c "
import json, sys
print([x['labels']['slurm.job_id'] for x in json.load(sys.stdin) if x['id'] == '$w'][0])")
  echo "trial $t runs on worker $w (job $victim): scancel"
  scancel "$victim"
  wait_job_end "$victim" 60
  wait_sweep "$id" 300
  field "$t" 'json.dumps(t["attempts"], indent=1)'
  [[ $(field "$t" 'len(t["attempts"])') -ge 2 ]] || fail "the trial did not get a second attempt"
  [[ $(field "$t" 't["attempts"][0].get("reason", "")') == interrupted* ]] ||
    fail "attempt 1 was not reported as interrupted"
  [[ $(field "$t" 't["attempts"][1]["worker_ids"][0]') != "$w" ]] || fail "attempt 2 ran on the cancelled worker"
  [[ -n $(field "$t" 't["attempts"][1].get("resume_checkpoint", "")') ]] ||
    fail "attempt 2 did not resume from a checkpoint"
}

case_timelimit() {
  s=$(spec timelimit 40 4096 1)
  id=$(submit "$s"); t=$(first_trial "$id")
  # Time limit 2 min, end-of-time signal 100 s before: Slurm sends it within ~20 s of the start.
  job=$(sbatch_worker --time=2 --signal=B:TERM@100 --)
  wait_job_end "$job" 100
  cat "$dir/jobs/"*"-${job}_"*.out | tail -n 20
  state=$(job_state "$job")
  [[ "$state" == JobState=COMPLETED ]] || fail "the worker job ended as '$state', not COMPLETED before its time limit"
  grep -q "end of the time limit near" "$dir/jobs/"*"-${job}_"*.out || fail "the script did not see the end-of-time signal"
  grep -q "draining" "$dir/jobs/"*"-${job}_"*.out || fail "the worker did not drain"
  field "$t" 'json.dumps({"trial": {k: t["trial"].get(k) for k in ("state", "checkpoint_path", "checkpoint_epoch")}, "attempts": t["attempts"]}, indent=1)'
  [[ $(field "$t" 't["trial"]["state"]') == TRIAL_QUEUED ]] || fail "the trial is not queued again"
  [[ $(field "$t" 't["attempts"][0].get("reason", "")') == interrupted* ]] || fail "attempt 1 was not reported as interrupted"
  [[ -n $(field "$t" 't["trial"].get("checkpoint_path", "")') ]] || fail "no checkpoint kept for the next attempt"
  running=$(wrpn -o json worker list | python3 -c '
import json, sys
print(sum(len(w.get("running_trials", [])) for w in json.load(sys.stdin)))')
  [[ "$running" == 0 ]] || fail "a worker still holds the lease"
}

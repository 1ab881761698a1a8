#include "server/record_proto.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "common/gpu_share.h"

namespace wrpn::server {

pb::SweepState SweepStateOf(const SweepRecord& rec, const TrialCounts& c) {
  const int64_t queued = c[static_cast<int>(TrialState::kQueued)];
  const int64_t running = c[static_cast<int>(TrialState::kRunning)];
  if (rec.cancelled && queued + running == 0) return pb::SWEEP_CANCELLED;
  if (queued + running > 0) return queued == rec.trial_count ? pb::SWEEP_QUEUED : pb::SWEEP_RUNNING;
  if (c[static_cast<int>(TrialState::kFailed)] + c[static_cast<int>(TrialState::kCancelled)] > 0)
    return pb::SWEEP_FAILED;
  return pb::SWEEP_SUCCEEDED;
}

bool SweepFinished(pb::SweepState s) {
  return s == pb::SWEEP_SUCCEEDED || s == pb::SWEEP_FAILED || s == pb::SWEEP_CANCELLED;
}

pb::Sweep SweepMessage(const SweepRecord& rec, const TrialCounts& counts, bool with_spec) {
  pb::Sweep m;
  m.set_id(rec.id);
  m.set_name(rec.name);
  m.set_state(SweepStateOf(rec, counts));
  m.set_priority(rec.priority);
  m.set_max_attempts(rec.max_attempts);
  m.set_created_ms(rec.created_ms);
  auto* c = m.mutable_counts();
  c->set_queued(counts[1]);
  c->set_running(counts[2]);
  c->set_succeeded(counts[3]);
  c->set_failed(counts[4]);
  c->set_cancelled(counts[5]);
  c->set_pruned(counts[static_cast<int>(TrialState::kPruned)]);
  c->set_total(rec.trial_count);
  if (with_spec) {
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = true;
    (void)google::protobuf::util::JsonStringToMessage(rec.spec_json, m.mutable_spec(), opts);
  }
  return m;
}

pb::Trial TrialMessage(const TrialRecord& t) {
  pb::Trial m;
  m.set_id(t.id);
  m.set_sweep_id(t.sweep_id);
  m.set_index(t.index);
  m.set_network(t.network);
  m.set_width(t.width);
  m.set_wbits(t.wbits);
  m.set_abits(t.abits);
  m.set_seed(t.seed);
  m.set_state(static_cast<pb::TrialState>(t.state));
  m.set_attempts(t.attempts);
  m.set_error(t.error);
  m.set_checkpoint_path(t.checkpoint_path);
  m.set_checkpoint_epoch(t.checkpoint_epoch);
  if (t.best_top1) m.set_best_top1(*t.best_top1);
  if (t.final_top1) m.set_final_top1(*t.final_top1);
  if (t.final_top5) m.set_final_top5(*t.final_top5);
  if (t.images_per_sec) m.set_images_per_sec(*t.images_per_sec);
  m.set_cost_uniform(t.cost_uniform);
  m.set_cost_first_last_fp32(t.cost_first_last_fp32);
  m.set_queued_ms(t.queued_ms);
  m.set_started_ms(t.started_ms);
  m.set_finished_ms(t.finished_ms);
  m.set_trial_config_json(t.config_json);
  m.set_gpu_share(ShareOf(t.gpu_share_units));
  m.set_gpu_memory_bytes(t.gpu_memory_bytes);
  m.set_gpus_per_node(t.gpus_per_node);
  m.set_nodes(t.nodes);
  m.set_scheme(t.scheme);
  if (t.pruned_top1) {
    m.set_pruned_top1(*t.pruned_top1);
    m.set_pruned_epoch(t.pruned_epoch);
  }
  return m;
}

pb::Attempt AttemptMessage(const AttemptRecord& a) {
  pb::Attempt m;
  m.set_attempt(a.attempt);
  m.set_outcome(static_cast<pb::AttemptOutcome>(a.outcome));
  m.set_fencing_token(a.fencing_token);
  for (const auto& w : a.worker_ids) m.add_worker_ids(w);
  m.set_started_ms(a.started_ms);
  m.set_ended_ms(a.ended_ms);
  m.set_reason(a.reason);
  m.set_resume_checkpoint(a.resume_checkpoint);
  if (a.failure_kind) m.set_failure_kind(static_cast<pb::FailureKind>(*a.failure_kind));
  return m;
}

pb::MetricValue MetricValueMessage(const MetricRecord& p) {
  pb::MetricValue v;
  v.set_name(p.name);
  v.set_step(p.step);
  v.set_value(p.value);
  v.set_wall_ms(p.wall_ms);
  return v;
}

pb::TrialEvent EventMessage(const EventRecord& e) {
  pb::TrialEvent m;
  m.set_seq(e.seq);
  m.set_sweep_id(e.sweep_id);
  m.set_trial_id(e.trial_id);
  m.set_state(static_cast<pb::TrialState>(e.state));
  m.set_attempt(e.attempt);
  m.set_message(e.message);
  m.set_time_ms(e.time_ms);
  return m;
}

const char* WorkerStateName(const WorkerRecord& w) {
  return w.lost ? "lost" : w.draining ? "draining" : "alive";
}

pb::Worker WorkerMessage(const WorkerRecord& w, const WorkerSlots& used,
                         const std::set<int64_t>& running_trials) {
  pb::Worker m;
  m.set_id(w.id);
  m.set_name(w.name);
  m.set_address(w.address);
  for (const GpuRecord& g : w.gpus) {
    pb::Gpu* gm = m.add_gpus();
    gm->set_index(g.index);
    gm->set_memory_bytes(g.memory_bytes);
    gm->set_name(g.name);
  }
  m.set_cpus(w.cpus);
  for (const auto& [k, v] : w.labels) (*m.mutable_labels())[k] = v;
  m.set_state(WorkerStateName(w));
  m.set_registered_ms(w.registered_ms);
  m.set_last_heartbeat_ms(w.last_heartbeat_ms);
  m.set_free_gpus(std::max(0, static_cast<int>(w.gpus.size()) - used.gpus));
  for (int64_t t : running_trials) m.add_running_trials(t);
  return m;
}

pb::WorkerCommand LeaseCommand(pb::WorkerCommand::Kind kind, const pb::LeaseRef& lease,
                               int64_t trial_id, const std::string& reason) {
  pb::WorkerCommand c;
  c.set_kind(kind);
  *c.mutable_lease() = lease;
  c.set_trial_id(trial_id);
  c.set_reason(reason);
  return c;
}

WorkerRecord WorkerRecordOf(const pb::RegisterWorkerRequest& req) {
  WorkerRecord w;
  w.name = req.name();
  w.address = req.address();
  for (const auto& g : req.gpus()) w.gpus.push_back({g.index(), g.memory_bytes(), g.name()});
  w.cpus = req.cpus();
  w.max_cpu_trials = req.max_cpu_trials() == 0 ? 1 : req.max_cpu_trials();
  for (const auto& [k, v] : req.labels()) w.labels[k] = v;
  return w;
}

pb::Lease LeaseMessage(const LeaseEntry& l, const LeaseContext& ctx) {
  const TrialRecord& t = ctx.trial;
  const AttemptRecord& a = ctx.attempt;
  pb::Lease m;
  m.set_lease_id(l.lease_id);
  m.set_fencing_token(l.token);
  m.set_trial_id(t.id);
  m.set_sweep_id(t.sweep_id);
  m.set_attempt(l.attempt);
  m.set_trial_config_json(t.config_json);
  m.set_resume_checkpoint(a.resume_checkpoint);
  m.set_resume_epoch(a.resume_epoch);
  m.set_gpus_per_node(t.gpus_per_node);
  m.set_lease_ttl_ms(ctx.lease_ttl_ms);
  m.set_gpu_share(ShareOf(t.gpu_share_units));
  m.set_gpu_memory_bytes(t.gpu_memory_bytes);
  for (int s : l.gpu_slots) m.add_gpu_slots(s);
  m.set_init_checkpoint(ctx.init_checkpoint);
  m.set_keep_checkpoint(ctx.keep_checkpoint);
  m.set_stop_at_epoch(ctx.stop_at_epoch);
  if (t.nodes > 1) {
    pb::Rendezvous* r = m.mutable_rendezvous();
    r->set_master_addr(ctx.master_addr);
    // 0 for rank 0 itself (it picks the port); the others are handed their lease only once
    // rank 0 has reported it.
    r->set_master_port(ctx.master_port);
    r->set_node_rank(l.rank);
    r->set_nnodes(t.nodes);
    r->set_nproc_per_node(t.gpus_per_node);
    r->set_world_size(t.nodes * t.gpus_per_node);
    for (const auto& w : a.worker_ids) r->add_worker_ids(w);
    r->set_single_step(a.worker_ids.size() == 1);
  }
  return m;
}

}  // namespace wrpn::server

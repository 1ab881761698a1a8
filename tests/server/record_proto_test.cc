// Record <-> message converters.
#include "server/record_proto.h"

#include <gtest/gtest.h>

#include "common/sweep_spec.h"

namespace wrpn::server {
namespace {

TrialCounts Counts(int64_t queued, int64_t running, int64_t ok, int64_t failed,
                   int64_t cancelled) {
  return {0, queued, running, ok, failed, cancelled};
}

TEST(RecordProto, SweepStateFromCounts) {
  SweepRecord s;
  s.trial_count = 4;
  EXPECT_EQ(SweepStateOf(s, Counts(4, 0, 0, 0, 0)), pb::SWEEP_QUEUED);
  EXPECT_EQ(SweepStateOf(s, Counts(3, 1, 0, 0, 0)), pb::SWEEP_RUNNING);
  EXPECT_EQ(SweepStateOf(s, Counts(2, 0, 2, 0, 0)), pb::SWEEP_RUNNING) << "started, one waits";
  EXPECT_EQ(SweepStateOf(s, Counts(0, 0, 4, 0, 0)), pb::SWEEP_SUCCEEDED);
  EXPECT_EQ(SweepStateOf(s, Counts(0, 0, 3, 1, 0)), pb::SWEEP_FAILED);
  s.cancelled = true;
  EXPECT_EQ(SweepStateOf(s, Counts(0, 0, 3, 0, 1)), pb::SWEEP_CANCELLED);
  EXPECT_EQ(SweepStateOf(s, Counts(0, 1, 3, 0, 0)), pb::SWEEP_RUNNING) << "still stopping";
  EXPECT_TRUE(SweepFinished(pb::SWEEP_CANCELLED));
  EXPECT_FALSE(SweepFinished(pb::SWEEP_RUNNING));
}

TEST(RecordProto, SweepMessageCarriesCountsAndTheSpec) {
  SweepRecord s;
  s.id = 3;
  s.name = "quick";
  s.priority = 2;
  s.trial_count = 5;
  s.spec_json = R"({"name": "quick", "max_attempts": 4, "unknown_later_field": 1})";
  pb::Sweep m = SweepMessage(s, Counts(1, 1, 2, 1, 0), true);
  EXPECT_EQ(m.id(), 3);
  EXPECT_EQ(m.counts().queued(), 1);
  EXPECT_EQ(m.counts().succeeded(), 2);
  EXPECT_EQ(m.counts().total(), 5);
  EXPECT_EQ(m.state(), pb::SWEEP_RUNNING);
  EXPECT_EQ(m.spec().name(), "quick");
  EXPECT_EQ(m.spec().max_attempts(), 4);
  EXPECT_FALSE(SweepMessage(s, Counts(1, 1, 2, 1, 0), false).has_spec());
}

// A pareto spec's canonical JSON (common/search_spec.h) comes back in GetSweep's spec.
TEST(RecordProto, SweepMessageCarriesTheSearchSection) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(
      "name: p\naxes: {network: lenet5, width: [1], precision: [\"4/4\"]}\n"
      "search: {mode: pareto, rungs: [2, 5], quorum: 0.5}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  SweepRecord s;
  s.id = 4;
  s.spec_json = SweepSpecToJson(*spec).dump();
  const pb::Sweep m = SweepMessage(s, Counts(1, 0, 0, 0, 0), true);
  ASSERT_TRUE(m.spec().has_search());
  EXPECT_EQ(m.spec().search().mode(), "pareto");
  EXPECT_EQ(std::vector<int>(m.spec().search().rungs().begin(), m.spec().search().rungs().end()),
            (std::vector<int>{2, 5}));
  EXPECT_EQ(m.spec().search().margin().string_value(), "auto");
  EXPECT_EQ(m.spec().search().quorum(), 0.5);
  EXPECT_EQ(m.spec().search().rung_timeout(), kDefaultRungTimeoutSeconds);
}

TEST(RecordProto, TrialMessageKeepsUnsetResultsUnset) {
  TrialRecord t;
  t.id = 7;
  t.network = "lenet5";
  t.width = 2;
  t.wbits = 4;
  t.state = TrialState::kSucceeded;
  t.final_top1 = 98.5;
  t.gpus_per_node = 1;
  pb::Trial m = TrialMessage(t);
  EXPECT_EQ(m.id(), 7);
  EXPECT_EQ(m.state(), pb::TRIAL_SUCCEEDED);
  EXPECT_EQ(m.wbits(), 4);
  EXPECT_TRUE(m.has_final_top1());
  EXPECT_DOUBLE_EQ(m.final_top1(), 98.5);
  EXPECT_FALSE(m.has_final_top5());
  EXPECT_FALSE(m.has_best_top1());
  EXPECT_EQ(m.gpus_per_node(), 1);
}

TEST(RecordProto, AttemptAndEventMessages) {
  AttemptRecord a;
  a.attempt = 2;
  a.outcome = AttemptOutcome::kFailed;
  a.worker_ids = {"w-1", "w-2"};
  a.reason = "rendezvous: rank 1 never arrived";
  a.failure_kind = FailureKind::kRendezvous;
  pb::Attempt m = AttemptMessage(a);
  EXPECT_EQ(m.outcome(), pb::ATTEMPT_FAILED);
  EXPECT_EQ(m.worker_ids_size(), 2);
  EXPECT_EQ(m.failure_kind(), pb::FAILURE_KIND_RENDEZVOUS);
  a.failure_kind.reset();
  EXPECT_EQ(AttemptMessage(a).failure_kind(), pb::FAILURE_KIND_UNSPECIFIED);
  pb::TrialEvent e = EventMessage({5, 1000, 1, 2, 3, 1, "done"});
  EXPECT_EQ(e.seq(), 5);
  EXPECT_EQ(e.state(), pb::TRIAL_SUCCEEDED);
  EXPECT_EQ(e.message(), "done");
}

TEST(RecordProto, WorkerRoundTrip) {
  pb::RegisterWorkerRequest req;
  req.set_name("gpu-node");
  req.set_address("10.0.0.2");
  auto* g = req.add_gpus();
  g->set_index(0);
  g->set_memory_bytes(80);
  req.add_gpus()->set_index(1);
  (*req.mutable_labels())["zone"] = "a";
  WorkerRecord w = WorkerRecordOf(req);
  EXPECT_EQ(w.max_cpu_trials, 1) << "0 means one";
  ASSERT_EQ(w.gpus.size(), 2u);
  EXPECT_EQ(w.gpus[0].memory_bytes, 80);
  w.id = "w-1";
  pb::Worker m = WorkerMessage(w, WorkerSlots{1, 0}, {4, 9});
  EXPECT_EQ(m.state(), "alive");
  EXPECT_EQ(m.free_gpus(), 1);
  EXPECT_EQ(m.labels().at("zone"), "a");
  ASSERT_EQ(m.running_trials_size(), 2);
  EXPECT_EQ(m.running_trials(1), 9);
  w.draining = true;
  EXPECT_STREQ(WorkerStateName(w), "draining");
  w.lost = true;
  EXPECT_STREQ(WorkerStateName(w), "lost");
}

TEST(RecordProto, LeaseMessageOfAGang) {
  TrialRecord t;
  t.id = 4;
  t.sweep_id = 1;
  t.nodes = 2;
  t.gpus_per_node = 4;
  t.config_json = "{}";
  AttemptRecord a;
  a.worker_ids = {"w-1", "w-2"};
  a.resume_checkpoint = "/ckpt/3.pt";
  a.resume_epoch = 3;
  LeaseEntry l;
  l.lease_id = "l-9-1";
  l.token = 9;
  l.rank = 1;
  l.attempt = 2;
  pb::Lease m = LeaseMessage(l, LeaseContext{t, a, "node-a", 41234, 30000});
  EXPECT_EQ(m.lease_id(), "l-9-1");
  EXPECT_EQ(m.resume_epoch(), 3);
  EXPECT_EQ(m.lease_ttl_ms(), 30000);
  EXPECT_EQ(m.rendezvous().master_addr(), "node-a");
  EXPECT_EQ(m.rendezvous().master_port(), 41234);
  EXPECT_EQ(m.rendezvous().node_rank(), 1);
  EXPECT_EQ(m.rendezvous().world_size(), 8);
  EXPECT_FALSE(m.rendezvous().single_step());
  t.nodes = 1;
  EXPECT_FALSE(LeaseMessage(l, LeaseContext{t, a, "", 0, 30000}).has_rendezvous());
}

TEST(RecordProto, LeaseCommand) {
  pb::LeaseRef ref;
  ref.set_lease_id("l-1-0");
  ref.set_fencing_token(1);
  pb::WorkerCommand c = LeaseCommand(pb::WorkerCommand::CANCEL_TRIAL, ref, 3, "sweep cancelled");
  EXPECT_EQ(c.kind(), pb::WorkerCommand::CANCEL_TRIAL);
  EXPECT_EQ(c.lease().lease_id(), "l-1-0");
  EXPECT_EQ(c.trial_id(), 3);
  EXPECT_EQ(c.reason(), "sweep cancelled");
}

}  // namespace
}  // namespace wrpn::server

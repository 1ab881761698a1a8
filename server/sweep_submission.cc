#include "server/sweep_submission.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <map>
#include <string>
#include <tuple>

#include "common/network_report.h"
#include "common/network_spec.h"
#include "common/quant_scheme.h"
#include "nlohmann/json.hpp"
#include "server/init_dependencies.h"

namespace wrpn::server {
namespace {

using CostKey = std::tuple<std::string, double, int, int>;

// The cost with the dataset's real input shape (the spec has one dataset), once per cell.
const CostReport& CostOf(const SweepSpec& spec, const TrialPoint& p,
                         std::map<CostKey, CostReport>& costs) {
  auto key = std::make_tuple(p.network, p.width, p.wbits, p.abits);
  auto it = costs.find(key);
  if (it == costs.end()) {
    auto c = TrialCost(MakeTrialConfig(spec, p));
    it = costs.emplace(key, c.ok() ? *c : CostReport{}).first;
  }
  return it->second;
}

// The spec's points, then the FP32 points init_from: fp32 adds.
std::vector<TrialPoint> PlannedPoints(const SweepSpec& spec) {
  std::vector<TrialPoint> points = ExpandSweep(spec);
  for (TrialPoint& p : MissingFp32Points(spec, points)) points.push_back(std::move(p));
  return points;
}

}  // namespace

absl::StatusOr<SweepSpec> ParseSpecOf(const pb::SubmitSweepRequest& req) {
  if (req.has_spec()) {
    std::string text;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    auto st = google::protobuf::util::MessageToJsonString(req.spec(), &text, opts);
    if (!st.ok()) return absl::InvalidArgumentError(std::string(st.message()));
    return SweepSpecFromJson(nlohmann::json::parse(text));
  }
  if (req.source_case() == pb::SubmitSweepRequest::kSpecText) {
    return ParseSweepSpec(req.spec_text());
  }
  return absl::InvalidArgumentError("spec: give spec or spec_text");
}

int64_t PlannedTrialCount(const SweepSpec& spec) {
  if (spec.base.init_from != kInitFromFp32) return CountTrials(spec);
  return static_cast<int64_t>(PlannedPoints(spec).size());
}


PlannedSweep PlanSweep(const SweepSpec& spec) {
  const std::vector<TrialPoint> points = PlannedPoints(spec);
  std::map<CostKey, CostReport> costs;
  PlannedSweep out;
  out.trials.reserve(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    const TrialPoint& p = points[i];
    TrialRecord t;
    t.index = static_cast<int64_t>(i);
    t.network = p.network;
    t.width = p.width;
    t.wbits = p.wbits;
    t.abits = p.abits;
    t.seed = p.seed;
    t.scheme = p.scheme;
    t.config_json = TrialConfigJson(spec, p).dump();
    t.gpus_per_node = spec.resources.gpus_per_node;
    t.nodes = spec.resources.nodes;
    t.gpu_share_units = spec.resources.gpu_amount().share_units();
    t.gpu_memory_bytes = static_cast<int64_t>(std::llround(spec.resources.gpu_memory_gb * (1LL << 30)));
    const CostReport& c = CostOf(spec, p, costs);
    t.fma_ratio = c.fma_ratio;
    t.cost_uniform = c.cost_uniform;
    t.cost_first_last_fp32 = c.cost_first_last_fp32;
    out.trials.push_back(std::move(t));
  }
  out.sweep.name = spec.name;
  out.sweep.spec_json = SweepSpecToJson(spec).dump();
  out.sweep.priority = spec.priority;
  out.sweep.max_attempts = spec.max_attempts;
  out.sweep.trial_count = static_cast<int64_t>(points.size());
  return out;
}

}  // namespace wrpn::server

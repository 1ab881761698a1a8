#include "server/metric_ingest.h"

#include <algorithm>
#include <cmath>

#include "common/best_top1.h"
#include "common/trainer_protocol.h"

namespace wrpn::server {

void NoteStored(NewestPoints& newest, const std::string& name, int64_t wall_ms, int64_t step) {
  auto& n = newest[name];
  n = std::max(n, std::make_pair(wall_ms, step));
}

NewestPoints NewestOfAttempt(const std::vector<MetricRecord>& stored, int attempt) {
  NewestPoints newest;
  for (const MetricRecord& p : stored) {
    if (p.attempt == attempt) NoteStored(newest, p.name, p.wall_ms, p.step);
  }
  return newest;
}

FreshPoints SelectFresh(const pb::ReportMetricsRequest& req, const NewestPoints& newest,
                        int64_t trial_id, int attempt, std::optional<double> best,
                        int64_t now_ms) {
  FreshPoints out;
  out.records.reserve(req.points_size());
  for (const pb::MetricPoint& p : req.points()) {
    if (p.wall_ms() != 0) {
      auto it = newest.find(p.name());
      if (it != newest.end() && std::make_pair(p.wall_ms(), p.step()) <= it->second) continue;
    }
    out.records.push_back(
        {trial_id, attempt, p.name(), p.step(), p.value(), p.wall_ms() ? p.wall_ms() : now_ms});
    if (p.name() == metric::kTop1) best = BestTop1(best, p.value());
  }
  out.best_top1 = best;
  return out;
}

void NoteRequest(NewestPoints& newest, const pb::ReportMetricsRequest& req) {
  for (const pb::MetricPoint& p : req.points()) {
    if (p.wall_ms() != 0) NoteStored(newest, p.name(), p.wall_ms(), p.step());
  }
}

void KeepLatest(std::map<std::string, MetricRecord>& last, const MetricRecord& p) {
  MetricRecord& l = last[p.name];
  if (l.name.empty() || p.step >= l.step) l = p;
}

}  // namespace wrpn::server

#pragma once
// Metric ingestion for ReportMetrics. Delivery is at least once: a worker whose reply was lost
// sends the same points again, so a point at or before the newest one stored under its name for
// the attempt (same wall time and step, or older) is one stored already and is skipped; points
// without a wall time are always kept. Pure functions; thread-compatible.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

// Per metric name, (wall_ms, step) of the newest point stored for one attempt.
using NewestPoints = std::map<std::string, std::pair<int64_t, int64_t>>;

// Records that a point (wall_ms, step) of `name` is stored.
void NoteStored(NewestPoints& newest, const std::string& name, int64_t wall_ms, int64_t step);
// What the stored points of `attempt` say (after a restart, from the store).
NewestPoints NewestOfAttempt(const std::vector<MetricRecord>& stored, int attempt);

struct FreshPoints {
  std::vector<MetricRecord> records;  // in request order
  std::optional<double> best_top1;    // `best` raised by the fresh top-1 points
};

// The points of `req` not stored yet according to `newest`, as records of (trial_id, attempt);
// a point without a wall time is stamped `now_ms`.
FreshPoints SelectFresh(const pb::ReportMetricsRequest& req, const NewestPoints& newest,
                        int64_t trial_id, int attempt, std::optional<double> best,
                        int64_t now_ms);
// After the fresh points are stored: every point of `req` with a wall time is known.
void NoteRequest(NewestPoints& newest, const pb::ReportMetricsRequest& req);

// Keeps in `last` the point of each name with the highest step (the later one on a tie).
void KeepLatest(std::map<std::string, MetricRecord>& last, const MetricRecord& p);

}  // namespace wrpn::server

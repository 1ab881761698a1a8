#include "worker/agent/log_queue.h"

namespace wrpn::agent {

void LogQueue::Add(int rank, std::string line, Steady now) {
  if (lines_.empty()) batch_started_ = now;  // a new batch starts
  lines_.emplace_back(rank, std::move(line));
  if (lines_.size() > kMaxPendingLines) lines_.pop_front();
}

absl::Status LogQueue::Flush(CoordinatorClient& client, const pb::LeaseRef& lease, Steady now) {
  batch_started_ = now;
  while (!lines_.empty()) {
    pb::ReportLogsRequest req;
    *req.mutable_lease() = lease;
    const int rank = lines_.front().first;
    req.set_rank(rank);
    size_t n = 0;
    while (n < lines_.size() && lines_[n].first == rank && req.lines_size() < kMaxLinesPerCall) {
      req.add_lines(lines_[n].second);
      ++n;
    }
    absl::Status s = client.ReportLogs(req);
    if (s.code() == absl::StatusCode::kUnimplemented) {
      lines_.clear();
      return s;
    }
    if (!s.ok() && IsTransient(s)) return s;
    lines_.erase(lines_.begin(), lines_.begin() + static_cast<long>(n));
  }
  return absl::OkStatus();
}

}  // namespace wrpn::agent

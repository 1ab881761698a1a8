#include "server/trial_logs.h"

#include <algorithm>

namespace wrpn::server {

void TrialLogs::Append(int64_t trial_id, int attempt, int rank, const std::string& text,
                       int64_t time_ms) {
  Log& log = logs_[trial_id];
  pb::LogLine line;
  line.set_seq(log.next_seq++);
  line.set_time_ms(time_ms);
  line.set_attempt(attempt);
  line.set_rank(rank);
  line.set_line(text.size() > kMaxLineBytes ? text.substr(0, kMaxLineBytes) : text);
  log.lines.push_back(std::move(line));
  while (static_cast<int64_t>(log.lines.size()) > kMaxLines) {
    log.lines.pop_front();
    ++log.dropped;
  }
}

void TrialLogs::Read(int64_t trial_id, int64_t after_seq, int64_t limit,
                     pb::GetTrialLogsResponse* resp) const {
  auto it = logs_.find(trial_id);
  if (it == logs_.end()) return;
  if (limit <= 0 || limit > kMaxLines) limit = kMaxLines;
  resp->set_last_seq(it->second.next_seq - 1);
  resp->set_dropped(it->second.dropped);
  for (const pb::LogLine& line : it->second.lines) {
    if (line.seq() <= after_seq) continue;
    if (resp->lines_size() >= limit) break;
    *resp->add_lines() = line;
  }
}

}  // namespace wrpn::server

#pragma once
// What a List* request selects: its page (page_size 0 means the default, larger ones are capped;
// page_token is the position to resume from, as the previous page's next_page_token said) and
// the filters of ListSweeps / ListTrials. Pure; thread-safe.
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

// `requested` >= 0 (server/validate.cc checks it).
int PageSize(int requested);
// "" = the start; otherwise INVALID_ARGUMENT naming page_token unless it is a position >= 0.
absl::StatusOr<int64_t> PageStart(const std::string& token);

// Whether the trial passes the request's state, network, width, wbits and abits filters.
bool TrialMatches(const ::wrpn::v1::ListTrialsRequest& req, const TrialRecord& t);

}  // namespace wrpn::server

#include "server/list_query.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace wrpn::server {

int PageSize(int requested) {
  return requested <= 0 ? kDefaultPageSize : std::min(requested, kMaxPageSize);
}

absl::StatusOr<int64_t> PageStart(const std::string& token) {
  if (token.empty()) return 0;
  int64_t v;
  if (!absl::SimpleAtoi(token, &v) || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat("page_token: '", token, "' is not valid"));
  }
  return v;
}

bool TrialMatches(const ::wrpn::v1::ListTrialsRequest& req, const TrialRecord& t) {
  if (req.state() != ::wrpn::v1::TRIAL_STATE_UNSPECIFIED &&
      static_cast<int>(t.state) != static_cast<int>(req.state()))
    return false;
  if (!req.network().empty() && t.network != req.network()) return false;
  if (req.has_width() && t.width != req.width()) return false;
  if (req.has_wbits() && t.wbits != req.wbits()) return false;
  if (req.has_abits() && t.abits != req.abits()) return false;
  return true;
}

}  // namespace wrpn::server

#include "common/gpu_share.h"

#include <cmath>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace wrpn {
namespace {

// A number within 1% of 1/k is that fraction (0.333 and 0.33 are 1/3; 1/15 and 1/16 are 6% apart).
int DenominatorOf(double v) {
  if (!(v > 0) || v >= 1 || !std::isfinite(v)) return 0;
  const int k = static_cast<int>(std::lround(1.0 / v));
  if (k < 2 || k > kMaxGpuShareDenominator) return 0;
  return std::abs(v * k - 1.0) <= 0.01 ? k : 0;
}

std::string AllowedFractions() {
  std::vector<std::string> shown;
  for (int k = 2; k <= kMaxGpuShareDenominator; ++k) shown.push_back(FormatShare(1.0 / k));
  return absl::StrCat("allowed: a whole number of GPUs, or ", absl::StrJoin(shown, ", "),
                      " = 1/2 .. 1/", kMaxGpuShareDenominator, " of one GPU");
}

absl::Status NotAShare(const std::string& field, const std::string& shown) {
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": ", shown, " is neither a whole number of GPUs nor a fraction 1/k of one (",
      AllowedFractions(), ")"));
}

}  // namespace

absl::StatusOr<GpuAmount> ParseGpuAmount(const nlohmann::json& v, const std::string& field) {
  GpuAmount a;
  if (v.is_string()) {  // "1/4"
    absl::string_view s = absl::StripAsciiWhitespace(v.get<std::string>());
    int k = 0;
    if (absl::ConsumePrefix(&s, "1/") && absl::SimpleAtoi(s, &k) && k >= 1 &&
        k <= kMaxGpuShareDenominator) {
      if (k == 1) a.whole = 1;
      else a.denominator = k;
      return a;
    }
    return NotAShare(field, v.dump());
  }
  if (!v.is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": expected a number of GPUs, got ", v.dump()));
  }
  const double d = v.get<double>();
  if (std::isfinite(d) && std::floor(d) == d && std::abs(d) < 1e9) {
    a.whole = static_cast<int>(d);  // the range is checked with the rest of the spec
    return a;
  }
  a.denominator = DenominatorOf(d);
  if (a.denominator == 0) return NotAShare(field, absl::StrCat(d));
  return a;
}

int ShareDenominatorOf(double share) { return DenominatorOf(share); }

double ShareOf(int64_t share_units) {
  return static_cast<double>(share_units) / static_cast<double>(kGpuShareUnits);
}

int64_t ShareUnitsOf(double share) {
  const int k = DenominatorOf(share);
  return k == 0 ? 0 : kGpuShareUnits / k;
}

std::string FormatShare(double share) {
  std::string s = absl::StrFormat("%.3g", share);
  return s;
}

}  // namespace wrpn

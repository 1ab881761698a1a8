// libFuzzer target: the sweep-spec parser and validator (common/sweep_spec.cc,
// common/yaml_json.cc) on arbitrary bytes, as the coordinator's SubmitSweep(spec_text) and the
// CLI see them. For every spec that parses: it counts, its canonical JSON parses back to a spec
// that validates and prints the same JSON, and (when small) it expands into trial configs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/sweep_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = wrpn::ParseSweepSpec(text);
  if (!spec.ok()) return 0;
  const int64_t n = wrpn::CountTrials(*spec);
  if (n < 1 || n > wrpn::kMaxTrialsPerSweep) std::abort();  // validation bounds the count
  const nlohmann::json canon = wrpn::SweepSpecToJson(*spec);
  auto again = wrpn::SweepSpecFromJson(canon);
  if (!again.ok()) std::abort();  // the canonical form of a valid spec must be valid
  if (wrpn::SweepSpecToJson(*again) != canon) std::abort();
  if (n <= 64) {
    for (const wrpn::TrialPoint& p : wrpn::ExpandSweep(*spec)) {
      (void)wrpn::TrialConfigJson(*spec, p).dump();
    }
  }
  return 0;
}

#pragma once
// The quantization scheme of a trial (docs/recipe.md): WRPN's fixed-range quantizers, LSQ's
// learned step sizes, PACT's learned activation clip or DoReFa's tanh-normalised weights. Typed
// once here; the trial config, the sweep spec's `scheme` axis, the grid and the trainer all use
// these names. Stateless; thread-safe.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wrpn {

enum class QuantScheme { kWrpn, kLsq, kPact, kDorefa };

inline constexpr const char* kDefaultScheme = "wrpn";

// "wrpn", "lsq", "pact", "dorefa".
const char* QuantSchemeName(QuantScheme s);
std::optional<QuantScheme> ParseQuantScheme(std::string_view name);
// The names, in declaration order.
const std::vector<std::string>& KnownQuantSchemes();

// `recipe.init_from`: "" (train from scratch) or "fp32" (start from the final checkpoint of the
// FP32 trial of the same network, width and seed).
inline constexpr const char* kInitFromFp32 = "fp32";

}  // namespace wrpn

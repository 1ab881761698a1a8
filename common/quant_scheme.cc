#include "common/quant_scheme.h"

namespace wrpn {

const char* QuantSchemeName(QuantScheme s) {
  switch (s) {
    case QuantScheme::kWrpn: return "wrpn";
    case QuantScheme::kLsq: return "lsq";
    case QuantScheme::kPact: return "pact";
    case QuantScheme::kDorefa: return "dorefa";
  }
  return "wrpn";
}

std::optional<QuantScheme> ParseQuantScheme(std::string_view name) {
  for (QuantScheme s : {QuantScheme::kWrpn, QuantScheme::kLsq, QuantScheme::kPact,
                        QuantScheme::kDorefa}) {
    if (name == QuantSchemeName(s)) return s;
  }
  return std::nullopt;
}

const std::vector<std::string>& KnownQuantSchemes() {
  static const std::vector<std::string> names = {"wrpn", "lsq", "pact", "dorefa"};
  return names;
}

}  // namespace wrpn

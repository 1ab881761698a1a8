#pragma once
// YAML -> nlohmann::json conversion, so every spec format goes through one JSON-based parser.
// Stateless; thread-safe.
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace wrpn {

// Parses YAML (and therefore JSON) text. Plain scalars become null, bool, integer, float or
// string by their YAML 1.2 core-schema look; quoted scalars stay strings. Duplicate map keys are
// an error. Errors name the line and column.
absl::StatusOr<nlohmann::json> YamlToJson(std::string_view text);

}  // namespace wrpn

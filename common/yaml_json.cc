#include "common/yaml_json.h"

#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace wrpn {
namespace {

// Bounds on what a document may expand to: nesting depth, and nodes visited (YAML aliases let a
// small text name the same node many times, e.g. "billion laughs").
constexpr int kMaxDepth = 64;
constexpr int64_t kMaxNodes = 1000000;

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::string_view DropSign(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return s;
}

// [-+]?[0-9]+  (hand-written: std::regex recurses per character and overflows the stack on long
// scalars)
bool IsInt(std::string_view s) { return AllDigits(DropSign(s)); }

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsFloat(std::string_view s) {
  s = DropSign(s);
  std::string_view exp;
  if (size_t e = s.find_first_of("eE"); e != std::string_view::npos) {
    exp = DropSign(s.substr(e + 1));
    if (!AllDigits(exp)) return false;
    s = s.substr(0, e);
  }
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos) return AllDigits(s);
  std::string_view ip = s.substr(0, dot), fp = s.substr(dot + 1);
  if (ip.empty()) return AllDigits(fp);
  return AllDigits(ip) && (fp.empty() || AllDigits(fp));
}

// Index of the first byte that is not part of well-formed UTF-8, or npos. nlohmann::json throws
// when it prints (dump) a string that is not UTF-8, so such text is refused up front.
size_t InvalidUtf8At(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int n = 0;
    unsigned min = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) n = 1, min = 0x80;
    else if ((c & 0xF0) == 0xE0) n = 2, min = 0x800;
    else if ((c & 0xF8) == 0xF0) n = 3, min = 0x10000;
    else return i;
    if (i + n >= s.size()) return i;  // truncated sequence
    unsigned cp = c & (0x3F >> n);
    for (int k = 1; k <= n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n + 1;
  }
  return std::string_view::npos;
}

nlohmann::json Scalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (IsInt(s)) {
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == 0) return v;
  }
  if (IsFloat(s)) return std::strtod(s.c_str(), nullptr);
  return s;
}

absl::StatusOr<nlohmann::json> Convert(const YAML::Node& node, int depth, int64_t* nodes) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", node.Mark().line + 1, ": nested deeper than ", kMaxDepth, " levels"));
  }
  if (++*nodes > kMaxNodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the document expands to more than ", kMaxNodes, " values (aliases?)"));
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      // yaml-cpp writes some escapes (e.g. "\_", U+00A0) as a single Latin-1 byte.
      if (InvalidUtf8At(node.Scalar()) != std::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", node.Mark().line + 1, ": string is not valid UTF-8"));
      }
      return Scalar(node);
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) {
        auto v = Convert(item, depth + 1, nodes);
        if (!v.ok()) return v.status();
        out.push_back(*std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", kv.first.Mark().line + 1, ": map keys must be plain strings"));
        }
        const std::string key = kv.first.Scalar();
        if (InvalidUtf8At(key) != std::string_view::npos) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", kv.first.Mark().line + 1, ": key is not valid UTF-8"));
        }
        if (out.contains(key)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "line ", kv.first.Mark().line + 1, ": duplicate key '", key, "'"));
        }
        auto v = Convert(kv.second, depth + 1, nodes);
        if (!v.ok()) return v.status();
        out[key] = *std::move(v);
      }
      return out;
    }
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<nlohmann::json> YamlToJson(std::string_view text) {
  if (size_t bad = InvalidUtf8At(text); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("byte ", bad, ": not valid UTF-8"));
  }
  try {
    YAML::Node root = YAML::Load(std::string(text));
    int64_t nodes = 0;
    return Convert(root, 0, &nodes);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("line ", e.mark.line + 1, ", column ",
                                                   e.mark.column + 1, ": ", e.msg));
  }
}

}  // namespace wrpn

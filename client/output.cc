#include "client/output.h"

#include <cmath>
#include <ctime>
#include <sstream>

#include "absl/strings/str_format.h"

namespace wrpn::client {

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  if (name == "table" || name == "text" || name == "wide") return Format::kTable;
  if (name == "json") return Format::kJson;
  if (name == "yaml") return Format::kYaml;
  if (name == "csv") return Format::kCsv;
  if (name == "markdown" || name == "md") return Format::kMarkdown;
  return absl::InvalidArgumentError(absl::StrFormat(
      "--output: unknown format '%s' (expected table, json, yaml, csv or markdown)", name));
}

std::string Paint(const std::string& text, Color color, bool enabled) {
  if (!enabled || color == Color::kNone || text.empty()) return text;
  const char* code = "";
  switch (color) {
    case Color::kGreen: code = "32"; break;
    case Color::kRed: code = "31"; break;
    case Color::kYellow: code = "33"; break;
    case Color::kCyan: code = "36"; break;
    case Color::kDim: code = "2"; break;
    case Color::kBold: code = "1"; break;
    case Color::kNone: break;
  }
  return absl::StrFormat("\033[%sm%s\033[0m", code, text);
}

size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string RenderText(const Table& t, bool color) {
  std::vector<size_t> w(t.columns.size(), 0);
  for (size_t i = 0; i < t.columns.size(); ++i) w[i] = DisplayWidth(t.columns[i]);
  for (const auto& row : t.rows)
    for (size_t i = 0; i < row.size() && i < w.size(); ++i)
      w[i] = std::max(w[i], DisplayWidth(row[i].text));
  auto line = [&](const std::vector<Cell>& cells, bool header) {
    std::string out;
    for (size_t i = 0; i < w.size(); ++i) {
      const Cell c = i < cells.size() ? cells[i] : Cell();
      const std::string pad(w[i] - DisplayWidth(c.text), ' ');
      const bool right = i < t.right.size() && t.right[i];
      const std::string painted = Paint(c.text, header ? Color::kBold : c.color, color);
      std::string field = right ? pad + painted : painted + (i + 1 < w.size() ? pad : "");
      out += field;
      if (i + 1 < w.size()) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out;
  if (!t.title.empty()) out += Paint(t.title, Color::kBold, color) + "\n";
  std::vector<Cell> header(t.columns.begin(), t.columns.end());
  out += line(header, true);
  for (const auto& row : t.rows) out += line(row, false);
  for (const auto& n : t.notes) out += n + "\n";
  return out;
}

namespace {
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}
std::string MdField(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}
}  // namespace

std::string RenderCsv(const Table& t) {
  std::string out;
  auto line = [&](const std::vector<std::string>& f) {
    for (size_t i = 0; i < f.size(); ++i) out += (i ? "," : "") + CsvField(f[i]);
    out += "\n";
  };
  line(t.columns);
  for (const auto& row : t.rows) {
    std::vector<std::string> f;
    for (const auto& c : row) f.push_back(c.text);
    f.resize(t.columns.size());
    line(f);
  }
  return out;
}

std::string RenderMarkdown(const Table& t) {
  std::string out;
  if (!t.title.empty()) out += "**" + t.title + "**\n\n";
  out += "|";
  for (const auto& c : t.columns) out += " " + MdField(c) + " |";
  out += "\n|";
  for (size_t i = 0; i < t.columns.size(); ++i)
    out += (i < t.right.size() && t.right[i]) ? "---:|" : "---|";
  out += "\n";
  for (const auto& row : t.rows) {
    out += "|";
    for (size_t i = 0; i < t.columns.size(); ++i)
      out += " " + MdField(i < row.size() ? row[i].text : "") + " |";
    out += "\n";
  }
  if (!t.notes.empty()) {
    out += "\n";
    for (const auto& n : t.notes) out += n + "\n";
  }
  return out;
}

namespace {
bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* kWords[] = {"true", "false", "null", "yes", "no", "on", "off", "~",
                                 "True", "False", "Null", "Yes", "No", "On", "Off"};
  for (const char* w : kWords)
    if (s == w) return true;
  if (s.find_first_of(":#{}[],&*!|>'\"%@`\n\t") != std::string::npos) return true;
  if (s.front() == ' ' || s.back() == ' ' || s.front() == '-' || s.front() == '?') return true;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == '\0';  // looks like a number
}
std::string Scalar(const nlohmann::json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    return NeedsQuotes(s) ? nlohmann::json(s).dump() : s;
  }
  if (v.is_null()) return "null";
  return v.dump();
}
void Yaml(const nlohmann::json& v, int indent, std::string& out) {
  const std::string pad(indent, ' ');
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string key = NeedsQuotes(it.key()) ? nlohmann::json(it.key()).dump() : it.key();
      const auto& val = it.value();
      if ((val.is_object() || val.is_array()) && !val.empty()) {
        out += pad + key + ":\n";
        Yaml(val, indent + 2, out);
      } else {
        out += pad + key + ": " + (val.is_object() ? "{}" : val.is_array() ? "[]" : Scalar(val)) +
               "\n";
      }
    }
  } else if (v.is_array()) {
    for (const auto& val : v) {
      if ((val.is_object() || val.is_array()) && !val.empty()) {
        std::string inner;
        Yaml(val, indent + 2, inner);
        // "- " replaces the first line's indentation.
        out += pad + "- " + inner.substr(indent + 2);
      } else {
        out += pad + "- " + (val.is_object() ? "{}" : val.is_array() ? "[]" : Scalar(val)) + "\n";
      }
    }
  } else {
    out += pad + Scalar(v) + "\n";
  }
}
}  // namespace

std::string JsonToYaml(const nlohmann::json& v) {
  std::string out;
  Yaml(v, 0, out);
  return out;
}

std::string Fixed(double v, int decimals) {
  if (std::isnan(v)) return "";
  return absl::StrFormat("%.*f", decimals, v);
}
std::string Signed(double v, int decimals) {
  if (std::isnan(v)) return "";
  return absl::StrFormat("%+.*f", decimals, v);
}

std::string UtcTime(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string Duration(double s) {
  if (!(s >= 0) || std::isinf(s)) return "?";
  const int64_t n = static_cast<int64_t>(std::llround(s));
  if (n >= 3600) return absl::StrFormat("%dh%02dm", n / 3600, (n % 3600) / 60);
  if (n >= 60) return absl::StrFormat("%dm%02ds", n / 60, n % 60);
  return absl::StrFormat("%ds", n);
}

}  // namespace wrpn::client

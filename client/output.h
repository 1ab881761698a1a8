#pragma once
// Output formats of the wrpn CLI: aligned text tables (optionally coloured), CSV, Markdown, JSON
// and YAML. Plain values and stateless functions; thread-safe.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace wrpn::client {

enum class Format { kTable, kJson, kYaml, kCsv, kMarkdown };
absl::StatusOr<Format> ParseFormat(const std::string& name);

// ANSI SGR codes used for cells; kNone prints plain.
enum class Color { kNone, kGreen, kRed, kYellow, kCyan, kDim, kBold };
std::string Paint(const std::string& text, Color color, bool enabled);

struct Cell {
  Cell() = default;
  Cell(std::string t, Color c = Color::kNone) : text(std::move(t)), color(c) {}
  Cell(const char* t, Color c = Color::kNone) : text(t), color(c) {}
  std::string text;
  Color color = Color::kNone;
};

struct Table {
  std::string title;             // printed above the table (table and markdown formats)
  std::vector<std::string> columns;
  std::vector<bool> right;       // per column: right-align (numbers); missing = left
  std::vector<std::vector<Cell>> rows;
  std::vector<std::string> notes;  // printed below (table and markdown formats)
};

// Display width in terminal columns (UTF-8 code points; every one counted as one column).
size_t DisplayWidth(const std::string& s);
std::string RenderText(const Table& t, bool color);
std::string RenderCsv(const Table& t);  // header + rows, RFC 4180 quoting; no title or notes
std::string RenderMarkdown(const Table& t);
// Block-style YAML of a JSON value (keys in the JSON's order).
std::string JsonToYaml(const nlohmann::json& v);

// Shared number formatting: fixed decimals, "" for NaN.
std::string Fixed(double v, int decimals);
std::string Signed(double v, int decimals);  // "+1.20" / "-0.30"
// UTC timestamp "2026-11-27 03:00:00" of Unix milliseconds; "-" for 0.
std::string UtcTime(int64_t ms);
// "1h02m", "3m05s", "12s".
std::string Duration(double seconds);

}  // namespace wrpn::client

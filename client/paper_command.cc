// `wrpn paper`: the paper's tables as the coordinator stores them (or from a file), as grids.
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/command_groups.h"
#include "client/grid.h"
#include "client/output.h"

namespace wrpn::client {
namespace {

std::string ReadFileOr(const std::string& path, int code, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw CliError{code, absl::StrCat(what, ": cannot read '", path, "'")};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string CellNum(const nlohmann::json& v, int decimals) {
  return v.is_number() ? Fixed(v.get<double>(), decimals) : "";
}

// A table's `field` ("top1" or "cost") as a grid: rows weight bits, columns activation bits;
// each value also goes to `flat`.
Table BitsGrid(const nlohmann::json& t, const char* field, const std::vector<int>& axis, Table& flat) {
  const std::string id = t.value("id", "");
  const std::string net = t.value("network", "");
  const double width = t.value("width", 1.0);
  Table g;
  g.title = absl::StrFormat("%s: %s %s, %s (rows: weight bits, columns: activation bits)", id, net,
                            WidthLabel(width),
                            std::string(field) == "top1" ? "top-1 % on ImageNet" : "compute cost vs 1x 32/32");
  g.columns = {"w \\ a"};
  g.right = {false};
  for (int a : axis) g.columns.push_back(absl::StrCat("a", a)), g.right.push_back(true);
  for (int w : axis) {
    const std::string key = absl::StrCat(w);
    if (!t[field].contains(key)) continue;
    std::vector<Cell> row{absl::StrCat("w", w)};
    const auto& vals = t[field][key];
    for (size_t i = 0; i < axis.size(); ++i) {
      const auto v = i < vals.size() ? vals[i] : nlohmann::json();
      row.push_back(CellNum(v, 1));
      if (v.is_number()) {
        flat.rows.push_back({id, net, absl::StrFormat("%g", width), key, absl::StrCat(axis[i]),
                             std::string(field) == "top1" ? CellNum(v, 2) : "",
                             std::string(field) == "cost" ? CellNum(v, 2) : ""});
      }
    }
    g.rows.push_back(std::move(row));
  }
  if (t.contains("notes")) g.notes.push_back("note: " + t["notes"].get<std::string>());
  if (t.contains("definition")) g.notes.push_back("definition: " + t["definition"].get<std::string>());
  return g;
}

// A table given as rows of (width, wbits, abits, top1, cost); each row also goes to `flat`.
Table RowsTable(const nlohmann::json& t, Table& flat) {
  const std::string id = t.value("id", "");
  const std::string net = t.value("network", "");
  Table r;
  r.title = absl::StrFormat("%s: %s%s, top-1 %% on ImageNet and compute cost vs 1x 32/32", id, net,
                            t.contains("variant") ? " (" + t["variant"].get<std::string>() + ")" : "");
  r.columns = {"WIDTH", "WBITS", "ABITS", "TOP1", "COST"};
  r.right = {true, true, true, true, true};
  for (const auto& row : t["rows"]) {
    const std::string w = absl::StrFormat("%g", row.value("width", 1.0));
    const std::string wb = absl::StrCat(row.value("wbits", 32)), ab = absl::StrCat(row.value("abits", 32));
    r.rows.push_back({w + "x", wb, ab, CellNum(row.value("top1", nlohmann::json()), 2),
                      CellNum(row.value("cost", nlohmann::json()), 2)});
    flat.rows.push_back({id, net, w, wb, ab, CellNum(row.value("top1", nlohmann::json()), 2),
                         CellNum(row.value("cost", nlohmann::json()), 2)});
  }
  return r;
}

int Paper(Invocation& inv, const std::string& which, const std::string& file) {
  std::string text;
  if (!file.empty()) {
    text = ReadFileOr(file, kExitUsage, "--file");
  } else {
    Connection& c = inv.conn();
    pb::GetPaperTablesResponse resp;
    c.Check(c.stub().GetPaperTables(c.Context().get(), {}, &resp), "paper tables");
    text = resp.tables_json();
  }
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.contains("tables"))
    throw CliError{kExitFailed, "paper tables: not a JSON object with \"tables\""};
  std::vector<int> axis = doc.value("bits_axis", std::vector<int>{32, 8, 4, 2, 1});
  std::vector<nlohmann::json> chosen;
  for (const auto& t : doc["tables"])
    if (which.empty() || t.value("id", "") == which) chosen.push_back(t);
  if (chosen.empty()) {
    std::vector<std::string> ids;
    for (const auto& t : doc["tables"]) ids.push_back(t.value("id", "?"));
    throw CliError{kExitNotFound, absl::StrCat("paper: no table '", which, "' (have ", absl::StrJoin(ids, ", "), ")")};
  }
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml) {
    if (which.empty()) inv.EmitJson(doc);
    else inv.EmitJson(chosen.front());
    return kExitOk;
  }
  std::vector<Table> tables;
  Table flat;  // CSV: one row per value
  flat.columns = {"table", "network", "width", "wbits", "abits", "top1", "cost"};
  for (const auto& t : chosen) {
    for (const char* field : {"top1", "cost"}) {
      if (t.contains(field) && t[field].is_object()) tables.push_back(BitsGrid(t, field, axis, flat));
    }
    if (t.contains("rows")) tables.push_back(RowsTable(t, flat));
  }
  if (f == Format::kCsv) {
    inv.out() << RenderCsv(flat);
    return kExitOk;
  }
  if (which.empty()) inv.out() << doc.value("source", "") << "\n\n";
  for (size_t i = 0; i < tables.size(); ++i) {
    if (i) inv.out() << "\n";
    inv.out() << (f == Format::kMarkdown ? RenderMarkdown(tables[i]) : RenderText(tables[i], inv.color_on()));
  }
  return kExitOk;
}

}  // namespace

void PaperCommand::Add(CLI::App& app, Invocation& inv, int& rc) {
  auto run = [&](std::function<int()> fn) { return Runs(rc, std::move(fn)); };
  auto* paper = app.add_subcommand("paper", "the paper's tables as stored by the coordinator");
  paper->add_option("TABLE", which, "table1 .. table5 (default: all)");
  paper->add_option("--file", paper_file, "read a tables JSON file instead of asking the coordinator (e.g. data/wrpn_tables.json)");
  paper->footer("\nExamples:\n  wrpn paper\n  wrpn paper table3\n  wrpn paper table4 -o csv\n  wrpn paper --file data/wrpn_tables.json");
  paper->callback(run([&] { return Paper(inv, which, paper_file); }));
}

}  // namespace wrpn::client

#include "server/paper_tables.h"

#include <cstdio>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace wrpn::server {
namespace {

using nlohmann::json;

std::string Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::optional<double> Number(const json& v) {
  if (v.is_number()) return v.get<double>();
  return std::nullopt;
}

absl::Status Bad(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("paper tables: ", where, ": ", what));
}

// A `top1` or `cost` block: {"<wbits>": [value per activation bits of `axis`], ...}.
absl::Status ParseMatrix(const json& block, const std::string& where, const PaperValueRecord& proto,
                         bool is_top1, const std::vector<int>& axis, PaperTables* out) {
  if (!block.is_object()) return Bad(where, "expected an object of weight bits -> values");
  for (auto row = block.begin(); row != block.end(); ++row) {
    int wbits;
    if (!absl::SimpleAtoi(row.key(), &wbits) || wbits <= 0)
      return Bad(where, absl::StrCat("'", row.key(), "' is not a number of weight bits"));
    if (!row.value().is_array()) return Bad(absl::StrCat(where, ".", row.key()), "expected a list");
    for (size_t i = 0; i < row.value().size() && i < axis.size(); ++i) {
      auto v = Number(row.value()[i]);
      if (!v) continue;  // null: the paper has no number there
      PaperValueRecord p = proto;
      p.wbits = wbits;
      p.abits = axis[i];
      (is_top1 ? p.top1 : p.cost) = v;
      out->values.push_back(std::move(p));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseTable(const json& t, size_t index, const std::vector<int>& axis, PaperTables* out) {
  const std::string where = absl::StrCat("tables[", index, "]");
  if (!t.is_object()) return Bad(where, "expected an object");
  if (!t.contains("id") || !t["id"].is_string()) return Bad(where, "\"id\" must be a string");
  if (!t.contains("network") || !t["network"].is_string())
    return Bad(where, "\"network\" must be a string");
  PaperValueRecord proto;
  proto.table = t["id"].get<std::string>();
  proto.network = t["network"].get<std::string>();
  if (t.contains("width")) {
    if (!t["width"].is_number()) return Bad(where + ".width", "expected a number");
    proto.width = t["width"].get<double>();
  }
  for (const char* field : {"top1", "cost"}) {
    if (!t.contains(field) || t[field].is_null()) continue;
    RETURN_IF_ERROR(ParseMatrix(t[field], absl::StrCat(where, ".", field), proto,
                                 std::string(field) == "top1", axis, out));
  }
  if (t.contains("rows")) {
    if (!t["rows"].is_array()) return Bad(where + ".rows", "expected a list");
    for (const json& r : t["rows"]) {
      if (!r.is_object()) return Bad(where + ".rows", "expected objects");
      PaperValueRecord p = proto;
      p.width = Number(r.value("width", json())).value_or(1.0);
      p.wbits = static_cast<int>(Number(r.value("wbits", json())).value_or(32));
      p.abits = static_cast<int>(Number(r.value("abits", json())).value_or(32));
      p.top1 = Number(r.value("top1", json()));
      p.cost = Number(r.value("cost", json()));
      out->values.push_back(std::move(p));
    }
  }
  return absl::OkStatus();
}

bool IsBaseline(const PaperValueRecord& p) {
  return p.top1 && p.width == 1 && p.wbits == 32 && p.abits == 32;
}

}  // namespace

absl::StatusOr<PaperTables> ParsePaperTables(const std::string& text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("tables") || !doc["tables"].is_array())
    return absl::InvalidArgumentError("paper tables: not a JSON object with a \"tables\" list");
  std::vector<int> axis{32, 8, 4, 2, 1};
  if (doc.contains("bits_axis")) {
    if (!doc["bits_axis"].is_array()) return Bad("bits_axis", "expected a list of bits");
    axis.clear();
    for (const json& b : doc["bits_axis"]) {
      if (!b.is_number_integer()) return Bad("bits_axis", "expected a list of bits");
      axis.push_back(b.get<int>());
    }
  }
  PaperTables out;
  out.json = text;
  out.version = Fnv1a(text);
  for (size_t i = 0; i < doc["tables"].size(); ++i) {
    if (auto st = ParseTable(doc["tables"][i], i, axis, &out); !st.ok()) return st;
  }
  return out;
}

absl::StatusOr<pb::GetPaperTablesResponse> PaperTablesMessage(const PaperTables& tables) {
  if (tables.version.empty())
    return absl::FailedPreconditionError("no paper tables loaded (start with --paper-tables)");
  pb::GetPaperTablesResponse resp;
  json doc = json::parse(tables.json, nullptr, false);
  if (doc.is_object()) {
    resp.set_source(doc.value("source", ""));
    if (doc.contains("bits_axis") && doc["bits_axis"].is_array())
      for (const json& b : doc["bits_axis"])
        if (b.is_number_integer()) resp.add_bits_axis(b.get<int>());
  }
  std::set<std::string> seen;
  for (const PaperValueRecord& p : tables.values) {
    pb::PaperValue* v = resp.add_values();
    v->set_table(p.table);
    v->set_network(p.network);
    v->set_width(p.width);
    v->set_wbits(p.wbits);
    v->set_abits(p.abits);
    if (p.top1) v->set_top1(*p.top1);
    if (p.cost) v->set_cost(*p.cost);
    if (IsBaseline(p) && seen.insert(p.network).second) {
      pb::PaperBaseline* b = resp.add_baselines();
      b->set_network(p.network);
      b->set_top1(*p.top1);
      b->set_table(p.table);
    }
  }
  resp.set_tables_json(tables.json);
  resp.set_version(tables.version);
  return resp;
}

PaperIndex::PaperIndex(const PaperTables& tables) : version_(tables.version) {
  for (const PaperValueRecord& v : tables.values) {
    PaperEntry& e = cells_[{v.network, v.width, v.wbits, v.abits}];
    if (v.top1 && !e.top1) {
      e.top1 = v.top1;
      e.table = v.table;
    }
    if (v.cost && !e.cost) e.cost = v.cost;
    if (e.table.empty()) e.table = v.table;
  }
}

const PaperEntry* PaperIndex::Find(const std::string& network, double width, int wbits,
                                   int abits) const {
  auto it = cells_.find({network, width, wbits, abits});
  return it == cells_.end() ? nullptr : &it->second;
}

const PaperEntry* PaperIndex::Baseline(const std::string& network) const {
  const PaperEntry* e = Find(network, 1.0, 32, 32);
  return e && e->top1 ? e : nullptr;
}

absl::StatusOr<PaperRef> ParsePaperRef(const std::string& text, const std::string& field) {
  const std::string& o = text;
  if (o.empty() || o == "auto") return PaperRef{};
  if (o == "none") return PaperRef{PaperRef::Kind::kNone, ""};
  auto fixed = [](const char* n) { return PaperRef{PaperRef::Kind::kFixed, n}; };
  if (o == "alexnet" || o == "table1" || o == "table2" || o == "table3") return fixed("alexnet");
  if (o == "resnet34" || o == "resnet" || o == "table4") return fixed("resnet34");
  if (o == "inception_bn" || o == "inception" || o == "table5") return fixed("inception_bn");
  const std::string shown = o.size() > 40 ? o.substr(0, 40) + "..." : o;
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": unknown reference '", shown,
      "' (expected auto, none, alexnet, resnet34, inception_bn or table1..table5)"));
}

std::string ReferenceNetwork(const std::string& network, const PaperRef& ref) {
  switch (ref.kind) {
    case PaperRef::Kind::kNone: return "";
    case PaperRef::Kind::kFixed: return ref.network;
    case PaperRef::Kind::kAuto: break;
  }
  if (network == "lenet5" || network == "alexnet") return "alexnet";
  if (absl::StartsWith(network, "resnet")) return "resnet34";
  if (absl::StartsWith(network, "inception")) return "inception_bn";
  return "";
}

}  // namespace wrpn::server

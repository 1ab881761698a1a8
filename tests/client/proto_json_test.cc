// ProtoJson (client/proto_json.h) against protobuf's own JSON printer, the oracle: for every
// message the CLI prints, both give the same JSON value once the printer's 64-bit strings are
// read as numbers (the one documented difference).
#include "client/proto_json.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <string>

#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::client {
namespace {

namespace pb = wrpn::v1;
using google::protobuf::FieldDescriptor;

void Int64AsNumbers(const google::protobuf::Descriptor* d, nlohmann::json& j) {
  if (!j.is_object()) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    auto it = j.find(f->name());
    if (it == j.end()) continue;
    auto fix = [&](nlohmann::json& v) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_map()) {
        Int64AsNumbers(f->message_type(), v);
      } else if ((f->cpp_type() == FieldDescriptor::CPPTYPE_INT64 ||
                  f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64) &&
                 v.is_string()) {
        v = std::stoll(v.get<std::string>());
      }
    };
    if (it->is_array()) {
      for (auto& v : *it) fix(v);
    } else {
      fix(*it);
    }
  }
}

nlohmann::json Oracle(const google::protobuf::Message& m, bool defaults) {
  std::string s;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = defaults;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &s, o).ok());
  nlohmann::json j = nlohmann::json::parse(s);
  Int64AsNumbers(m.GetDescriptor(), j);
  return j;
}

void ExpectSameAsPrinter(const google::protobuf::Message& m) {
  for (bool defaults : {false, true}) {
    SCOPED_TRACE(defaults ? "print_defaults" : "no defaults");
    EXPECT_EQ(ProtoJson(m, defaults).dump(), Oracle(m, defaults).dump());
  }
}

pb::GetGridResponse Grid(int cells, int seeds) {
  pb::GetGridResponse g;
  g.set_sweep_id(7);
  g.add_bits_axis(32);
  g.add_bits_axis(2);
  g.set_paper_version("abc");
  auto* b = g.add_baselines();
  b->set_network("alexnet");
  b->set_top1(57.2);
  for (int c = 0; c < cells; ++c) {
    auto* cell = g.add_cells();
    cell->set_network("lenet5");
    cell->set_width(c % 2 ? 2.0 : 1.5);
    cell->set_wbits(2);
    cell->set_state(pb::TRIAL_SUCCEEDED);
    cell->set_final_top1(90.25 + c);
    if (c % 3 == 0) cell->set_paper_delta(-1.4);
    cell->set_cost_uniform(0.125);
    cell->set_trial_id(int64_t{1} << 40);
    for (int s = 0; s < seeds; ++s) {
      auto* seed = cell->add_seeds();
      seed->set_seed(s);
      seed->set_trial_id(c * seeds + s + 1);
      seed->set_state(s % 2 ? pb::TRIAL_SUCCEEDED : pb::TRIAL_RUNNING);
      if (s % 2) seed->set_final_top1(0.1 * s);
    }
  }
  return g;
}

TEST(ProtoJson, GridEqualsProtobufsPrinter) { ExpectSameAsPrinter(Grid(3, 4)); }

TEST(ProtoJson, EmptyMessageEqualsProtobufsPrinter) { ExpectSameAsPrinter(pb::GetGridResponse()); }

TEST(ProtoJson, WorkersWithMapsAndRepeatedInt64) {
  pb::ListWorkersResponse r;
  auto* w = r.add_workers();
  w->set_id("w-1");
  (*w->mutable_labels())["gpu"] = "h200";
  (*w->mutable_labels())["zone"] = "a";
  w->add_running_trials(5);
  w->add_running_trials(int64_t{1} << 50);
  w->add_gpus()->set_memory_bytes(int64_t{141} << 30);
  r.add_workers();  // all defaults
  ExpectSameAsPrinter(r);
}

TEST(ProtoJson, SearchMarginValuesPrintAsTheirJson) {
  pb::SweepSpec spec;
  spec.set_name("pareto");
  spec.mutable_search()->set_mode("pareto");
  spec.mutable_search()->mutable_margin()->set_string_value("auto");
  ExpectSameAsPrinter(spec);
  EXPECT_EQ(ProtoJson(spec)["search"]["margin"], "auto");
  spec.mutable_search()->mutable_margin()->set_number_value(0.5);
  ExpectSameAsPrinter(spec);
  spec.mutable_search()->mutable_margin()->set_number_value(2);
  ExpectSameAsPrinter(spec);
  google::protobuf::Value v;
  auto& fields = *v.mutable_struct_value()->mutable_fields();
  fields["on"].set_bool_value(true);
  fields["none"].set_null_value(google::protobuf::NULL_VALUE);
  auto* list = fields["list"].mutable_list_value();
  list->add_values()->set_string_value("a");
  list->add_values()->set_number_value(1.5);
  ExpectSameAsPrinter(v);
}

TEST(ProtoJson, OneofAndUnknownEnumValue) {
  pb::SubmitSweepRequest req;
  req.set_spec_text("network: lenet5");
  ExpectSameAsPrinter(req);
  pb::GetSweepResponse s;
  s.mutable_sweep()->set_id(3);
  s.mutable_sweep()->set_state(static_cast<pb::SweepState>(99));
  ExpectSameAsPrinter(s);
}

TEST(ProtoJson, NonFiniteAndLargeDoubles) {
  pb::GetGridResponse g;
  auto* c = g.add_cells();
  c->set_width(1e20);
  c->set_fma_ratio(0.1);
  c->set_cost_uniform(-3.0);
  ExpectSameAsPrinter(g);
  c->set_cost_uniform(std::numeric_limits<double>::infinity());
  EXPECT_EQ(ProtoJson(g)["cells"][0]["cost_uniform"], "Infinity");
}

// Not a timing assertion: prints both converters' time on a 100,000-seed grid (docs/reliability.md).
TEST(ProtoJson, LargeGridTimes) {
  const pb::GetGridResponse g = Grid(160, 625);
  auto t0 = std::chrono::steady_clock::now();
  const std::string ours = ProtoJson(g, true).dump(2);
  auto t1 = std::chrono::steady_clock::now();
  const std::string printer = Oracle(g, true).dump(2);
  auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(ours, printer);
  std::printf("100,000 seeds: ProtoJson + dump %.3f s, protobuf printer + parse + dump %.3f s\n",
              std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count());
}

}  // namespace
}  // namespace wrpn::client

#include "client/footprint.h"

#include <cmath>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/grid.h"
#include "client/plot.h"
#include "common/memory_model.h"

namespace wrpn::client {
namespace {

std::string MiB(double bytes) { return absl::StrFormat("%.1f", bytes / (1 << 20)); }

nlohmann::json ReportJson(const FootprintReport& r) {
  return {{"activation_bytes", r.activation_bytes}, {"weight_bytes", r.weight_bytes},
          {"gradient_bytes", r.gradient_bytes},     {"training_bytes", r.training_bytes},
          {"inference_bytes", r.inference_bytes},   {"activation_fraction", r.activation_fraction}};
}

// Measured peaks (live tensor bytes) by batch, from `wrpn-train describe --measure --json`; the
// file must describe the same network, width, bits and input as the model it is set against.
std::map<int, double> ReadMeasured(const std::string& path, const FootprintArgs& a, const InputShape& in) {
  std::ifstream f(path);
  if (!f) throw CliError{kExitUsage, "--measured: cannot open " + path};
  const nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("measured") || !j["measured"].is_array())
    throw CliError{kExitUsage, "--measured: " + path + " is not the JSON of `wrpn-train describe --measure --json`"};
  auto mismatch = [&](const std::string& field, const std::string& theirs, const std::string& ours) {
    throw CliError{kExitUsage, absl::StrCat("--measured: ", path, " measured ", field, " ", theirs,
                                            ", the model is for ", ours)};
  };
  try {
    if (j.at("network").get<std::string>() != a.network) mismatch("network", j["network"].get<std::string>(), a.network);
    if (std::abs(j.at("width").get<double>() - a.width) > 1e-9)
      mismatch("width", absl::StrCat(j["width"].get<double>()), absl::StrCat(a.width));
    if (j.at("wbits").get<int>() != a.wbits) mismatch("wbits", absl::StrCat(j["wbits"].get<int>()), absl::StrCat(a.wbits));
    if (j.at("abits").get<int>() != a.abits) mismatch("abits", absl::StrCat(j["abits"].get<int>()), absl::StrCat(a.abits));
    const auto shape = j.at("input").get<std::vector<int>>();
    const std::string ours = absl::StrFormat("%dx%dx%d", in.channels, in.height, in.width);
    const std::string theirs = shape.size() == 3 ? absl::StrFormat("%dx%dx%d", shape[0], shape[1], shape[2]) : "?";
    if (theirs != ours) mismatch("input", theirs, ours + " (pass --input)");
    if (j.at("classes").get<int>() != in.classes)
      mismatch("classes", absl::StrCat(j["classes"].get<int>()), absl::StrCat(in.classes));
    std::map<int, double> out;
    for (const auto& m : j["measured"]) out[m.at("batch").get<int>()] = m.at("measured_tensor_peak_bytes").get<double>();
    return out;
  } catch (const nlohmann::json::exception& e) {
    throw CliError{kExitUsage, absl::StrCat("--measured: ", path, ": ", e.what())};
  }
}

}  // namespace

int RunFootprint(Invocation& inv, const FootprintArgs& a, const InputShape& input) {
  const std::map<int, double> measured =
      a.measured_path.empty() ? std::map<int, double>{} : ReadMeasured(a.measured_path, a, input);
  std::vector<int> batches = a.batches;
  if (batches.empty()) {
    for (const auto& [b, bytes] : measured) batches.push_back(b);
    if (batches.empty()) batches = {1, 32, 64, 128, 256};
  }
  for (int b : batches)
    if (b < 1) throw CliError{kExitUsage, absl::StrFormat("--batch: every batch size must be >= 1, got %d", b)};
  auto spec = DescribeNetwork(a.network, a.width, input);
  if (!spec.ok()) throw CliError{kExitUsage, std::string(spec.status().message())};

  const bool low = a.wbits != 32 || a.abits != 32;
  const std::string bits = absl::StrFormat("w%d/a%d", a.wbits, a.abits);
  Table t;
  t.title = absl::StrFormat("%s %s, input %dx%dx%d: training memory by batch size (MiB)", a.network,
                            WidthLabel(a.width), input.channels, input.height, input.width);
  t.columns = {"BATCH", "ACCOUNTING", "ACTIVATIONS", "WEIGHTS", "GRADIENT MAPS", "TRAINING", "INFERENCE", "ACTIVATION %"};
  if (!measured.empty()) t.columns.insert(t.columns.end(), {"MEASURED", "MODEL ERROR %"});
  t.right.assign(t.columns.size(), true);
  t.right[1] = false;
  nlohmann::json j = nlohmann::json::array();
  std::vector<FootprintBar> bars;
  for (int b : batches) {
    const auto paper = ComputeFootprint(*spec, a.wbits, a.abits, b);
    const auto trained = ComputeAutogradFootprint(*spec, a.wbits, a.abits, b, Storage::kAsTrained);
    const auto it = measured.find(b);
    const double m = it == measured.end() ? 0 : it->second;
    auto row = [&](const std::string& name, const FootprintReport& r, bool with_measured) {
      std::vector<Cell> cells = {absl::StrCat(b), name, MiB(r.activation_bytes), MiB(r.weight_bytes),
                                 MiB(r.gradient_bytes), MiB(r.training_bytes), MiB(r.inference_bytes),
                                 absl::StrFormat("%.1f", 100 * r.activation_fraction)};
      if (!measured.empty()) {
        const bool show = with_measured && m > 0;
        cells.push_back(show ? MiB(m) : "");
        cells.push_back(show ? absl::StrFormat("%+.1f", 100 * (r.training_bytes / m - 1)) : "");
      }
      t.rows.push_back(std::move(cells));
    };
    nlohmann::json jb = {{"batch", b}, {"paper", ReportJson(paper)}, {"autograd", ReportJson(trained)}};
    row(low ? "paper " + bits : "paper", paper, false);
    if (low) {
      const auto paper32 = ComputeFootprint(*spec, 32, 32, b);
      const auto packed = ComputeAutogradFootprint(*spec, a.wbits, a.abits, b, Storage::kPacked);
      row("paper fp32", paper32, false);
      jb["paper_fp32"] = ReportJson(paper32);
      row("autograd as trained (fp32)", trained, true);
      row("autograd packed " + bits, packed, false);
      jb["autograd_packed"] = ReportJson(packed);
    } else {
      row("autograd", trained, true);
    }
    if (m > 0) jb["measured_bytes"] = m;
    j.push_back(std::move(jb));
    bars.push_back({b, paper, trained, m});
  }
  t.notes.push_back("paper: the paper's section 2 (every conv/linear layer's input and output map, weights, two gradient maps)");
  t.notes.push_back("autograd: what LibTorch keeps for the backward pass (conv/linear inputs, batch-norm inputs, ReLU outputs or "
                    "quantizer inputs, pooling inputs and indices) + FP32 weights, gradients and momentum + gradient maps");
  if (low) t.notes.push_back("today's trainer stores every tensor in FP32 (\"as trained\"); \"packed\" stores quantized "
                             "activations and weight copies at their bits and clip masks at 1 bit");
  if (!measured.empty()) t.notes.push_back("measured: peak live tensor bytes of one training step (wrpn-train describe --measure)");
  if (!a.plot_out.empty()) {
    const std::string gp = inv.env().env("WRPN_GNUPLOT").value_or("gnuplot");
    auto term = TerminalFor(a.plot_out, GnuplotHasPngcairo(gp));
    if (!term.ok()) throw CliError{kExitUsage, std::string(term.status().message())};
    const std::string title = absl::StrFormat("%s %s, %s: training memory by batch size", a.network,
                                              WidthLabel(a.width), bits);
    if (auto st = RunGnuplot(gp, FootprintScript(title, bars, *term, a.plot_out)); !st.ok())
      throw CliError{kExitFailed, std::string(st.message())};
    inv.err() << "wrote " << a.plot_out << "\n";
  }
  inv.Emit(t, {{"network", a.network}, {"width", a.width}, {"wbits", a.wbits}, {"abits", a.abits},
               {"input", {input.channels, input.height, input.width}}, {"batches", j}});
  return kExitOk;
}

}  // namespace wrpn::client

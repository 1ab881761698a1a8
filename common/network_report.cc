#include "common/network_report.h"

#include <sstream>

#include "absl/strings/str_cat.h"

namespace wrpn {

absl::StatusOr<InputShape> ParseInputShape(std::string_view network, const std::string& text) {
  InputShape in = DefaultInput(network);
  if (text.empty()) return in;
  char x1 = 0, x2 = 0;
  std::istringstream s(text);
  if (!(s >> in.channels >> x1 >> in.height >> x2 >> in.width) || x1 != 'x' || x2 != 'x' ||
      !s.eof() || in.channels < 1 || in.height < 1 || in.width < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--input: expected CxHxW (e.g. 3x224x224), got '", text, "'"));
  }
  return in;
}

absl::StatusOr<NetworkReport> BuildNetworkReport(std::string_view network, double width, int wbits,
                                                 int abits, const InputShape& input,
                                                 const std::vector<int>& batches) {
  NetworkReport r{std::string(network), width, wbits, abits, input, {}, {}, {}};
  absl::StatusOr<NetworkSpec> spec = DescribeNetwork(network, width, input);
  if (!spec.ok()) return spec.status();
  r.spec = *std::move(spec);
  absl::StatusOr<CostReport> cost = ComputeCost(network, width, wbits, abits, input);
  if (!cost.ok()) return cost.status();
  r.cost = *cost;
  for (int b : batches) {
    if (b < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--batch: every batch size must be >= 1, got ", b));
    }
    r.memory.push_back({b, ComputeFootprint(r.spec, wbits, abits, b)});
  }
  return r;
}

nlohmann::json NetworkReportJson(const NetworkReport& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerSpec& l : r.spec.layers) {
    layers.push_back({{"name", l.name},
                      {"kind", l.kind == LayerKind::kConv ? "conv" : "linear"},
                      {"in_channels", l.in_channels},
                      {"out_channels", l.out_channels},
                      {"kernel", l.kernel_h},
                      {"stride", l.stride},
                      {"output", {l.out_h, l.out_w}},
                      {"params", l.ParamCount()},
                      {"fmas", l.Fmas()},
                      {"wbits", LayerWbits(l, r.wbits)},
                      {"abits_in", LayerAbits(l, r.abits)}});
  }
  nlohmann::json out = {{"network", r.network},
                        {"width", r.width},
                        {"wbits", r.wbits},
                        {"abits", r.abits},
                        {"input", {r.input.channels, r.input.height, r.input.width}},
                        {"classes", r.input.classes},
                        {"layers", layers},
                        {"params", r.spec.ParamCount()},
                        {"fmas", r.cost.fmas},
                        {"baseline_fmas", r.cost.baseline_fmas},
                        {"fma_ratio", r.cost.fma_ratio},
                        {"cost_uniform", r.cost.cost_uniform},
                        {"cost_first_last_fp32", r.cost.cost_first_last_fp32}};
  if (r.memory.empty()) return out;
  nlohmann::json memory = nlohmann::json::array();
  for (const auto& [batch, f] : r.memory) {
    memory.push_back({{"batch", batch},
                      {"activation_bytes", f.activation_bytes},
                      {"weight_bytes", f.weight_bytes},
                      {"gradient_bytes", f.gradient_bytes},
                      {"training_bytes", f.training_bytes},
                      {"inference_bytes", f.inference_bytes},
                      {"activation_fraction", f.activation_fraction}});
  }
  out["memory"] = memory;
  return out;
}

InputShape TrialInputShape(const TrialConfig& c) {
  const DatasetConfig& d = c.dataset;
  InputShape in = DefaultInput(c.network);
  if (d.kind == "synthetic") return {d.channels, d.height, d.width, d.classes};
  if (d.kind == "mnist" || d.kind == "fashion_mnist") return {1, 28, 28, 10};
  if (d.kind == "cifar10") return {3, 32, 32, 10};
  const int size = d.image_size > 0 ? d.image_size : 224;  // imagefolder, packed
  return {3, size, size, in.classes};
}

absl::StatusOr<CostReport> TrialCost(const TrialConfig& c) {
  absl::StatusOr<CostReport> cost = ComputeCost(c.network, c.width, c.wbits, c.abits,
                                                TrialInputShape(c));
  if (cost.ok() || !IsValidBits(c.wbits) || !IsValidBits(c.abits)) return cost;
  // An input the network cannot take (AlexNet on 28x28): the trainer refuses the trial; the
  // grid still shows the network's cost at its own input.
  return ComputeCost(c.network, c.width, c.wbits, c.abits, DefaultInput(c.network));
}

}  // namespace wrpn

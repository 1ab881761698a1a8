#pragma once
// The report on one network at a width and bit widths: its layers, parameters, FMAs, compute
// cost (the shared model, network_spec.h) and, for given batch sizes, its memory footprint
// (memory_model.h). Built once here for `wrpn-train describe` and `wrpn cost`, which only render
// it; its JSON form is what both print with --json / -o json. No LibTorch. Stateless, thread-safe.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "common/memory_model.h"
#include "common/network_spec.h"
#include "common/trial_config.h"

namespace wrpn {

struct NetworkReport {
  std::string network;
  double width = 1;
  int wbits = 32, abits = 32;
  InputShape input;
  NetworkSpec spec;
  CostReport cost;
  struct Memory {
    int batch = 0;
    FootprintReport footprint;
  };
  std::vector<Memory> memory;  // one per batch size asked for
};

// The network's own input when `text` is empty, else "CxHxW" (3x224x224); the error names
// --input.
[[nodiscard]] absl::StatusOr<InputShape> ParseInputShape(std::string_view network,
                                                         const std::string& text);
// Errors name what is wrong (network, width, bits, a batch size < 1).
[[nodiscard]] absl::StatusOr<NetworkReport> BuildNetworkReport(std::string_view network,
                                                               double width, int wbits, int abits,
                                                               const InputShape& input,
                                                               const std::vector<int>& batches = {});
// network, width, wbits, abits, input, classes, layers, params, fmas, baseline_fmas, fma_ratio,
// cost_uniform, cost_first_last_fp32 and, when batch sizes were given, memory.
nlohmann::json NetworkReportJson(const NetworkReport& r);
// The bits a layer computes with: `bits` where the layer is quantized, else 32.
inline int LayerWbits(const LayerSpec& l, int wbits) { return l.quantized ? wbits : 32; }
inline int LayerAbits(const LayerSpec& l, int abits) { return l.input_quantized ? abits : 32; }

// The input a trial's network sees: the dataset's image shape and classes where the config
// names them (synthetic: its shape; mnist, fashion_mnist: 1x28x28, 10; cifar10: 3x32x32, 10;
// imagefolder, packed: 3 x image_size (224 when 0) with the network's classes).
InputShape TrialInputShape(const TrialConfig& c);
// The trial's compute cost, computed once with TrialInputShape: what submit stores (the
// network's default input when it cannot take the dataset's).
[[nodiscard]] absl::StatusOr<CostReport> TrialCost(const TrialConfig& c);

}  // namespace wrpn

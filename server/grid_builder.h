#pragma once
// The results grid of one sweep: its trials grouped into (network, width, wbits, abits, scheme)
// cells with the seeds aggregated (mean, sample standard deviation), each cell's change from the
// sweep's own 1x 32/32 cell, and the paper's value and change from its baseline for the reference
// network the request picks. Pure: the caller hands in the trials (under its own lock).
#include <cstdint>
#include <string>
#include <vector>

#include "server/paper_tables.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

// The quantization scheme a trial's cell is keyed by (TrialRecord::scheme).
std::string CellScheme(const TrialRecord& t);

// `trials`: the sweep's trials in sweep order; cells come in the order of their first trial.
pb::GetGridResponse BuildGrid(int64_t sweep_id, const std::vector<const TrialRecord*>& trials,
                              const PaperIndex& paper, const PaperRef& ref);

}  // namespace wrpn::server

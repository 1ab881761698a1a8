#include "server/validate.h"

#include <cmath>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/trainer_protocol.h"
#include "server/list_query.h"
#include "server/paper_tables.h"

namespace wrpn::server {
namespace {

using L = RequestLimits;

static_assert(static_cast<int>(FailureKind::kConfig) == pb::FAILURE_KIND_CONFIG);
static_assert(static_cast<int>(FailureKind::kData) == pb::FAILURE_KIND_DATA);
static_assert(static_cast<int>(FailureKind::kRendezvous) == pb::FAILURE_KIND_RENDEZVOUS);
static_assert(static_cast<int>(FailureKind::kInternal) == pb::FAILURE_KIND_INTERNAL);
static_assert(static_cast<int>(FailureKind::kInterrupted) == pb::FAILURE_KIND_INTERRUPTED);
static_assert(static_cast<int>(FailureKind::kResources) == pb::FAILURE_KIND_RESOURCES);
static_assert(static_cast<int>(FailureKind::kLaunch) == pb::FAILURE_KIND_LAUNCH);
static_assert(kAllFailureKinds.size() == pb::FailureKind_ARRAYSIZE - 1);

absl::Status Bad(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// Shows a hostile value without echoing megabytes of it.
std::string Shown(absl::string_view v) {
  if (v.size() <= 64) return absl::StrCat("'", v, "'");
  return absl::StrCat("'", v.substr(0, 64), "...' (", v.size(), " bytes)");
}

absl::Status Positive(absl::string_view field, int64_t v) {
  if (v <= 0) return Bad(field, absl::StrCat("must be > 0, got ", v));
  return absl::OkStatus();
}

absl::Status Range(absl::string_view field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) return Bad(field, absl::StrCat("must be in [", lo, ", ", hi, "], got ", v));
  return absl::OkStatus();
}

absl::Status Length(absl::string_view field, absl::string_view v, size_t max, bool required) {
  if (required && v.empty()) return Bad(field, "must not be empty");
  if (v.size() > max) {
    return Bad(field, absl::StrCat("is ", v.size(), " bytes; at most ", max, " allowed"));
  }
  if (v.find('\0') != absl::string_view::npos) return Bad(field, "must not contain NUL bytes");
  return absl::OkStatus();
}

// Free text (log lines, failure reasons): only its size is bounded.
absl::Status Text(absl::string_view field, absl::string_view v, size_t max) {
  if (v.size() > max) {
    return Bad(field, absl::StrCat("is ", v.size(), " bytes; at most ", max, " allowed"));
  }
  return absl::OkStatus();
}

absl::Status Finite(absl::string_view field, double v, double lo, double hi) {
  if (!std::isfinite(v)) return Bad(field, absl::StrCat("must be finite, got ", v));
  if (v < lo || v > hi) return Bad(field, absl::StrCat("must be in [", lo, ", ", hi, "], got ", v));
  return absl::OkStatus();
}

absl::Status Lease(const std::string& field, const pb::LeaseRef& ref) {
  if (auto s = Length(field + ".lease_id", ref.lease_id(), L::kMaxIdBytes, true); !s.ok()) return s;
  return Positive(field + ".fencing_token", ref.fencing_token());
}

// The failure kind by enum or by name (common/trainer_protocol.h); both given: they agree.
absl::Status CheckFailureKind(const pb::TrialFailure& f) {
  std::optional<FailureKind> by_enum;
  if (f.failure_kind() != pb::FAILURE_KIND_UNSPECIFIED) {
    if (!pb::FailureKind_IsValid(f.failure_kind()))
      return Bad("failure.failure_kind", absl::StrCat("unknown kind ", f.failure_kind()));
    by_enum = static_cast<FailureKind>(f.failure_kind());
  }
  if (f.kind().empty()) return absl::OkStatus();
  const std::optional<FailureKind> by_name = FailureKindFromName(f.kind());
  if (!by_name) {
    std::vector<absl::string_view> names;
    for (FailureKind k : kAllFailureKinds) names.push_back(FailureKindName(k));
    return Bad("failure.kind", absl::StrCat("unknown kind ", Shown(f.kind()), " (",
                                            absl::StrJoin(names, ", "), ")"));
  }
  if (by_enum && by_enum != by_name) {
    return Bad("failure.kind", absl::StrCat(Shown(f.kind()), " disagrees with failure_kind ",
                                            pb::FailureKind_Name(f.failure_kind())));
  }
  return absl::OkStatus();
}

absl::Status PageToken(const std::string& token) {
  if (absl::Status s = Length("page_token", token, L::kMaxPageTokenBytes, false); !s.ok()) return s;
  return PageStart(token).status();
}

#define WRPN_CHECK(expr)                     \
  do {                                       \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

}  // namespace

absl::Status ValidateRequest(const pb::SubmitSweepRequest& r) {
  if (r.source_case() == pb::SubmitSweepRequest::kSpecText)
    WRPN_CHECK(Length("spec_text", r.spec_text(), L::kMaxSpecBytes, true));
  if (r.has_spec()) {
    const size_t n = r.spec().ByteSizeLong();
    if (n > L::kMaxSpecBytes)
      return Bad("spec", absl::StrCat("is ", n, " bytes; at most ", L::kMaxSpecBytes, " allowed"));
  }
  return absl::OkStatus();  // the spec itself is validated by ParseSweepSpec
}

absl::Status ValidateRequest(const pb::GetSweepRequest& r) { return Positive("sweep_id", r.sweep_id()); }
absl::Status ValidateRequest(const pb::CancelSweepRequest& r) { return Positive("sweep_id", r.sweep_id()); }
absl::Status ValidateRequest(const pb::RetrySweepRequest& r) { return Positive("sweep_id", r.sweep_id()); }
absl::Status ValidateRequest(const pb::WatchSweepRequest& r) { return Positive("sweep_id", r.sweep_id()); }
absl::Status ValidateRequest(const pb::GetGridRequest& r) {
  if (auto st = Positive("sweep_id", r.sweep_id()); !st.ok()) return st;
  return ParsePaperRef(r.paper_ref()).status();
}
absl::Status ValidateRequest(const pb::GetTrialRequest& r) { return Positive("trial_id", r.trial_id()); }
absl::Status ValidateRequest(const pb::GetPaperTablesRequest&) { return absl::OkStatus(); }
absl::Status ValidateRequest(const pb::ListWorkersRequest&) { return absl::OkStatus(); }

absl::Status ValidateRequest(const pb::ListSweepsRequest& r) {
  WRPN_CHECK(Range("page_size", r.page_size(), 0, INT32_MAX));
  WRPN_CHECK(PageToken(r.page_token()));
  if (!pb::SweepState_IsValid(r.state()))
    return Bad("state", absl::StrCat("unknown sweep state ", r.state()));
  return absl::OkStatus();
}

absl::Status ValidateRequest(const pb::ListTrialsRequest& r) {
  WRPN_CHECK(Positive("sweep_id", r.sweep_id()));
  WRPN_CHECK(Range("page_size", r.page_size(), 0, INT32_MAX));
  WRPN_CHECK(PageToken(r.page_token()));
  if (!pb::TrialState_IsValid(r.state()))
    return Bad("state", absl::StrCat("unknown trial state ", r.state()));
  WRPN_CHECK(Length("network", r.network(), L::kMaxNameBytes, false));
  if (r.has_width()) WRPN_CHECK(Finite("width", r.width(), 0, 1e9));
  if (r.has_wbits()) WRPN_CHECK(Range("wbits", r.wbits(), 1, 32));
  if (r.has_abits()) WRPN_CHECK(Range("abits", r.abits(), 1, 32));
  return absl::OkStatus();
}

absl::Status ValidateRequest(const pb::GetTrialMetricsRequest& r) {
  WRPN_CHECK(Positive("trial_id", r.trial_id()));
  return Length("name", r.name(), L::kMaxNameBytes, false);
}

absl::Status ValidateRequest(const pb::DrainWorkerRequest& r) {
  return Length("worker_id", r.worker_id(), L::kMaxIdBytes, true);
}

absl::Status ValidateRequest(const pb::GetTrialLogsRequest& r) {
  WRPN_CHECK(Positive("trial_id", r.trial_id()));
  WRPN_CHECK(Range("after_seq", r.after_seq(), 0, INT64_MAX));
  return Range("limit", r.limit(), 0, INT32_MAX);
}

absl::Status ValidateRequest(const pb::RegisterWorkerRequest& r) {
  WRPN_CHECK(Length("name", r.name(), L::kMaxNameBytes, true));
  WRPN_CHECK(Length("address", r.address(), L::kMaxNameBytes, false));
  if (r.gpus_size() > L::kMaxGpus)
    return Bad("gpus", absl::StrCat(r.gpus_size(), " GPUs; at most ", L::kMaxGpus, " allowed"));
  for (int i = 0; i < r.gpus_size(); ++i) {
    const std::string f = absl::StrCat("gpus[", i, "]");
    WRPN_CHECK(Range(f + ".index", r.gpus(i).index(), 0, L::kMaxGpus - 1));
    WRPN_CHECK(Range(f + ".memory_bytes", r.gpus(i).memory_bytes(), 0, INT64_MAX));
    WRPN_CHECK(Length(f + ".name", r.gpus(i).name(), L::kMaxNameBytes, false));
  }
  WRPN_CHECK(Range("cpus", r.cpus(), 0, L::kMaxCpus));
  if (r.labels_size() > L::kMaxLabels)
    return Bad("labels", absl::StrCat(r.labels_size(), " labels; at most ", L::kMaxLabels, " allowed"));
  for (const auto& [k, v] : r.labels()) {
    WRPN_CHECK(Length("labels key", k, L::kMaxNameBytes, true));
    WRPN_CHECK(Length(absl::StrCat("labels[", Shown(k), "]"), v, L::kMaxNameBytes, false));
  }
  return Range("max_cpu_trials", r.max_cpu_trials(), 0, L::kMaxCpuTrials);
}

absl::Status ValidateRequest(const pb::HeartbeatRequest& r) {
  WRPN_CHECK(Length("worker_id", r.worker_id(), L::kMaxIdBytes, true));
  if (r.leases_size() > L::kMaxLeases)
    return Bad("leases", absl::StrCat(r.leases_size(), " leases; at most ", L::kMaxLeases, " allowed"));
  for (int i = 0; i < r.leases_size(); ++i) {
    const std::string f = absl::StrCat("leases[", i, "]");
    WRPN_CHECK(Lease(f + ".lease", r.leases(i).lease()));
    WRPN_CHECK(Range(f + ".epoch", r.leases(i).epoch(), 0, INT64_MAX));
    WRPN_CHECK(Finite(f + ".fraction", r.leases(i).fraction(), 0, 1));
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const pb::AcquireTrialRequest& r) {
  WRPN_CHECK(Length("worker_id", r.worker_id(), L::kMaxIdBytes, true));
  WRPN_CHECK(Range("free_gpus", r.free_gpus(), 0, L::kMaxGpus));
  return Range("max_trials", r.max_trials(), 0, L::kMaxTrialsPerAcquire);
}

absl::Status ValidateRequest(const pb::ReportMetricsRequest& r) {
  WRPN_CHECK(Lease("lease", r.lease()));
  if (r.points_size() > L::kMaxMetricPoints) {
    return Bad("points", absl::StrCat(r.points_size(), " points; at most ", L::kMaxMetricPoints,
                                      " per call"));
  }
  for (int i = 0; i < r.points_size(); ++i) {
    const pb::MetricPoint& p = r.points(i);
    const std::string f = absl::StrCat("points[", i, "]");
    WRPN_CHECK(Length(f + ".name", p.name(), L::kMaxNameBytes, true));
    WRPN_CHECK(Range(f + ".step", p.step(), 0, INT64_MAX));
    if (!std::isfinite(p.value()))
      return Bad(f + ".value", absl::StrCat("must be finite, got ", p.value()));
    WRPN_CHECK(Range(f + ".wall_ms", p.wall_ms(), 0, INT64_MAX));
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const pb::ReportCheckpointRequest& r) {
  WRPN_CHECK(Lease("lease", r.lease()));
  WRPN_CHECK(Range("epoch", r.epoch(), 0, INT64_MAX));
  return Length("path", r.path(), L::kMaxPathBytes, true);
}

absl::Status ValidateRequest(const pb::CompleteTrialRequest& r) {
  WRPN_CHECK(Lease("lease", r.lease()));
  if (r.has_result()) {
    const pb::TrialResult& res = r.result();
    WRPN_CHECK(Finite("result.top1", res.top1(), 0, 100));
    WRPN_CHECK(Finite("result.top5", res.top5(), 0, 100));
    WRPN_CHECK(Finite("result.images_per_sec", res.images_per_sec(), 0, 1e15));
    WRPN_CHECK(Finite("result.cost_uniform", res.cost_uniform(), 0, 1e15));
    WRPN_CHECK(Finite("result.cost_first_last_fp32", res.cost_first_last_fp32(), 0, 1e15));
  } else if (r.has_failure()) {
    WRPN_CHECK(Text("failure.reason", r.failure().reason(), L::kMaxTextBytes));
    WRPN_CHECK(CheckFailureKind(r.failure()));
  } else {
    return Bad("outcome", "give result or failure");
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const pb::ReportLogsRequest& r) {
  WRPN_CHECK(Lease("lease", r.lease()));
  WRPN_CHECK(Range("rank", r.rank(), -1, 1 << 20));
  if (r.lines_size() > L::kMaxLogLines) {
    return Bad("lines", absl::StrCat(r.lines_size(), " lines; at most ", L::kMaxLogLines, " per call"));
  }
  for (int i = 0; i < r.lines_size(); ++i)
    WRPN_CHECK(Text(absl::StrCat("lines[", i, "]"), r.lines(i), L::kMaxTextBytes));
  return absl::OkStatus();
}

FailureKind FailureKindOf(const pb::TrialFailure& f) {
  if (f.failure_kind() != pb::FAILURE_KIND_UNSPECIFIED && pb::FailureKind_IsValid(f.failure_kind()))
    return static_cast<FailureKind>(f.failure_kind());
  return FailureKindFromName(f.kind()).value_or(FailureKind::kInternal);
}

absl::Status ValidateRequest(const pb::ReportRendezvousRequest& r) {
  WRPN_CHECK(Lease("lease", r.lease()));
  return Range("master_port", r.master_port(), 1, 65535);
}

}  // namespace wrpn::server

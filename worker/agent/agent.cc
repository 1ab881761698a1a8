#include "worker/agent/agent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/agent/srun_launcher.h"

namespace wrpn::agent {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void Log(const std::string& msg) {
  std::time_t t = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  std::cerr << stamp << " wrpn-worker: " << msg << std::endl;
}

// A TCP port that is free on this host right now (the kernel's choice for port 0), on loopback
// or, for a store other machines reach, on every address.
int FreePort(bool any_address = false) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(any_address ? INADDR_ANY : INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// Whether a TCPStore could listen on `port` here now (as it does: any address, SO_REUSEADDR).
bool PortFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return true;  // cannot tell; let the trainer try
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::listen(fd, 1) == 0;
  ::close(fd);
  return ok;
}

// Worth retrying: everything but "the lease is not ours" (FAILED_PRECONDITION, NOT_FOUND) and
// "the request is wrong" (INVALID_ARGUMENT, UNIMPLEMENTED). A coordinator shutting down answers
// CANCELLED or UNAVAILABLE; a bad token (UNAUTHENTICATED) is retried until an operator fixes it.
bool Transient(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kUnimplemented:
      return false;
    default:
      return true;
  }
}

int64_t WallMs(const Clock* clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock->Now().time_since_epoch())
      .count();
}

}  // namespace

void SplitHostPort(const std::string& addr, std::string* host, int* port) {
  *host = addr;
  std::string h, p;
  if (!addr.empty() && addr[0] == '[') {
    auto close = addr.find("]:");
    if (close == std::string::npos) {
      if (addr.back() == ']') *host = addr.substr(1, addr.size() - 2);
      return;
    }
    h = addr.substr(1, close - 1);
    p = addr.substr(close + 2);
  } else {
    auto colon = addr.find(':');
    if (colon == std::string::npos || addr.find(':', colon + 1) != std::string::npos) return;
    h = addr.substr(0, colon);
    p = addr.substr(colon + 1);
  }
  int v = 0;
  if (h.empty() || p.empty() || p.find_first_not_of("0123456789") != std::string::npos ||
      p.size() > 5 || (v = std::stoi(p)) < 1 || v > 65535)
    return;
  *host = h;
  *port = v;
}

std::string DescribeLease(const pb::Lease& lease) {
  return absl::StrCat("trial ", lease.trial_id(), " attempt ", lease.attempt(), " (lease ",
                      lease.lease_id(), ")");
}

struct Agent::RunState {
  pb::Lease lease;
  int node_rank = 0;
  int nproc = 1;
  int world_size = 1;
  std::vector<int> gpus;  // local GPU indices held
  std::string dir;        // attempt folder
  std::string ckpt_dir;
  std::vector<std::unique_ptr<Process>> procs;  // by local rank
  std::vector<std::optional<ExitStatus>> exits;
  StopKind stop = StopKind::kNone;
  std::string stop_reason;
  std::optional<Steady> term_sent;
  bool killed = false;
  std::vector<pb::MetricPoint> pending_points;
  Steady last_flush;
  std::optional<pb::ReportCheckpointRequest> pending_checkpoint;
  int64_t epoch = 0, epochs = 0, step = 0;
  int64_t start_epoch = -1;
  std::optional<FinishedEvent> finished;
  std::optional<FailedEvent> failed;
  std::optional<InterruptedEvent> interrupted;
  int failed_rank = -1;
  int first_bad = -1;  // local rank of the first process seen failing
  std::string notes;  // the agent's own lines for the attempt's log
  std::deque<std::pair<int, std::string>> pending_logs;  // (rank or -1, line) for ReportLogs
  Steady last_log_flush;
  std::optional<pb::CompleteTrialRequest> completion;  // decided outcome, not yet acknowledged
  bool awaiting_release = false;  // a gang node > 0 whose ranks ended cleanly
  bool done = false;              // reported or dropped: remove at the end of the step
  std::optional<Steady> retry_at;  // next try of a report the coordinator could not take
  Steady last_output;              // last line from any rank (the stall timeout's clock)
};

absl::Status CheckPathUnderRoots(const std::string& field, const std::string& path,
                                 const std::vector<std::string>& roots) {
  std::error_code ec;
  const fs::path p = fs::absolute(path, ec).lexically_normal();
  for (const std::string& root : roots) {
    const fs::path r = fs::absolute(root, ec).lexically_normal();
    const fs::path rel = p.lexically_relative(r);
    if (!ec && !rel.empty() && *rel.begin() != "..") return absl::OkStatus();
  }
  if (roots.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": '", path, "' is outside the allowed folders (this worker allows none: it runs "
        "with an empty --data-dir and no --allow-data-root)"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": '", path, "' is outside the allowed folders (", absl::StrJoin(roots, ", "),
                   "); give a path under the worker's --data-dir or add --allow-data-root"));
}

Agent::Agent(CoordinatorClient* client, ProcessLauncher* launcher, const Clock* clock,
             AgentOptions options)
    : client_(client), launcher_(launcher), clock_(clock), options_(std::move(options)) {
  checkpoint_root_ = options_.checkpoint_dir.empty()
                         ? (fs::path(options_.work_dir) / "checkpoints").string()
                         : options_.checkpoint_dir;
  std::error_code ec;
  checkpoint_root_ = fs::absolute(checkpoint_root_, ec).lexically_normal().string();
  gpu_busy_.assign(options_.gpus.size(), false);
}

Agent::~Agent() {
  for (auto& r : runs_) {
    for (auto& p : r->procs) {
      if (p) p->Kill();
    }
  }
}

pb::LeaseRef Agent::Ref(const RunState& r) const {
  pb::LeaseRef ref;
  ref.set_lease_id(r.lease.lease_id());
  ref.set_fencing_token(r.lease.fencing_token());
  return ref;
}

int Agent::FreeGpus() const {
  return static_cast<int>(std::count(gpu_busy_.begin(), gpu_busy_.end(), false));
}

int Agent::FreeCpuSlots() const {
  int used = 0;
  for (const auto& r : runs_) {
    if (r->lease.gpus_per_node() == 0) ++used;
  }
  return std::max(0, options_.max_cpu_trials - used);
}

void Agent::LogThrottled(const std::string& msg) {
  const Steady now = clock_->SteadyNow();
  auto it = last_logged_.find(msg);
  if (it != last_logged_.end() && now - it->second < std::chrono::seconds(10)) return;
  if (last_logged_.size() > 100) last_logged_.clear();
  last_logged_[msg] = now;
  Log(msg);
}

void Agent::Register() {
  pb::RegisterWorkerRequest req;
  req.set_name(options_.name);
  req.set_address(options_.rendezvous_port > 0
                      ? (options_.address.find(':') != std::string::npos
                             ? absl::StrCat("[", options_.address, "]:", options_.rendezvous_port)
                             : absl::StrCat(options_.address, ":", options_.rendezvous_port))
                      : options_.address);
  for (const auto& g : options_.gpus) *req.add_gpus() = g;
  req.set_cpus(options_.cpus);
  for (const auto& [k, v] : options_.labels) (*req.mutable_labels())[k] = v;
  req.set_max_cpu_trials(options_.max_cpu_trials);
  auto resp = client_->RegisterWorker(req);
  if (!resp.ok()) {
    LogThrottled(absl::StrCat("register: ", resp.status().message(), "; retrying"));
    next_register_ = clock_->SteadyNow() + options_.register_retry;
    return;
  }
  worker_id_ = resp->worker_id();
  heartbeat_interval_ = std::chrono::milliseconds(
      std::max<int64_t>(1, resp->heartbeat_interval_ms() > 0 ? resp->heartbeat_interval_ms()
                                                             : resp->lease_ttl_ms() / 3));
  next_heartbeat_ = clock_->SteadyNow() + heartbeat_interval_;
  next_acquire_ = clock_->SteadyNow();
  Log(absl::StrCat("registered as ", worker_id_, " (", options_.name, ", ", options_.gpus.size(),
                   " GPUs, ", options_.cpus, " CPUs); heartbeat every ",
                   heartbeat_interval_.count(), " ms"));
}

void Agent::Step() {
  const Steady now = clock_->SteadyNow();
  if (drain_requested_.load() && !drain_applied_) {
    drain_applied_ = true;
    draining_ = true;
    Log("draining: acquiring nothing new, interrupting running trials");
    for (auto& r : runs_) {
      if (!r->done && !r->completion && !r->awaiting_release && r->stop == StopKind::kNone)
        RequestStop(*r, StopKind::kDrain, "worker shutting down");
    }
  }
  // Trainers are supervised and their reports (which carry leases, not the worker id) go on
  // even while (re-)registration fails.
  if (!registered() && (!next_register_ || now >= *next_register_)) Register();
  if (!next_cleanup_ || now >= *next_cleanup_) {
    CleanUp();
    next_cleanup_ = now + std::chrono::hours(1);
  }
  for (auto& r : runs_) Poll(*r);
  for (auto& r : runs_) {
    if (r->done) continue;
    if (r->term_sent && !r->killed && clock_->SteadyNow() - *r->term_sent >= options_.grace) {
      Note(*r, absl::StrCat("no exit ", options_.grace.count(), " ms after SIGTERM: SIGKILL\n"));
      Log(absl::StrCat(DescribeLease(r->lease), ": grace period over, sending SIGKILL"));
      for (size_t i = 0; i < r->procs.size(); ++i) {
        if (!r->exits[i]) r->procs[i]->Kill();
      }
      r->killed = true;
    }
    FlushMetrics(*r, false);
    FlushCheckpoint(*r);
    FlushLogs(*r, false);
    if (r->completion) TryComplete(*r);
  }
  if (registered() && next_heartbeat_ && clock_->SteadyNow() >= *next_heartbeat_) Heartbeat();
  for (auto& r : runs_) {
    if (!r->done) continue;
    for (int g : r->gpus) gpu_busy_[g] = false;
    r->gpus.clear();
  }
  runs_.erase(std::remove_if(runs_.begin(), runs_.end(),
                             [](const std::unique_ptr<RunState>& r) { return r->done; }),
              runs_.end());
  if (registered() && !draining_ && (!next_acquire_ || clock_->SteadyNow() >= *next_acquire_)) {
    Acquire();
  }
}

void Agent::Heartbeat() {
  pb::HeartbeatRequest req;
  req.set_worker_id(worker_id_);
  for (const auto& r : runs_) {
    if (r->done || r->stop == StopKind::kCancel || r->stop == StopKind::kForget ||
        r->stop == StopKind::kLeaseLost)
      continue;
    pb::LeaseProgress* p = req.add_leases();
    *p->mutable_lease() = Ref(*r);
    p->set_epoch(r->epoch);
    p->set_fraction(r->epochs > 0 ? std::min(1.0, static_cast<double>(r->epoch) / r->epochs) : 0);
  }
  auto resp = client_->Heartbeat(req);
  next_heartbeat_ = clock_->SteadyNow() + heartbeat_interval_;
  if (!resp.ok()) {
    if (resp.status().code() == absl::StatusCode::kNotFound) {
      Log(absl::StrCat("heartbeat: ", resp.status().message(), "; registering again"));
      worker_id_.clear();
      next_register_.reset();
      return;
    }
    LogThrottled(absl::StrCat("heartbeat: ", resp.status().message()));
    heartbeat_failing_ = true;
    // Retry sooner than a full interval so a short outage does not cost the leases.
    next_heartbeat_ = clock_->SteadyNow() + std::max(std::chrono::milliseconds(100),
                                                     heartbeat_interval_ / 4);
    return;
  }
  if (heartbeat_failing_) {
    heartbeat_failing_ = false;
    Log(absl::StrCat("heartbeat: coordinator reachable again (", req.leases_size(),
                     " lease(s) renewed)"));
  }
  if (resp->lease_ttl_ms() > 0) {  // follow a coordinator restarted with another TTL
    heartbeat_interval_ = std::chrono::milliseconds(std::max<int64_t>(1, resp->lease_ttl_ms() / 3));
    next_heartbeat_ = clock_->SteadyNow() + heartbeat_interval_;
  }
  for (const pb::WorkerCommand& c : resp->commands()) {
    if (c.kind() == pb::WorkerCommand::DRAIN) {
      if (!draining_) Log("coordinator asks to drain: finishing running trials, taking no more");
      draining_ = true;
      continue;
    }
    for (auto& r : runs_) {
      if (r->done || r->lease.lease_id() != c.lease().lease_id() ||
          r->lease.fencing_token() != c.lease().fencing_token())
        continue;
      const bool cancel = c.kind() == pb::WorkerCommand::CANCEL_TRIAL;
      const std::string why = !c.reason().empty() ? c.reason()
                              : cancel            ? "cancelled by the coordinator"
                                                  : "the coordinator no longer holds the lease";
      if (r->completion || r->awaiting_release || r->exits.empty()) {
        Forget(*r, why);
      } else {
        RequestStop(*r, cancel ? StopKind::kCancel : StopKind::kForget, why);
      }
    }
  }
}

void Agent::Acquire() {
  next_acquire_ = clock_->SteadyNow() + options_.acquire_interval;
  const int free_gpus = FreeGpus();
  const int want = free_gpus + FreeCpuSlots();
  if (want <= 0) return;
  pb::AcquireTrialRequest req;
  req.set_worker_id(worker_id_);
  req.set_free_gpus(free_gpus);
  req.set_max_trials(want);
  auto resp = client_->AcquireTrial(req);
  if (!resp.ok()) {
    if (resp.status().code() == absl::StatusCode::kNotFound) {
      Log(absl::StrCat("acquire: ", resp.status().message(), "; registering again"));
      worker_id_.clear();
      next_register_.reset();
      return;
    }
    LogThrottled(absl::StrCat("acquire: ", resp.status().message()));
    return;
  }
  for (const pb::Lease& l : resp->leases()) Start(l);
}

void Agent::Note(RunState& r, const std::string& text) {
  r.notes += text;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    QueueLog(r, -1, text.substr(start, nl - start));
    start = nl + 1;
  }
}

void Agent::QueueLog(RunState& r, int rank, std::string line) {
  if (!logs_supported_) return;
  constexpr size_t kMaxPendingLines = 20000;
  if (r.pending_logs.empty()) r.last_log_flush = clock_->SteadyNow();  // a new batch starts
  r.pending_logs.emplace_back(rank, std::move(line));
  if (r.pending_logs.size() > kMaxPendingLines) r.pending_logs.pop_front();
}

// Log lines are best effort: a failure never holds up the attempt's other reports.
void Agent::FlushLogs(RunState& r, bool force) {
  if (r.done || r.pending_logs.empty() || !logs_supported_) return;
  if (!force && clock_->SteadyNow() - r.last_log_flush < options_.metrics_interval) return;
  r.last_log_flush = clock_->SteadyNow();
  constexpr int kMaxLinesPerCall = 500;
  while (!r.pending_logs.empty()) {
    pb::ReportLogsRequest req;
    *req.mutable_lease() = Ref(r);
    const int rank = r.pending_logs.front().first;
    req.set_rank(rank);
    size_t n = 0;
    while (n < r.pending_logs.size() && r.pending_logs[n].first == rank &&
           req.lines_size() < kMaxLinesPerCall) {
      req.add_lines(r.pending_logs[n].second);
      ++n;
    }
    absl::Status s = client_->ReportLogs(req);
    if (s.code() == absl::StatusCode::kUnimplemented) {
      Log("the coordinator does not take trial logs (ReportLogs unimplemented); keeping them "
          "in the attempt folders only");
      logs_supported_ = false;
      r.pending_logs.clear();
      return;
    }
    if (!s.ok() && Transient(s)) return;  // keep them for the next flush
    r.pending_logs.erase(r.pending_logs.begin(), r.pending_logs.begin() + static_cast<long>(n));
  }
}

void Agent::Fail(RunState& r, FailureKind kind, const std::string& reason) {
  pb::CompleteTrialRequest req;
  *req.mutable_lease() = Ref(r);
  req.mutable_failure()->set_kind(std::string(FailureKindName(kind)));
  req.mutable_failure()->set_failure_kind(static_cast<pb::FailureKind>(kind));
  req.mutable_failure()->set_reason(reason);
  Note(r, absl::StrCat("attempt failed (", FailureKindName(kind), "): ", reason, "\n"));
  r.completion = std::move(req);
}

void Agent::Forget(RunState& r, const std::string& why) {
  Log(absl::StrCat(DescribeLease(r.lease), ": dropped (", why, ")"));
  Note(r, absl::StrCat("lease dropped: ", why, "\n"));
  WriteLogs(r);
  for (int g : r.gpus) gpu_busy_[g] = false;
  r.gpus.clear();
  r.done = true;
}

void Agent::Start(const pb::Lease& lease) {
  auto run = std::make_unique<RunState>();
  RunState& r = *run;
  r.lease = lease;
  r.last_flush = clock_->SteadyNow();
  r.last_output = r.last_flush;
  runs_.push_back(std::move(run));
  const bool gang = lease.has_rendezvous() && lease.rendezvous().nnodes() > 1;
  r.node_rank = gang ? lease.rendezvous().node_rank() : 0;
  const int nnodes = gang ? lease.rendezvous().nnodes() : 1;
  r.nproc = lease.gpus_per_node() > 0 ? lease.gpus_per_node() : std::max(1, options_.cpu_ranks);
  r.world_size = nnodes * r.nproc;
  Log(absl::StrCat("leased ", DescribeLease(lease), gang ? absl::StrCat(", node ", r.node_rank, "/", nnodes) : "",
                   ", ", r.nproc, " rank(s)",
                   lease.resume_checkpoint().empty()
                       ? ""
                       : absl::StrCat(", resuming from ", lease.resume_checkpoint())));

  if (lease.gpus_per_node() > 0) {
    for (size_t i = 0; i < gpu_busy_.size() && static_cast<int>(r.gpus.size()) < r.nproc; ++i) {
      if (!gpu_busy_[i]) r.gpus.push_back(static_cast<int>(i));
    }
    if (static_cast<int>(r.gpus.size()) < r.nproc) {
      r.gpus.clear();
      Fail(r, FailureKind::kInternal, absl::StrCat("worker ", options_.name, " has ", FreeGpus(),
                                       " free GPUs, the trial needs ", r.nproc));
      return;
    }
    for (int g : r.gpus) gpu_busy_[g] = true;
  }

  json config = json::parse(lease.trial_config_json(), nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    Fail(r, FailureKind::kConfig, "trial_config_json is not a JSON object");
    return;
  }
  std::error_code ec;
  const std::string suffix = absl::StrCat("t", lease.trial_id(), "-a", lease.attempt(), "-n",
                                          r.node_rank);
  r.dir = fs::absolute(fs::path(options_.work_dir) / "attempts" / suffix, ec).lexically_normal();
  r.ckpt_dir = (fs::path(checkpoint_root_) / absl::StrCat("trial-", lease.trial_id()) /
                (r.node_rank == 0 ? absl::StrCat("attempt-", lease.attempt())
                                  : absl::StrCat("attempt-", lease.attempt(), "-node-",
                                                 r.node_rank)))
                   .string();
  fs::create_directories(r.dir, ec);
  if (!ec) fs::create_directories(r.ckpt_dir, ec);
  if (ec) {
    Fail(r, FailureKind::kInternal, absl::StrCat("cannot create the attempt folders ", r.dir, " and ",
                                     r.ckpt_dir, ": ", ec.message()));
    return;
  }
  config["checkpoint_dir"] = r.ckpt_dir;
  config["resume"] = false;
  if (!lease.resume_checkpoint().empty() &&
      !CheckPathUnderRoots("resume_checkpoint", lease.resume_checkpoint(), {checkpoint_root_}).ok()) {
    // Checkpoints are only ever written under the checkpoint root; a path elsewhere is not ours
    // to read (or to copy into a trial).
    Note(r, absl::StrCat("checkpoint ", lease.resume_checkpoint(),
                         " is outside this worker's checkpoint root ", checkpoint_root_,
                         "; starting from epoch 0\n"));
    Log(absl::StrCat(DescribeLease(lease), ": checkpoint ", lease.resume_checkpoint(),
                     " is outside the checkpoint root ", checkpoint_root_, "; not used"));
  } else if (!lease.resume_checkpoint().empty()) {
    const fs::path src = lease.resume_checkpoint();
    const fs::path dst = fs::path(r.ckpt_dir) / "last.pt";
    if (fs::is_regular_file(src, ec)) {
      fs::remove(dst, ec);
      fs::create_hard_link(src, dst, ec);
      if (ec) {
        ec.clear();
        fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
      }
      if (ec) {
        Fail(r, FailureKind::kInternal, absl::StrCat("cannot copy checkpoint ", src.string(), " to ",
                                         dst.string(), ": ", ec.message()));
        return;
      }
      config["resume"] = true;
      Note(r, absl::StrCat("resuming from ", src.string(), " (epoch ", lease.resume_epoch(),
                              ")\n"));
    } else {
      Note(r, absl::StrCat("checkpoint ", src.string(),
                              " is not readable on this worker (no shared checkpoint storage?); "
                              "starting from epoch 0\n"));
      Log(absl::StrCat(DescribeLease(lease), ": checkpoint ", src.string(),
                       " is not readable here; starting from epoch 0"));
    }
  }
  if (!lease.init_checkpoint().empty()) {  // recipe.init_from: fp32
    if (absl::Status st = CheckPathUnderRoots("init_checkpoint", lease.init_checkpoint(), {checkpoint_root_});
        !st.ok()) {
      Fail(r, FailureKind::kConfig, std::string(st.message()));
      return;
    }
    config["init_checkpoint"] = lease.init_checkpoint();
  }
  if (!options_.data_dir.empty() && config.contains("dataset") && config["dataset"].is_object()) {
    json& d = config["dataset"];
    const std::string kind = d.value("kind", std::string("fashion_mnist"));
    const std::string path = d.value("path", std::string());
    if (kind != "synthetic") {
      std::string sub = kind;
      std::replace(sub.begin(), sub.end(), '_', '-');
      if (path.empty()) d["path"] = (fs::path(options_.data_dir) / sub).string();
      else if (fs::path(path).is_relative()) d["path"] = (fs::path(options_.data_dir) / path).string();
    }
  }
  if (config.contains("dataset") && config["dataset"].is_object()) {
    std::vector<std::string> roots = options_.allowed_data_roots;
    if (!options_.data_dir.empty()) roots.push_back(options_.data_dir);
    const json& d = config["dataset"];
    const std::string path = d.contains("path") && d["path"].is_string() ? d["path"].get<std::string>() : "";
    if (d.value("kind", std::string()) != "synthetic" && !path.empty()) {
      if (absl::Status st = CheckPathUnderRoots("dataset.path", path, roots); !st.ok()) {
        Fail(r, FailureKind::kConfig, std::string(st.message()));
        return;
      }
    }
  }
  if (lease.gpus_per_node() == 0) config["device"] = "cpu";
  // Share the cores among the ranks of every trial this worker may run at once.
  const int concurrent =
      lease.gpus_per_node() == 0
          ? std::max(1, options_.max_cpu_trials)
          : std::max<int>(1, static_cast<int>(options_.gpus.size()) / lease.gpus_per_node());
  const int rank_cores = std::max(1, options_.cpus / (r.nproc * concurrent));
  if (config.value("device", std::string()) == "cpu" && config.value("threads", 0) == 0) {
    config["threads"] = rank_cores;
  }
  if (config.value("cpu_cores", 0) == 0) config["cpu_cores"] = rank_cores;  // the loader's threads
  const std::string config_path = (fs::path(r.dir) / "trial.json").string();
  {
    std::ofstream out(config_path + ".tmp");
    out << config.dump(2) << "\n";
    out.close();
    if (!out) {
      Fail(r, FailureKind::kInternal, absl::StrCat("cannot write ", config_path));
      return;
    }
    fs::rename(config_path + ".tmp", config_path, ec);
    if (ec) {
      Fail(r, FailureKind::kInternal, absl::StrCat("cannot write ", config_path, ": ", ec.message()));
      return;
    }
  }

  std::string master_addr = "127.0.0.1";
  int master_port = 0;
  if (gang) {
    master_port = lease.rendezvous().master_port();
    // A fixed port the rank-0 worker registered ("host:port", --rendezvous-port) wins.
    SplitHostPort(lease.rendezvous().master_addr(), &master_addr, &master_port);
    if (r.node_rank == 0) {
      if (master_port == 0) master_port = FreePort(/*any_address=*/true);
      if (master_port == 0 || !PortFree(master_port)) {
        // Fail fast (and retryably) instead of letting every rank wait for a store that cannot
        // start.
        Fail(r, FailureKind::kInternal,
             absl::StrCat("rendezvous port ", master_port, " is in use on worker ", options_.name,
                          " (rank 0 hosts the TCPStore there; free it or set --rendezvous-port)"));
        return;
      }
      // The other nodes get their leases, carrying this port, once the coordinator has it.
      pb::ReportRendezvousRequest rr;
      *rr.mutable_lease() = Ref(r);
      rr.set_master_port(master_port);
      if (absl::Status st = client_->ReportRendezvous(rr); !st.ok()) {
        Fail(r, FailureKind::kInternal,
             absl::StrCat("cannot report rendezvous port ", master_port,
                          " to the coordinator: ", st.message()));
        return;
      }
    } else if (master_port == 0) {
      Fail(r, FailureKind::kInternal,
           absl::StrCat("the coordinator sent node rank ", r.node_rank,
                        " no rendezvous port (rank 0 has not reported one)"));
      return;
    }
  } else if (r.world_size > 1) {
    master_port = FreePort();
  }
  // A gang this worker holds whole runs as one Slurm step (srun_launcher.h): one process.
  const bool one_step = gang && lease.rendezvous().single_step();
  const int launches = one_step ? 1 : r.nproc;
  r.procs.resize(launches);
  r.exits.resize(launches);
  for (int local = 0; local < launches; ++local) {
    ProcessSpec spec;
    spec.argv = {options_.trainer, "train", "--config", config_path};
    if (r.world_size > 1 && options_.rendezvous_timeout_s > 0) {
      spec.argv.push_back("--rendezvous-timeout");
      spec.argv.push_back(absl::StrCat(options_.rendezvous_timeout_s));
    }
    spec.cwd = r.dir;
    spec.stderr_tail_bytes = options_.log_tail_bytes;
    if (one_step) {
      SetUpSlurmStep(lease, r.nproc, master_port, config.value("device", std::string()) == "cpu",
                     &spec);
    } else if (r.world_size > 1) {
      spec.env["MASTER_ADDR"] = master_addr;
      spec.env["MASTER_PORT"] = std::to_string(master_port);
      spec.env["WORLD_SIZE"] = std::to_string(r.world_size);
      spec.env["RANK"] = std::to_string(r.node_rank * r.nproc + local);
      spec.env["LOCAL_RANK"] = std::to_string(local);
      spec.env["LOCAL_WORLD_SIZE"] = std::to_string(r.nproc);
      spec.env["GROUP_RANK"] = std::to_string(r.node_rank);
      spec.env["NODE_RANK"] = std::to_string(r.node_rank);
    }
    if (lease.gpus_per_node() > 0) {
      std::vector<std::string> ids;
      for (int g : r.gpus) ids.push_back(std::to_string(options_.gpus[g].index()));
      spec.env["CUDA_VISIBLE_DEVICES"] = absl::StrJoin(ids, ",");
    } else {
      spec.env["CUDA_VISIBLE_DEVICES"] = "";
    }
    spec.env["WRPN_TRIAL_ID"] = std::to_string(lease.trial_id());
    spec.env["WRPN_ATTEMPT"] = std::to_string(lease.attempt());
    auto p = launcher_->Launch(spec);
    if (!p.ok()) {
      const std::string reason =
          absl::StrCat("cannot start rank ", r.node_rank * r.nproc + local, ": ",
                       p.status().message());
      Log(absl::StrCat(DescribeLease(lease), ": ", reason));
      Note(r, reason + "\n");
      // Ranks already started are stopped; the attempt is reported once they have exited.
      r.procs.resize(local);
      r.exits.resize(local);
      if (local == 0) {
        Fail(r, FailureKind::kInternal, reason);
      } else {
        r.failed = FailedEvent{FailureKind::kInternal, reason};
        RequestStop(r, StopKind::kPeerFailed, reason);
      }
      return;
    }
    r.procs[local] = *std::move(p);
  }
  Note(r, absl::StrCat("started ", r.nproc, " rank(s) of world size ", r.world_size,
                          r.world_size > 1 ? absl::StrCat(" (MASTER_ADDR ", master_addr,
                                                          ":", master_port, ")")
                                           : "",
                          "\n"));
  WriteLogs(r);
}

void Agent::RequestStop(RunState& r, StopKind kind, const std::string& reason) {
  if (r.stop == StopKind::kNone || kind == StopKind::kCancel || kind == StopKind::kForget ||
      kind == StopKind::kLeaseLost) {
    r.stop = kind;
    r.stop_reason = reason;
  }
  if (r.term_sent) return;
  Log(absl::StrCat(DescribeLease(r.lease), ": stopping (", reason, "): SIGTERM"));
  Note(r, absl::StrCat("stopping: ", reason, "; SIGTERM sent\n"));
  r.term_sent = clock_->SteadyNow();
  for (size_t i = 0; i < r.procs.size(); ++i) {
    if (!r.exits[i]) r.procs[i]->Terminate();
  }
}

// Applies one trainer event to the run (common/trainer_protocol.h). Every rank's failure counts
// (the leader's first); everything else only from the leader.
struct Agent::EventHandler {
  Agent& agent;
  RunState& r;
  int local_rank;
  bool leader;

  void operator()(const FailedEvent& e) {
    if (!r.failed || leader) {
      r.failed = e;
      r.failed_rank = r.node_rank * r.nproc + local_rank;
    }
  }
  void operator()(const StartedEvent& e) {
    if (!leader) return;
    r.start_epoch = e.start_epoch;
    r.epoch = r.start_epoch;
    r.epochs = e.epochs();
    agent.Note(r, absl::StrCat("trainer started at epoch ", r.start_epoch, "\n"));
  }
  void operator()(const EpochEvent& e) {
    if (!leader) return;
    r.epoch = e.epoch + 1;
    if (e.epochs > 0) r.epochs = e.epochs;
    const int64_t wall = WallMs(agent.clock_);
    if (r.pending_points.empty()) r.last_flush = agent.clock_->SteadyNow();  // a new batch starts
    for (const auto& [name, v] : e.Metrics()) {
      if (!std::isfinite(v)) continue;
      pb::MetricPoint p;
      p.set_name(std::string(name));
      p.set_step(e.epoch);
      p.set_value(v);
      p.set_wall_ms(wall);
      r.pending_points.push_back(std::move(p));
    }
  }
  void operator()(const CheckpointEvent& e) {
    if (!leader || e.path.empty()) return;
    pb::ReportCheckpointRequest req;
    *req.mutable_lease() = agent.Ref(r);
    req.set_epoch(e.epoch);
    req.set_path(e.path);
    // Only the newest checkpoint matters; metrics up to it go first.
    agent.FlushMetrics(r, true);
    r.pending_checkpoint = std::move(req);
    agent.FlushCheckpoint(r);
  }
  void operator()(const FinishedEvent& e) {
    if (leader) r.finished = e;
  }
  void operator()(const InterruptedEvent& e) {
    if (!leader) return;
    r.interrupted = e;
    r.epoch = e.epoch;
    r.step = e.step;
  }
};

void Agent::HandleEvent(RunState& r, int local_rank, const std::string& line) {
  absl::StatusOr<std::optional<TrainerEvent>> e = ParseEventLine(line);
  if (!e.ok()) {
    Note(r, absl::StrCat("ignored malformed event: ", e.status().message(), "\n"));
    return;
  }
  if (!*e) return;  // not an event
  const bool leader = r.node_rank == 0 && local_rank == 0;
  std::visit(EventHandler{*this, r, local_rank, leader}, **e);
}

void Agent::Poll(RunState& r) {
  if (r.done || r.completion || r.awaiting_release) return;
  bool all_exited = true;
  for (size_t i = 0; i < r.procs.size(); ++i) {
    for (const std::string& line : r.procs[i]->TakeStdoutLines()) {
      r.last_output = clock_->SteadyNow();
      HandleEvent(r, static_cast<int>(i), line);
    }
    for (std::string& line : r.procs[i]->TakeStderrLines()) {
      r.last_output = clock_->SteadyNow();
      QueueLog(r, r.node_rank * r.nproc + static_cast<int>(i), std::move(line));
    }
    if (r.done) return;  // a report showed the lease is gone
    if (!r.exits[i]) {
      r.exits[i] = r.procs[i]->Exited();
      if (r.exits[i]) {
        const int rank = r.node_rank * r.nproc + static_cast<int>(i);
        Note(r, absl::StrCat("rank ", rank, ": ", r.exits[i]->Describe(), "\n"));
        if (!r.exits[i]->ok() && r.first_bad < 0) r.first_bad = static_cast<int>(i);
        if (!r.exits[i]->ok() && r.stop == StopKind::kNone && r.procs.size() > 1) {
          RequestStop(r, StopKind::kPeerFailed,
                      absl::StrCat("rank ", rank, " ended with ", r.exits[i]->Describe()));
        }
      }
    }
    if (!r.exits[i]) all_exited = false;
  }
  if (all_exited) {
    Finish(r);
    return;
  }
  if (options_.stall_timeout.count() > 0 && r.stop == StopKind::kNone &&
      clock_->SteadyNow() - r.last_output >= options_.stall_timeout) {
    const std::string why =
        absl::StrCat("no output from the trainer for ", options_.stall_timeout.count() / 1000.0,
                     " s (stall timeout): taken as hung");
    Log(absl::StrCat(DescribeLease(r.lease), ": ", why));
    RequestStop(r, StopKind::kStalled, why);
  }
}

void Agent::Finish(RunState& r) {
  for (auto& p : r.procs) {
    for (std::string& line : p->TakeStderrLines())
      QueueLog(r, r.node_rank * r.nproc + static_cast<int>(&p - r.procs.data()), std::move(line));
  }
  WriteLogs(r);
  for (int g : r.gpus) gpu_busy_[g] = false;
  r.gpus.clear();
  if (r.stop == StopKind::kCancel || r.stop == StopKind::kForget ||
      r.stop == StopKind::kLeaseLost) {
    Forget(r, r.stop_reason);  // the coordinator ended the attempt: nothing more to report
    return;
  }
  FlushMetrics(r, true);
  FlushCheckpoint(r);
  if (r.done) return;
  const ExitStatus& lead = *r.exits[0];
  const int bad = r.first_bad;
  const bool all_ok = bad < 0;
  if (r.node_rank == 0 && lead.ok() && r.finished) {
    const FinishedEvent& f = *r.finished;
    pb::CompleteTrialRequest req;
    *req.mutable_lease() = Ref(r);
    pb::TrialResult* res = req.mutable_result();
    res->set_top1(f.top1);
    res->set_top5(f.top5);
    res->set_images_per_sec(f.images_per_sec);
    res->set_cost_uniform(f.cost_uniform);
    res->set_cost_first_last_fp32(f.cost_first_last_fp32);
    Note(r, absl::StrCat("finished: top1 ", res->top1(), "\n"));
    r.completion = std::move(req);
  } else if (r.node_rank > 0 && all_ok) {
    // Rank 0's worker reports the result; keep the lease alive until the coordinator lets go.
    Note(r, "all ranks of this node finished; waiting for rank 0's report\n");
    r.awaiting_release = true;
  } else if (r.stop == StopKind::kStalled) {
    const ExitStatus& e = *r.exits[bad >= 0 ? bad : 0];
    const std::string reason = absl::StrCat(r.stop_reason, "; trainer rank ",
                                            r.node_rank * r.nproc + (bad >= 0 ? bad : 0), " ",
                                            e.Describe());
    Log(absl::StrCat(DescribeLease(r.lease), ": failed: ", reason));
    Fail(r, FailureKind::kInternal, reason);
  } else if (r.stop == StopKind::kDrain) {
    const std::string where =
        r.interrupted ? absl::StrCat("interrupted at epoch ", r.interrupted->epoch, " step ",
                                     r.interrupted->step,
                                     r.interrupted->checkpointed
                                         ? " (checkpoint saved)"
                                         : " (no checkpoint)")
                      : absl::StrCat("stopped with ", lead.Describe());
    Fail(r, FailureKind::kInterrupted, absl::StrCat("worker ", options_.name, " shutting down: ", where));
  } else {
    const int i = bad >= 0 ? bad : 0;
    const ExitStatus& e = *r.exits[i];
    std::string reason = absl::StrCat("trainer rank ", r.node_rank * r.nproc + i, " ",
                                      e.ok() ? "exited 0 without a finished event" : e.Describe());
    FailureKind kind = FailureKindForExit(e.exit_code, e.signal);
    if (r.failed) {
      kind = r.failed->kind;
      absl::StrAppend(&reason, ": ", r.failed->reason);
    } else if (r.interrupted && e.signal == 0 && e.exit_code == kExitInterrupted) {
      absl::StrAppend(&reason, ": interrupted at epoch ", r.interrupted->epoch);
    }
    if (r.stop == StopKind::kPeerFailed && !r.stop_reason.empty() && bad < 0) {
      absl::StrAppend(&reason, " (", r.stop_reason, ")");
    }
    Log(absl::StrCat(DescribeLease(r.lease), ": failed: ", reason));
    Fail(r, kind, reason);
  }
  TryComplete(r);
}

void Agent::TryComplete(RunState& r) {
  if (r.done || !r.completion) return;
  if (r.retry_at && clock_->SteadyNow() < *r.retry_at) return;
  // Everything the trainer said goes before the outcome.
  FlushMetrics(r, true);
  FlushCheckpoint(r);
  if (r.done) return;
  if (!r.pending_points.empty() || r.pending_checkpoint) {  // the coordinator is unreachable
    r.retry_at = clock_->SteadyNow() + std::chrono::seconds(1);
    return;
  }
  FlushLogs(r, true);
  absl::Status s = client_->CompleteTrial(*r.completion);
  if (s.ok()) {
    const bool success = r.completion->has_result();
    Log(absl::StrCat(DescribeLease(r.lease), success ? ": succeeded" : ": reported failure: ",
                     success ? "" : r.completion->failure().reason()));
    Note(r, success ? "reported success\n" : "reported failure\n");
    WriteLogs(r);
    if (success && !options_.keep_checkpoints && !r.lease.keep_checkpoint()) {
      std::error_code ec;
      fs::remove_all(fs::path(checkpoint_root_) / absl::StrCat("trial-", r.lease.trial_id()), ec);
    }
    r.done = true;
    return;
  }
  if (Transient(s)) {
    LogThrottled(absl::StrCat(DescribeLease(r.lease), ": CompleteTrial: ", s.message(),
                              "; will retry"));
    r.retry_at = clock_->SteadyNow() + std::chrono::seconds(1);
    return;
  }
  Forget(r, absl::StrCat("CompleteTrial refused: ", s.message()));
}

void Agent::FlushMetrics(RunState& r, bool force) {
  if (r.done || r.pending_points.empty()) return;
  const Steady now = clock_->SteadyNow();
  if (!force && now - r.last_flush < options_.metrics_interval) return;
  pb::ReportMetricsRequest req;
  *req.mutable_lease() = Ref(r);
  for (auto& p : r.pending_points) *req.add_points() = p;
  auto resp = client_->ReportMetrics(req);
  r.last_flush = now;
  if (resp.ok()) {
    r.pending_points.clear();
    return;
  }
  if (Transient(resp.status())) {
    constexpr size_t kMaxPending = 100000;
    if (r.pending_points.size() > kMaxPending) {
      r.pending_points.erase(r.pending_points.begin(),
                             r.pending_points.end() - static_cast<long>(kMaxPending));
    }
    return;
  }
  if (resp.status().code() == absl::StatusCode::kInvalidArgument) {
    Note(r, absl::StrCat("metrics rejected: ", resp.status().message(), "\n"));
    r.pending_points.clear();
    return;
  }
  r.pending_points.clear();
  if (r.completion || r.awaiting_release || r.exits.empty() ||
      std::all_of(r.exits.begin(), r.exits.end(), [](const auto& e) { return e.has_value(); })) {
    Forget(r, absl::StrCat("lease lost: ", resp.status().message()));
  } else {
    RequestStop(r, StopKind::kLeaseLost, absl::StrCat("lease lost: ", resp.status().message()));
  }
}

void Agent::FlushCheckpoint(RunState& r) {
  if (r.done || !r.pending_checkpoint) return;
  absl::Status s = client_->ReportCheckpoint(*r.pending_checkpoint);
  if (s.ok()) {
    Note(r, absl::StrCat("checkpoint at epoch ", r.pending_checkpoint->epoch(), ": ",
                            r.pending_checkpoint->path(), "\n"));
    r.pending_checkpoint.reset();
    return;
  }
  if (Transient(s)) return;
  r.pending_checkpoint.reset();
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    Note(r, absl::StrCat("checkpoint rejected: ", s.message(), "\n"));
    return;
  }
  if (r.completion || r.awaiting_release ||
      std::all_of(r.exits.begin(), r.exits.end(), [](const auto& e) { return e.has_value(); })) {
    Forget(r, absl::StrCat("lease lost: ", s.message()));
  } else {
    RequestStop(r, StopKind::kLeaseLost, absl::StrCat("lease lost: ", s.message()));
  }
}

void Agent::WriteLogs(RunState& r) {
  if (r.dir.empty()) return;
  std::error_code ec;
  if (!fs::is_directory(r.dir, ec)) return;
  for (size_t i = 0; i < r.procs.size(); ++i) {
    std::ofstream out(fs::path(r.dir) / absl::StrCat("rank-", r.node_rank * r.nproc + i, ".log"),
                      std::ios::trunc);
    out << r.procs[i]->StderrTail();
  }
  std::ofstream notes(fs::path(r.dir) / "agent.log", std::ios::trunc);
  notes << r.notes;
}

int Agent::CleanUp() {
  const auto cutoff = fs::file_time_type::clock::now() - options_.retention;
  std::set<std::string> in_use;
  for (const auto& r : runs_) {
    in_use.insert(r->dir);
    in_use.insert(fs::path(r->ckpt_dir).parent_path().string());
  }
  int removed = 0;
  auto newest = [](const fs::path& p) {
    std::error_code ec;
    auto t = fs::last_write_time(p, ec);
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      auto m = fs::last_write_time(it->path(), ec);
      if (!ec && m > t) t = m;
    }
    return t;
  };
  for (const fs::path root : {fs::path(options_.work_dir) / "attempts", fs::path(checkpoint_root_)}) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    std::vector<fs::path> old;
    for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::end(it); it.increment(ec)) {
      const fs::path p = fs::absolute(it->path(), ec).lexically_normal();
      if (in_use.count(p.string())) continue;
      if (newest(p) < cutoff) old.push_back(p);
    }
    for (const auto& p : old) {
      std::error_code rm;
      fs::remove_all(p, rm);
      if (!rm) ++removed;
    }
  }
  if (removed > 0) Log(absl::StrCat("retention: removed ", removed, " old attempt folder(s)"));
  return removed;
}

void Agent::Run(const std::atomic<bool>& stop, std::chrono::milliseconds poll) {
  while (!stop.load() && !drain_requested_.load()) {
    Step();
    std::this_thread::sleep_for(poll);
  }
  RequestDrain();
  const auto deadline = std::chrono::steady_clock::now() + options_.grace + poll * 20 +
                        std::chrono::seconds(5);
  do {
    Step();
    if (runs_.empty()) break;
    std::this_thread::sleep_for(poll);
  } while (std::chrono::steady_clock::now() < deadline);
  if (!runs_.empty()) {
    Log(absl::StrCat(runs_.size(), " attempt(s) not reported before shutdown; their leases will "
                                   "expire and the trials re-queue"));
  }
}

}  // namespace wrpn::agent

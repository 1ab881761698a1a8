// `wrpn sweep watch`: follows WatchSweep. Not on a terminal: one line per trial state change.
// On a terminal: finished trials scroll above a redrawn block of progress bars (overall, then one
// per running trial with epoch, top-1 and images/s from the trial's latest metrics).
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/context.h"
#include "client/grid.h"

namespace wrpn::client {
namespace {

struct TrialInfo {
  std::string label;  // "lenet5 2x w4/a4 seed 0"
  int epochs = 0;
  int64_t epoch = 0;
  double top1 = kNaN, ips = kNaN;
  double fraction = -1;  // from the worker's heartbeat; -1 = unknown, use epoch / epochs
  std::string state;
  double Progress() const {
    if (fraction >= 0) return std::min(1.0, fraction);
    return epochs > 0 ? std::min(1.0, static_cast<double>(epoch) / epochs) : 0.0;
  }
};

bool Finished(pb::SweepState s) {
  return s == pb::SWEEP_SUCCEEDED || s == pb::SWEEP_FAILED || s == pb::SWEEP_CANCELLED;
}

std::string CountsLine(const pb::TrialCounts& c) {
  return absl::StrFormat("%d/%d done, %d running, %d queued, %d failed%s%s",
                         c.succeeded() + c.failed() + c.cancelled() + c.pruned(), c.total(), c.running(),
                         c.queued(), c.failed(),
                         c.cancelled() ? absl::StrFormat(", %d cancelled", c.cancelled()) : "",
                         c.pruned() ? absl::StrFormat(", %d pruned", c.pruned()) : "");
}

std::string Bar(double fraction, int width) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int full = static_cast<int>(std::lround(fraction * width));
  return "[" + std::string(full, '#') + std::string(width - full, '.') + "]";
}

std::string ClockTime(int64_t ms) {
  const std::string t = UtcTime(ms);
  return t.size() > 11 ? t.substr(11) : t;
}

class Watcher {
 public:
  Watcher(Invocation& inv, int64_t id) : inv_(inv), c_(inv.conn()), id_(id) {}

  int Run() {
    pb::WatchSweepRequest req;
    req.set_sweep_id(id_);
    ctx_ = c_.Context(/*streaming=*/true);
    auto reader = c_.stub().WatchSweep(ctx_.get(), req);
    pb::WatchSweepResponse r;
    if (!reader->Read(&r)) {
      c_.Throw(reader->Finish(), absl::StrCat("watch sweep ", id_));
    }
    LoadTrials();
    sweep_ = r.sweep();
    start_done_ = Done(sweep_.counts());
    start_ = std::chrono::steady_clock::now();
    const bool tty = inv_.progress_on();
    inv_.out() << Header() << "\n";
    inv_.out().flush();
    if (inv_.env().on_watch_started) inv_.env().on_watch_started();
    if (Finished(sweep_.state())) return Summary();
    if (!tty) {
      while (reader->Read(&r)) {
        sweep_ = r.sweep();
        if (r.has_event()) inv_.out() << EventLine(r.event()) << "\n";
        inv_.out().flush();
      }
    } else {
      RunTty(*reader);
    }
    grpc::Status st = reader->Finish();
    if (!Finished(sweep_.state())) {
      if (!st.ok()) c_.Throw(st, absl::StrCat("watch sweep ", id_));
      throw CliError{kExitUnreachable,
                     absl::StrFormat("watch sweep %d: the coordinator at %s ended the stream before the "
                                     "sweep finished (shutting down?); run `wrpn sweep watch %d` again",
                                     id_, c_.settings().addr, id_)};
    }
    return Summary();
  }

 private:
  static int64_t Done(const pb::TrialCounts& c) {
    return c.succeeded() + c.failed() + c.cancelled() + c.pruned();
  }

  std::string Header() const {
    return absl::StrFormat("sweep %d (%s): %s, %s", id_, sweep_.name(), SweepStateName(sweep_.state()),
                           CountsLine(sweep_.counts()));
  }

  void LoadTrials() {
    pb::ListTrialsRequest req;
    req.set_sweep_id(id_);
    req.set_page_size(1000);
    for (;;) {
      pb::ListTrialsResponse resp;
      c_.Check(c_.stub().ListTrials(c_.Context().get(), req, &resp), absl::StrCat("trials of sweep ", id_));
      for (const auto& t : resp.trials()) {
        TrialInfo& i = trials_[t.id()];
        i.label = absl::StrFormat("%s %s w%d/a%d seed %d", t.network(), WidthLabel(t.width()), t.wbits(),
                                  t.abits(), t.seed());
        i.state = TrialStateName(t.state());
        auto cfg = nlohmann::json::parse(t.trial_config_json(), nullptr, false);
        if (cfg.is_object() && cfg.contains("epochs") && cfg["epochs"].is_number()) i.epochs = cfg["epochs"].get<int>();
        if (t.has_final_top1()) i.top1 = t.final_top1();
      }
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
  }

  std::string EventLine(const pb::TrialEvent& e) {
    TrialInfo& t = trials_[e.trial_id()];
    t.state = TrialStateName(e.state());
    if (e.state() == pb::TRIAL_RUNNING || e.state() == pb::TRIAL_QUEUED) t.fraction = -1, t.epoch = 0;
    std::string what = t.state;
    if (e.state() == pb::TRIAL_RUNNING) what = absl::StrFormat("running (attempt %d)", e.attempt());
    if (e.state() == pb::TRIAL_SUCCEEDED) {
      pb::GetTrialRequest req;
      req.set_trial_id(e.trial_id());
      pb::GetTrialResponse resp;
      if (c_.stub().GetTrial(c_.Context().get(), req, &resp).ok() && resp.trial().has_final_top1()) {
        t.top1 = resp.trial().final_top1();
        what += absl::StrFormat(", top-1 %.2f", t.top1);
      }
    }
    if ((e.state() == pb::TRIAL_FAILED || e.state() == pb::TRIAL_QUEUED) && !e.message().empty())
      what += ": " + e.message();
    return absl::StrFormat("%s trial %d %s: %s | %s", ClockTime(e.time_ms()), e.trial_id(), t.label, what,
                           CountsLine(sweep_.counts()));
  }

  void RunTty(grpc::ClientReader<pb::WatchSweepResponse>& reader) {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<pb::WatchSweepResponse> queue;
    bool ended = false;
    std::thread t([&] {
      pb::WatchSweepResponse r;
      while (reader.Read(&r)) {
        std::lock_guard<std::mutex> lock(mu);
        queue.push_back(r);
        cv.notify_one();
      }
      std::lock_guard<std::mutex> lock(mu);
      ended = true;
      cv.notify_one();
    });
    int drawn = 0;
    for (;;) {
      std::deque<pb::WatchSweepResponse> got;
      bool stop;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait_for(lock, inv_.env().watch_refresh, [&] { return ended || !queue.empty(); });
        got.swap(queue);
        stop = ended;
      }
      std::string scroll;
      for (const auto& r : got) {
        sweep_ = r.sweep();
        if (!r.has_event()) continue;
        const pb::TrialState s = r.event().state();
        const std::string line = EventLine(r.event());
        if (s == pb::TRIAL_SUCCEEDED || s == pb::TRIAL_FAILED || s == pb::TRIAL_CANCELLED ||
            s == pb::TRIAL_PRUNED)
          scroll += Paint(line, StateColor(TrialStateName(s)), inv_.color_on()) + "\n";
      }
      RefreshRunning();
      std::string out;
      if (drawn > 0) out += absl::StrFormat("\033[%dA\033[J", drawn);
      out += scroll;
      const std::vector<std::string> bars = Bars();
      for (const auto& b : bars) out += b + "\n";
      drawn = static_cast<int>(bars.size());
      inv_.out() << out;
      inv_.out().flush();
      if (stop || Finished(sweep_.state())) break;
    }
    ctx_->TryCancel();
    t.join();
  }

  void RefreshRunning() {
    for (auto& [id, t] : trials_) {
      if (t.state != "running") continue;
      pb::GetTrialRequest req;
      req.set_trial_id(id);
      pb::GetTrialResponse resp;
      if (!c_.stub().GetTrial(c_.Context().get(), req, &resp).ok()) continue;
      if (resp.trial().progress_fraction() > 0) t.fraction = resp.trial().progress_fraction();
      t.epoch = std::max(t.epoch, resp.trial().progress_epoch());
      for (const auto& m : resp.last_metrics()) {
        // Metric steps are 0-based epoch indices (as wrpn-worker reports them): step k means
        // k + 1 epochs done.
        t.epoch = std::max(t.epoch, m.step() + 1);
        if (m.name() == "top1") t.top1 = m.value();
        if (m.name() == "images_per_sec") t.ips = m.value();
      }
    }
  }

  std::vector<std::string> Bars() {
    std::vector<std::string> out;
    const auto& c = sweep_.counts();
    const double total = std::max<int64_t>(1, c.total());
    double progress = static_cast<double>(Done(c));
    double running_frac = 0;
    for (const auto& [id, t] : trials_)
      if (t.state == "running") running_frac += t.Progress();
    progress += running_frac;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double gained = progress - static_cast<double>(start_done_);
    std::string eta = "ETA ?";
    if (gained > 0.05 && elapsed > 0) eta = "ETA " + Duration(elapsed / gained * (total - progress));
    out.push_back(absl::StrFormat("%s %s %s  %s", Paint("sweep " + absl::StrCat(id_), Color::kBold, inv_.color_on()),
                                  Bar(progress / total, 30), CountsLine(c), eta));
    const int width = std::max(60, inv_.env().term_width);
    for (const auto& [id, t] : trials_) {
      if (t.state != "running") continue;
      std::string line = absl::StrFormat(
          "  trial %-5d %-28s %s epoch %d/%s  top-1 %s  %s img/s", id, t.label,
          Bar(t.Progress(), 20), t.epoch,
          t.epochs ? absl::StrCat(t.epochs) : std::string("?"),
          std::isnan(t.top1) ? std::string("-") : absl::StrFormat("%.2f", t.top1),
          std::isnan(t.ips) ? std::string("-") : absl::StrFormat("%.0f", t.ips));
      if (static_cast<int>(line.size()) > width) line.resize(width);
      out.push_back(line);
    }
    return out;
  }

  int Summary() {
    const auto& c = sweep_.counts();
    const std::string st = SweepStateName(sweep_.state());
    inv_.out() << absl::StrFormat("sweep %d %s: %d succeeded, %d failed, %d cancelled%s of %d\n", id_, st,
                                  c.succeeded(), c.failed(), c.cancelled(),
                                  c.pruned() ? absl::StrFormat(", %d pruned", c.pruned()) : "", c.total());
    if (c.failed()) inv_.out() << absl::StrFormat("see why: wrpn trial list %d --state failed\n", id_);
    inv_.out() << absl::StrFormat("next: wrpn grid %d --paper\n", id_);
    return sweep_.state() == pb::SWEEP_SUCCEEDED ? kExitOk : kExitFailed;
  }

  Invocation& inv_;
  Connection& c_;
  const int64_t id_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  pb::Sweep sweep_;
  std::map<int64_t, TrialInfo> trials_;
  int64_t start_done_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

int WatchSweep(Invocation& inv, int64_t sweep_id) { return Watcher(inv, sweep_id).Run(); }

}  // namespace wrpn::client

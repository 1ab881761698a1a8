// A real Prometheus scraping a real coordinator (issue 16): after one worker is SIGKILLed, the
// lease expiry shows as increase(wrpn_lease_expirations_total[5m]) > 0. A counter that appeared
// only at its first event (no sample at 0 before it) made that increase 0, and so the
// lease-expiry alert undercounted after every coordinator start.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>

#include "tests/chaos/chaos_harness.h"

namespace wrpn::chaos {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class PrometheusTest : public ChaosTest {
 protected:
  void TearDown() override {
    if (prometheus_ && !prometheus_->Exited()) {
      prometheus_->Kill();
      WaitUntil([&] { return prometheus_->Exited().has_value(); }, 5s);
    }
    ChaosTest::TearDown();
  }
  // Starts Prometheus scraping the coordinator's /metrics every second.
  void StartPrometheus() {
    std::string bin;
    ASSERT_EQ(Shell("command -v prometheus", &bin), 0)
        << "prometheus is not installed (scripts/install-deps.sh installs it)";
    while (!bin.empty() && (bin.back() == '\n' || bin.back() == ' ')) bin.pop_back();
    const fs::path home = fs::path(dir_) / "prometheus";
    fs::create_directories(home);
    port_ = FreePort();
    std::ofstream(home / "prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: wrpn-coordinator\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << http_port_ << "']\n";
    agent::ProcessSpec spec;
    spec.argv = {bin, "--config.file=" + (home / "prometheus.yml").string(),
                 "--storage.tsdb.path=" + (home / "data").string(),
                 "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"};
    auto p = launcher_.Launch(spec);
    ASSERT_TRUE(p.ok()) << p.status();
    prometheus_ = *std::move(p);
  }
  // The first sample's value of an instant query, nullopt when there is none.
  std::optional<double> Query(const std::string& promql) {
    std::string out;
    if (Shell("curl -sf --max-time 3 -G --data-urlencode 'query=" + promql + "' http://127.0.0.1:" +
                  std::to_string(port_) + "/api/v1/query",
              &out) != 0)
      return std::nullopt;
    json j = json::parse(out, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return std::nullopt;
    const json& result = j["data"]["result"];
    if (!result.is_array() || result.empty()) return std::nullopt;
    return std::stod(result[0]["value"][1].get<std::string>());
  }

  int port_ = 0;
  std::unique_ptr<agent::Process> prometheus_;
};

TEST_F(PrometheusTest, WorkerSigkillShowsAsAnIncreaseOfLeaseExpirations) {
  StartCoordinator(Flags(2));
  StartPrometheus();
  // Scraped at least once before anything expired.
  ASSERT_TRUE(WaitFor([&] { return Query("up{job=\"wrpn-coordinator\"} == 1").has_value(); }, 30s))
      << "Prometheus did not scrape the coordinator:\n" << prometheus_->StderrTail();
  agent::Process* victim = StartWorker("victim", {{"WRPN_FAKE_EPOCH_MS", "100"}});
  ASSERT_NE(victim, nullptr);
  auto sweep = Submit(SweepSpec("expire", {1}, {"4/4"}, 200));
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_TRUE(WaitFor([&] {
    auto r = ListTrials(*sweep, pb::TRIAL_RUNNING);
    return r.ok() && !r->empty();
  }, 30s));
  Stopped("victim");
  ASSERT_EQ(::kill(victim->pid(), SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] {
    return HttpMetrics().find("\nwrpn_lease_expirations_total 1\n") != std::string::npos;
  }, 20s)) << "the lease did not expire";
  std::optional<double> increase;
  EXPECT_TRUE(WaitFor([&] {
    increase = Query("increase(wrpn_lease_expirations_total[5m])");
    return increase && *increase > 0;
  }, 20s)) << "increase(wrpn_lease_expirations_total[5m]) = "
           << (increase ? std::to_string(*increase) : "no sample");
  std::optional<double> expired;
  EXPECT_TRUE(WaitFor([&] {
    expired = Query("increase(wrpn_trial_attempts_total{outcome=\"expired\"}[5m])");
    return expired && *expired > 0;
  }, 10s)) << "increase of expired attempts = " << (expired ? std::to_string(*expired) : "no sample");
}

}  // namespace
}  // namespace wrpn::chaos

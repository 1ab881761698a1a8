// deploy/compose/docker-compose.yml as Debian's docker-compose 1.29 resolves it (`config`, no
// Docker engine needed), checked for the references between services, files and secrets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <regex>
#include <set>
#include <string>

#include "tests/deploy/deploy_test_util.h"
#include "tests/deploy/k8s_manifests.h"

namespace wrpn::deploytest {
namespace {

// deploy/compose/docker-compose.yml plus `extra` files (all profiles) as docker-compose resolves
// them, or the error in *error.
YAML::Node ResolveCompose(const std::vector<std::string>& extra, std::string* error) {
  std::string tool = FindOnPath({"docker-compose"});
  if (tool.empty()) {
    *error = "docker-compose not on PATH (scripts/install-deps.sh installs it)";
    return {};
  }
  std::vector<std::string> cmd = {tool, "-f", SourcePath("deploy/compose/docker-compose.yml")};
  for (const std::string& f : extra) {
    cmd.push_back("-f");
    cmd.push_back(SourcePath("deploy/compose/" + f));
  }
  for (const char* a : {"--profile", "gpu", "--profile", "cpu", "config"}) cmd.push_back(a);
  auto r = RunCommand(cmd, std::chrono::seconds(60), /*keep_stderr=*/false);
  if (r.exit_code != 0) {
    *error = "docker-compose config failed: " + RunCommand(cmd).output;
    return {};
  }
  YAML::Node cfg = YAML::Load(r.output);
  if (!cfg["services"]) *error = "no services in: " + r.output;
  return cfg;
}

std::vector<std::string> Command(const YAML::Node& cfg, const std::string& service) {
  std::vector<std::string> out;
  for (const auto& a : cfg["services"][service]["command"]) out.push_back(a.as<std::string>());
  return out;
}

class ComposeTest : public ::testing::Test {
 protected:
  // docker-compose takes seconds to start: resolve the file once for the whole suite.
  static void SetUpTestSuite() { cfg_ = ResolveCompose({}, &error_); }
  void SetUp() override { ASSERT_TRUE(error_.empty()) << error_; }
  YAML::Node Service(const std::string& name) { return cfg_["services"][name]; }
  // The value of --flag=VALUE in a service's command, or "".
  std::string Flag(const std::string& service, const std::string& flag) {
    for (const auto& a : Service(service)["command"]) {
      std::string s = a.as<std::string>();
      if (s.rfind(flag + "=", 0) == 0) return s.substr(flag.size() + 1);
    }
    return "";
  }
  static std::string PortOf(const std::string& host_port) {
    return host_port.substr(host_port.rfind(':') + 1);
  }
  static inline YAML::Node cfg_;
  static inline std::string error_;
};

TEST_F(ComposeTest, HasTheServicesAndProfiles) {
  for (const char* s : {"coordinator", "worker", "worker-cpu", "prometheus", "grafana"})
    EXPECT_TRUE(Service(s)) << "no service " << s;
  EXPECT_FALSE(Service("coordinator")["profiles"]);
  EXPECT_EQ(Service("worker")["profiles"][0].as<std::string>(), "gpu");
  EXPECT_EQ(Service("worker-cpu")["profiles"][0].as<std::string>(), "cpu");
  for (const auto& kv : cfg_["services"]) {
    std::string image = kv.second["image"].as<std::string>("");
    EXPECT_NE(image.find(':'), std::string::npos) << kv.first << ": image not pinned by tag";
    EXPECT_EQ(image.find(":latest"), std::string::npos) << kv.first;
  }
}

TEST_F(ComposeTest, GpuWorkerReservesGpusAndCpuWorkerDoesNot) {
  YAML::Node devices = Service("worker")["deploy"]["resources"]["reservations"]["devices"];
  ASSERT_TRUE(devices && devices.size() == 1);
  EXPECT_EQ(devices[0]["driver"].as<std::string>(), "nvidia");
  EXPECT_EQ(devices[0]["capabilities"][0].as<std::string>(), "gpu");
  EXPECT_FALSE(Service("worker-cpu")["deploy"]);
  EXPECT_EQ(Service("worker")["build"]["target"].as<std::string>(), "worker-gpu");
  EXPECT_EQ(Service("worker-cpu")["build"]["target"].as<std::string>(), "worker-cpu");
  for (const char* w : {"worker", "worker-cpu"})
    EXPECT_EQ(Service(w)["depends_on"]["coordinator"]["condition"].as<std::string>(), "service_healthy");
}

TEST_F(ComposeTest, TokensComeFromSecretFilesOnly) {
  std::set<std::string> secrets;
  for (const auto& kv : cfg_["secrets"]) {
    secrets.insert(kv.first.as<std::string>());
    EXPECT_TRUE(kv.second["file"]) << "secret " << kv.first << " is not file-based";
  }
  struct Want { const char* service; const char* flag; };
  for (Want w : {Want{"coordinator", "--token-file"}, Want{"worker", "--token-file"},
                 Want{"worker-cpu", "--token-file"}}) {
    std::string path = Flag(w.service, w.flag);
    ASSERT_EQ(path.rfind("/run/secrets/", 0), 0u) << w.service << " " << w.flag << "=" << path;
    std::string target = path.substr(std::string("/run/secrets/").size());
    bool mounted = false;
    for (const auto& s : Service(w.service)["secrets"]) {
      EXPECT_TRUE(secrets.count(s["source"].as<std::string>())) << w.service << " uses undefined secret";
      mounted = mounted || s["target"].as<std::string>() == target;
    }
    EXPECT_TRUE(mounted) << w.service << " reads " << path << " but mounts no such secret";
  }
  // No credentials inline in any environment.
  static const std::regex secret_name("TOKEN|PASSWORD|SECRET", std::regex::icase);
  for (const auto& svc : cfg_["services"])
    for (const auto& kv : svc.second["environment"]) {
      std::string k = kv.first.as<std::string>();
      if (std::regex_search(k, secret_name))
        EXPECT_NE(k.find("__FILE"), std::string::npos) << svc.first << ": " << k << " set inline";
    }
  EXPECT_TRUE(FileExists(SourcePath("deploy/compose/secrets/make-tokens.sh")));
}

TEST_F(ComposeTest, CoordinatorKeepsItsDbOnANamedVolume) {
  std::string db = Flag("coordinator", "--db");
  std::string dir = db.substr(0, db.rfind('/'));
  bool on_volume = false;
  for (const auto& v : Service("coordinator")["volumes"]) {
    std::string s = v.as<std::string>();
    auto colon = s.find(':');
    std::string source = s.substr(0, colon);
    std::string target = s.substr(colon + 1, s.find(':', colon + 1) - colon - 1);
    if (target == dir && cfg_["volumes"][source]) on_volume = true;
  }
  EXPECT_TRUE(on_volume) << "--db=" << db << " is not on a named volume";
}

TEST_F(ComposeTest, PortsAndAddressesAgree) {
  std::string grpc = PortOf(Flag("coordinator", "--listen"));
  std::string http = PortOf(Flag("coordinator", "--http-listen"));
  ASSERT_FALSE(grpc.empty());
  ASSERT_FALSE(http.empty());
  EXPECT_EQ(Flag("worker", "--coordinator"), "coordinator:" + grpc);
  EXPECT_EQ(Flag("worker-cpu", "--coordinator"), "coordinator:" + grpc);
  std::string health;
  for (const auto& t : Service("coordinator")["healthcheck"]["test"]) health += t.as<std::string>() + " ";
  EXPECT_NE(health.find("http://127.0.0.1:" + http + "/readyz"), std::string::npos) << health;

  // Prometheus scrapes the coordinator's HTTP port; Grafana reads Prometheus.
  YAML::Node prom = YAML::LoadFile(SourcePath("deploy/prometheus/prometheus.yml"));
  bool scraped = false;
  for (const auto& job : prom["scrape_configs"])
    if (job["job_name"].as<std::string>() == "wrpn-coordinator")
      for (const auto& sc : job["static_configs"])
        for (const auto& t : sc["targets"]) scraped = scraped || t.as<std::string>() == "coordinator:" + http;
  EXPECT_TRUE(scraped) << "prometheus.yml does not scrape coordinator:" << http;
  YAML::Node ds = YAML::LoadFile(SourcePath("deploy/grafana/provisioning/datasources/prometheus.yml"));
  EXPECT_EQ(ds["datasources"][0]["url"].as<std::string>(), "http://prometheus:9090");
  std::string prom_cmd;
  for (const auto& a : Service("prometheus")["command"]) prom_cmd += a.as<std::string>() + " ";
  EXPECT_NE(prom_cmd.find("--config.file=/etc/prometheus/prometheus.yml"), std::string::npos);
}

TEST_F(ComposeTest, BindMountedFilesExistInTheRepository) {
  int binds = 0;
  std::set<std::string> targets;
  for (const auto& svc : cfg_["services"])
    for (const auto& v : svc.second["volumes"]) {
      std::string s = v.as<std::string>();
      if (s.empty() || s[0] != '/') continue;  // a named volume
      ++binds;
      std::string source = s.substr(0, s.find(':'));
      targets.insert(s.substr(source.size() + 1, s.find(':', source.size() + 1) - source.size() - 1));
      EXPECT_TRUE(FileExists(source)) << svc.first << " mounts missing " << source;
    }
  EXPECT_GE(binds, 4);
  // prometheus.yml loads rules/*.yml relative to itself: the rules directory must be beside it.
  EXPECT_TRUE(targets.count("/etc/prometheus/prometheus.yml"));
  EXPECT_TRUE(targets.count("/etc/prometheus/rules"));
}

// docker-compose.https.yml (docs/web.md#https): the base file's commands plus the TLS flags, each
// file a mounted secret; the health check and Prometheus over HTTPS trusting the CA.
TEST(ComposeHttpsTest, AddsTlsToTheBaseCommandsAndTrustsTheCa) {
  std::string error;
  const YAML::Node base = ResolveCompose({}, &error);
  ASSERT_TRUE(error.empty()) << error;
  const YAML::Node tls = ResolveCompose({"docker-compose.https.yml"}, &error);
  ASSERT_TRUE(error.empty()) << error;
  // The /run/secrets/ file a flag names, checked to be a mounted, file-based secret.
  auto secret_file = [&](const std::string& service, const std::string& arg) {
    const std::string path = arg.substr(arg.find('=') + 1);
    EXPECT_EQ(path.rfind("/run/secrets/", 0), 0u) << service << ": " << arg;
    const std::string target = path.substr(std::string("/run/secrets/").size());
    std::string file;
    for (const auto& s : tls["services"][service]["secrets"])
      if (s["target"].as<std::string>() == target)
        file = tls["secrets"][s["source"].as<std::string>()]["file"].as<std::string>("");
    EXPECT_FALSE(file.empty()) << service << " reads " << path << " but mounts no such secret";
    return file;
  };
  auto with = [&](const std::string& service, std::vector<std::string> extra) {
    std::vector<std::string> want = Command(base, service);
    want.insert(want.end(), extra.begin(), extra.end());
    return want;
  };
  const std::vector<std::string> coordinator = Command(tls, "coordinator");
  ASSERT_EQ(coordinator, with("coordinator", {"--tls-cert=/run/secrets/wrpn-tls-cert",
                                              "--tls-key=/run/secrets/wrpn-tls-key"}));
  EXPECT_THAT(secret_file("coordinator", coordinator[coordinator.size() - 2]),
              testing::EndsWith("secrets/tls.crt"));
  EXPECT_THAT(secret_file("coordinator", coordinator.back()), testing::EndsWith("secrets/tls.key"));
  bool kept_tokens = false;
  for (const auto& s : tls["services"]["coordinator"]["secrets"])
    kept_tokens |= s["target"].as<std::string>() == "wrpn-tokens";
  EXPECT_TRUE(kept_tokens) << "the override dropped the token file's secret";
  std::string ca_file;
  for (const char* w : {"worker", "worker-cpu"}) {
    const std::vector<std::string> cmd = Command(tls, w);
    ASSERT_EQ(cmd, with(w, {"--tls-ca=/run/secrets/wrpn-tls-ca"})) << w;
    ca_file = secret_file(w, cmd.back());
    EXPECT_THAT(ca_file, testing::EndsWith("secrets/ca.crt"));
  }
  std::string health;
  for (const auto& t : tls["services"]["coordinator"]["healthcheck"]["test"])
    health += t.as<std::string>() + " ";
  EXPECT_NE(health.find("https://127.0.0.1:8080/readyz"), std::string::npos) << health;

  // Prometheus: prometheus-https.yml replaces prometheus.yml and differs only in the scheme and
  // the CA, a secret Prometheus mounts.
  std::string mounted;
  for (const auto& v : tls["services"]["prometheus"]["volumes"]) {
    const std::string s = v.as<std::string>();
    if (s.find(":/etc/prometheus/prometheus.yml") != std::string::npos) mounted = s.substr(0, s.find(':'));
  }
  EXPECT_THAT(mounted, testing::EndsWith("deploy/prometheus/prometheus-https.yml"));
  YAML::Node https_prom = YAML::LoadFile(SourcePath("deploy/prometheus/prometheus-https.yml"));
  YAML::Node plain_prom = YAML::LoadFile(SourcePath("deploy/prometheus/prometheus.yml"));
  YAML::Node job = https_prom["scrape_configs"][0];
  ASSERT_EQ(job["job_name"].as<std::string>(), "wrpn-coordinator");
  EXPECT_EQ(job["scheme"].as<std::string>(), "https");
  EXPECT_EQ(secret_file("prometheus", "ca=" + job["tls_config"]["ca_file"].as<std::string>()),
            ca_file);
  job.remove("tls_config");
  job["scheme"] = "http";
  EXPECT_EQ(YAML::Dump(https_prom), YAML::Dump(plain_prom)) << "prometheus-https.yml drifted";
}

}  // namespace
}  // namespace wrpn::deploytest

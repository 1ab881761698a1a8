// Renders deploy/k8s/overlays/{gpu,cpu} with the installed kubectl (or kustomize) and checks the
// references between the objects: selectors and labels, service and probe ports, secret and
// ConfigMap names and keys, volumes, $(VAR) expansions, scrape annotations, resources. Whether
// the coordinator really serves the probe paths and accepts the flags is checked against the
// built binary in live_coordinator_test.cc.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/deploy/deploy_test_util.h"
#include "tests/deploy/k8s_manifests.h"

namespace wrpn::deploytest {
namespace {

bool Selects(const std::map<std::string, std::string>& selector,
             const std::map<std::string, std::string>& labels) {
  if (selector.empty()) return false;
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

std::string Name(const YAML::Node& obj) { return obj["metadata"]["name"].as<std::string>(""); }
std::string Id(const YAML::Node& obj) { return obj["kind"].as<std::string>("") + "/" + Name(obj); }

// Keys a ConfigMap or Secret provides.
std::set<std::string> Keys(const YAML::Node& obj) {
  std::set<std::string> keys;
  for (const char* field : {"data", "stringData", "binaryData"})
    for (const auto& [k, v] : StringMap(obj[field])) keys.insert(k);
  return keys;
}

std::vector<YAML::Node> Containers(const YAML::Node& pod_spec) {
  std::vector<YAML::Node> out;
  for (const char* field : {"initContainers", "containers"})
    if (pod_spec[field])
      for (const auto& c : pod_spec[field]) out.push_back(c);
  return out;
}

class OverlayTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    m_ = RenderKustomization(SourcePath("deploy/k8s/overlays/" + GetParam()));
    ASSERT_TRUE(m_.error.empty()) << m_.error;
  }
  Manifests m_;
};

TEST_P(OverlayTest, EveryObjectIsNamespacedAndLabelled) {
  for (const auto& d : m_.docs) {
    if (d["kind"].as<std::string>() == "Namespace") {
      EXPECT_EQ(Name(d), "wrpn");
      continue;
    }
    EXPECT_EQ(d["metadata"]["namespace"].as<std::string>(""), "wrpn") << Id(d);
    EXPECT_EQ(StringMap(d["metadata"]["labels"])["app.kubernetes.io/part-of"], "wrpn") << Id(d);
  }
  for (const char* want : {"StatefulSet/wrpn-coordinator", "Service/wrpn-coordinator",
                           "Deployment/wrpn-worker", "Service/wrpn-workers", "Secret/wrpn-tokens",
                           "PersistentVolumeClaim/wrpn-shared", "Namespace/wrpn"}) {
    bool found = false;
    for (const auto& d : m_.docs) found = found || Id(d) == want;
    EXPECT_TRUE(found) << "missing " << want;
  }
  EXPECT_FALSE(m_.OfKind("ConfigMap").empty());
}

TEST_P(OverlayTest, WorkloadSelectorsMatchTheirPodTemplates) {
  ASSERT_EQ(m_.Workloads().size(), 2u);
  for (const auto& w : m_.Workloads()) {
    auto selector = StringMap(w["spec"]["selector"]["matchLabels"]);
    auto labels = StringMap(w["spec"]["template"]["metadata"]["labels"]);
    EXPECT_TRUE(Selects(selector, labels)) << Id(w) << ": selector does not match its pods";
  }
}

TEST_P(OverlayTest, ServicesSelectPodsAndTargetTheirPorts) {
  for (const auto& svc : m_.OfKind("Service")) {
    auto selector = StringMap(svc["spec"]["selector"]);
    int matched = 0;
    for (const auto& w : m_.Workloads()) {
      YAML::Node tmpl = w["spec"]["template"];
      if (!Selects(selector, StringMap(tmpl["metadata"]["labels"]))) continue;
      ++matched;
      std::set<std::string> port_names;
      std::set<int> port_numbers;
      for (const auto& c : tmpl["spec"]["containers"])
        for (const auto& p : c["ports"]) {
          if (p["name"]) port_names.insert(p["name"].as<std::string>());
          port_numbers.insert(p["containerPort"].as<int>());
        }
      for (const auto& p : svc["spec"]["ports"]) {
        YAML::Node target = p["targetPort"] ? p["targetPort"] : p["port"];
        std::string t = target.as<std::string>();
        bool numeric = std::regex_match(t, std::regex("[0-9]+"));
        EXPECT_TRUE(numeric ? port_numbers.count(std::stoi(t)) > 0 : port_names.count(t) > 0)
            << Id(svc) << " port " << p["name"].as<std::string>("") << " targets " << t
            << ", which " << Id(w) << "'s containers do not expose";
      }
    }
    EXPECT_EQ(matched, 1) << Id(svc) << " selects " << matched << " workloads";
  }
}

TEST_P(OverlayTest, CoordinatorIsOneStatefulSetReplicaWithItsDbOnAClaim) {
  YAML::Node sts = m_.Find("StatefulSet", "wrpn-coordinator");
  ASSERT_TRUE(sts);
  EXPECT_EQ(sts["spec"]["replicas"].as<int>(), 1) << "SQLite has one writer";
  YAML::Node governing = m_.Find("Service", sts["spec"]["serviceName"].as<std::string>(""));
  ASSERT_TRUE(governing) << "serviceName names no Service";
  EXPECT_TRUE(Selects(StringMap(governing["spec"]["selector"]),
                      StringMap(sts["spec"]["template"]["metadata"]["labels"])));
  std::set<std::string> port_names;
  for (const auto& p : governing["spec"]["ports"]) port_names.insert(p["name"].as<std::string>());
  EXPECT_TRUE(port_names.count("grpc") && port_names.count("http"));

  std::set<std::string> claims;
  for (const auto& t : sts["spec"]["volumeClaimTemplates"]) claims.insert(Name(t));
  bool db_on_claim = false;
  for (const auto& c : sts["spec"]["template"]["spec"]["containers"]) {
    std::string db_dir;
    for (const auto& a : c["args"]) {
      std::smatch mm;
      std::string s = a.as<std::string>();
      if (std::regex_match(s, mm, std::regex(R"(--db=(.*)/[^/]+)"))) db_dir = mm[1];
    }
    for (const auto& vm : c["volumeMounts"])
      if (claims.count(vm["name"].as<std::string>()) && vm["mountPath"].as<std::string>() == db_dir)
        db_on_claim = true;
  }
  EXPECT_TRUE(db_on_claim) << "the coordinator's --db does not live on a volumeClaimTemplate";
}

TEST_P(OverlayTest, VolumesSecretsAndConfigMapsResolve) {
  for (const auto& w : m_.Workloads()) {
    YAML::Node spec = w["spec"]["template"]["spec"];
    std::set<std::string> volumes;
    for (const auto& v : spec["volumes"]) {
      volumes.insert(v["name"].as<std::string>());
      if (v["secret"]) {
        YAML::Node s = m_.Find("Secret", v["secret"]["secretName"].as<std::string>(""));
        ASSERT_TRUE(s) << Id(w) << " mounts missing secret " << v["secret"]["secretName"];
        for (const auto& item : v["secret"]["items"])
          EXPECT_TRUE(Keys(s).count(item["key"].as<std::string>()))
              << Id(w) << ": secret " << Name(s) << " has no key " << item["key"];
      }
      if (v["configMap"])
        EXPECT_TRUE(m_.Find("ConfigMap", v["configMap"]["name"].as<std::string>("")))
            << Id(w) << " mounts missing ConfigMap";
      if (v["persistentVolumeClaim"])
        EXPECT_TRUE(m_.Find("PersistentVolumeClaim",
                            v["persistentVolumeClaim"]["claimName"].as<std::string>("")))
            << Id(w) << " mounts missing claim " << v["persistentVolumeClaim"]["claimName"];
    }
    for (const auto& t : w["spec"]["volumeClaimTemplates"]) volumes.insert(Name(t));
    for (const auto& c : Containers(spec)) {
      const std::string cid = Id(w) + " container " + c["name"].as<std::string>();
      for (const auto& vm : c["volumeMounts"])
        EXPECT_TRUE(volumes.count(vm["name"].as<std::string>()))
            << cid << " mounts undefined volume " << vm["name"];
      std::set<std::string> env_names;
      for (const auto& e : c["env"]) {
        env_names.insert(e["name"].as<std::string>());
        YAML::Node from = e["valueFrom"];
        for (const char* ref : {"configMapKeyRef", "secretKeyRef"}) {
          if (!from || !from[ref]) continue;
          YAML::Node obj = m_.Find(std::string(ref) == "configMapKeyRef" ? "ConfigMap" : "Secret",
                                   from[ref]["name"].as<std::string>(""));
          ASSERT_TRUE(obj) << cid << ": env " << e["name"] << " refers to missing "
                           << from[ref]["name"] << " (a generator name kustomize did not rewrite?)";
          EXPECT_TRUE(Keys(obj).count(from[ref]["key"].as<std::string>()))
              << cid << ": " << Name(obj) << " has no key " << from[ref]["key"];
        }
      }
      std::set<std::string> from_env_keys;
      for (const auto& ef : c["envFrom"]) {
        YAML::Node obj = ef["configMapRef"]
                             ? m_.Find("ConfigMap", ef["configMapRef"]["name"].as<std::string>(""))
                             : m_.Find("Secret", ef["secretRef"]["name"].as<std::string>(""));
        ASSERT_TRUE(obj) << cid << ": envFrom refers to a missing object";
        for (const auto& k : Keys(obj)) from_env_keys.insert(k);
      }
      // Kubernetes leaves $(VAR) unexpanded when VAR is not defined: a silent wrong flag.
      static const std::regex var(R"(\$\(([A-Za-z_][A-Za-z0-9_]*)\))");
      for (const char* field : {"command", "args"})
        for (const auto& a : c[field]) {
          std::string s = a.as<std::string>();
          for (auto it = std::sregex_iterator(s.begin(), s.end(), var); it != std::sregex_iterator(); ++it) {
            std::string name = (*it)[1];
            EXPECT_TRUE(env_names.count(name) || from_env_keys.count(name))
                << cid << ": " << s << " uses $(" << name << ") which is not in its env";
          }
        }
    }
  }
}

TEST_P(OverlayTest, ProbesAndScrapeAnnotationsUseDeclaredPorts) {
  YAML::Node sts = m_.Find("StatefulSet", "wrpn-coordinator");
  ASSERT_TRUE(sts);
  YAML::Node tmpl = sts["spec"]["template"];
  YAML::Node c = tmpl["spec"]["containers"][0];
  std::map<std::string, int> ports;
  for (const auto& p : c["ports"]) ports[p["name"].as<std::string>()] = p["containerPort"].as<int>();
  std::map<std::string, std::string> probe_paths;
  for (const char* probe : {"startupProbe", "livenessProbe", "readinessProbe"}) {
    ASSERT_TRUE(c[probe]) << "the coordinator has no " << probe;
    YAML::Node get = c[probe]["httpGet"];
    ASSERT_TRUE(get) << probe << " is not an httpGet probe";
    EXPECT_TRUE(ports.count(get["port"].as<std::string>())) << probe << " port " << get["port"];
    probe_paths[probe] = get["path"].as<std::string>();
  }
  EXPECT_EQ(probe_paths["livenessProbe"], "/healthz");
  EXPECT_EQ(probe_paths["readinessProbe"], "/readyz");

  for (const auto& annotated : {tmpl, m_.Find("Service", "wrpn-coordinator")}) {
    auto ann = StringMap(annotated["metadata"]["annotations"]);
    EXPECT_EQ(ann["prometheus.io/scrape"], "true");
    EXPECT_EQ(ann["prometheus.io/path"], "/metrics");
    EXPECT_EQ(ann["prometheus.io/port"], std::to_string(ports["http"]))
        << "scrape annotation does not point at the http port";
  }
  // --http-listen and --listen must bind the ports the pod declares.
  std::string args;
  for (const auto& a : c["args"]) args += a.as<std::string>() + "\n";
  EXPECT_NE(args.find("--http-listen=0.0.0.0:" + std::to_string(ports["http"]) + "\n"), std::string::npos) << args;
  EXPECT_NE(args.find("--listen=0.0.0.0:" + std::to_string(ports["grpc"]) + "\n"), std::string::npos) << args;
}

TEST_P(OverlayTest, WorkersFindTheCoordinatorAndEachOther) {
  YAML::Node dep = m_.Find("Deployment", "wrpn-worker");
  ASSERT_TRUE(dep);
  YAML::Node spec = dep["spec"]["template"]["spec"];
  // The coordinator address in the ConfigMap is the coordinator Service's gRPC port.
  std::string address;
  for (const auto& cm : m_.OfKind("ConfigMap"))
    if (auto d = StringMap(cm["data"]); d.count("WRPN_COORDINATOR_ADDRESS")) address = d["WRPN_COORDINATOR_ADDRESS"];
  YAML::Node svc = m_.Find("Service", "wrpn-coordinator");
  std::string grpc_port;
  for (const auto& p : svc["spec"]["ports"])
    if (p["name"].as<std::string>() == "grpc") grpc_port = p["port"].as<std::string>();
  EXPECT_EQ(address, Name(svc) + ":" + grpc_port);

  // The pods' subdomain is a headless Service that selects them (DNS names for rendezvous).
  YAML::Node headless = m_.Find("Service", spec["subdomain"].as<std::string>(""));
  ASSERT_TRUE(headless) << "worker subdomain names no Service";
  EXPECT_EQ(headless["spec"]["clusterIP"].as<std::string>(""), "None");
  EXPECT_TRUE(Selects(StringMap(headless["spec"]["selector"]),
                      StringMap(dep["spec"]["template"]["metadata"]["labels"])));
  std::string rendezvous_port;
  for (const auto& cm : m_.OfKind("ConfigMap"))
    if (auto d = StringMap(cm["data"]); d.count("WRPN_RENDEZVOUS_PORT")) rendezvous_port = d["WRPN_RENDEZVOUS_PORT"];
  bool declared = false;
  for (const auto& p : spec["containers"][0]["ports"])
    declared = declared || p["containerPort"].as<std::string>() == rendezvous_port;
  EXPECT_TRUE(declared) << "rendezvous port " << rendezvous_port << " is not a container port";
}

TEST_P(OverlayTest, ContainersHaveRequestsLimitsAndRunAsNonRoot) {
  for (const auto& w : m_.Workloads()) {
    YAML::Node spec = w["spec"]["template"]["spec"];
    EXPECT_TRUE(spec["securityContext"]["runAsNonRoot"].as<bool>(false)) << Id(w);
    for (const auto& c : Containers(spec)) {
      for (const char* kind : {"requests", "limits"})
        for (const char* res : {"cpu", "memory"})
          EXPECT_TRUE(c["resources"] && c["resources"][kind] && c["resources"][kind][res])
              << Id(w) << " " << c["name"] << " lacks " << kind << "." << res;
      EXPECT_TRUE(c["image"].as<std::string>("").find(':') != std::string::npos)
          << Id(w) << ": image without a tag";
    }
  }
}

TEST_P(OverlayTest, GpuRequestsOnlyInTheGpuOverlay) {
  YAML::Node c = m_.Find("Deployment", "wrpn-worker")["spec"]["template"]["spec"]["containers"][0];
  const bool gpu = GetParam() == "gpu";
  EXPECT_EQ(static_cast<bool>(c["resources"]["limits"]["nvidia.com/gpu"]), gpu);
  EXPECT_EQ(static_cast<bool>(c["resources"]["requests"]["nvidia.com/gpu"]), gpu);
  std::string image = c["image"].as<std::string>();
  EXPECT_NE(image.find(gpu ? "-cuda" : "-cpu"), std::string::npos) << image;
  std::set<std::string> env_keys;
  for (const auto& ef : c["envFrom"])
    for (const auto& k : Keys(m_.Find("ConfigMap", ef["configMapRef"]["name"].as<std::string>(""))))
      env_keys.insert(k);
  EXPECT_EQ(env_keys.count("NCCL_SOCKET_IFNAME") > 0, gpu);
  EXPECT_EQ(env_keys.count("GLOO_SOCKET_IFNAME") > 0, !gpu);
}

INSTANTIATE_TEST_SUITE_P(Overlays, OverlayTest, ::testing::Values("gpu", "cpu"));

std::string Base64Decode(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    auto pos = chars.find(c);
    if (pos == std::string::npos) continue;  // padding, line breaks
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

// The site overlay docs/deploy.md tells operators to write (taken from the page itself), with
// tokens from make-tokens.sh: the placeholder Secret is replaced by the generated one.
TEST(SiteOverlay, ReplacesThePlaceholderTokensWithGeneratedOnes) {
  std::string doc = ReadFile(SourcePath("docs/deploy.md"));
  auto begin = doc.find("<<'YAML'\n");
  auto end = doc.find("\nYAML\n", begin);
  ASSERT_TRUE(begin != std::string::npos && end != std::string::npos)
      << "docs/deploy.md no longer shows the site overlay";
  std::string kustomization = doc.substr(begin + 9, end - begin - 8);

  TempDir dir;
  std::filesystem::copy(SourcePath("deploy/k8s"), dir.path() + "/k8s",
                        std::filesystem::copy_options::recursive);
  std::string site = dir.path() + "/k8s/overlays/site";
  std::filesystem::create_directories(site);
  WriteFile(site + "/kustomization.yaml", kustomization);
  auto tokens = RunCommand({"bash", SourcePath("deploy/compose/secrets/make-tokens.sh"), site + "/secrets"});
  ASSERT_EQ(tokens.exit_code, 0) << tokens.output;

  Manifests m = RenderKustomization(site);
  ASSERT_TRUE(m.error.empty()) << m.error;
  YAML::Node secret = m.Find("Secret", "wrpn-tokens");
  ASSERT_TRUE(secret) << "no Secret/wrpn-tokens after replacement";
  EXPECT_FALSE(secret["stringData"]) << "placeholder stringData survived the replacement";
  auto data = StringMap(secret["data"]);
  EXPECT_EQ(Base64Decode(data["tokens"]), ReadFile(site + "/secrets/tokens"));
  EXPECT_EQ(Base64Decode(data["worker-token"]), ReadFile(site + "/secrets/worker-token"));
  for (const auto& [k, v] : data) EXPECT_EQ(Base64Decode(v).find("CHANGE-ME"), std::string::npos) << k;
  // Still mounted by both workloads, under the same name.
  int mounts = 0;
  for (const auto& w : m.Workloads())
    for (const auto& v : w["spec"]["template"]["spec"]["volumes"])
      if (v["secret"] && v["secret"]["secretName"].as<std::string>() == Name(secret)) ++mounts;
  EXPECT_EQ(mounts, 2);
}

TEST(ServiceMonitorComponent, SelectsTheCoordinatorServiceByPortName) {
  YAML::Node kust = YAML::LoadFile(SourcePath("deploy/k8s/components/servicemonitor/kustomization.yaml"));
  EXPECT_EQ(kust["kind"].as<std::string>(), "Component");
  YAML::Node sm = YAML::LoadFile(SourcePath("deploy/k8s/components/servicemonitor/servicemonitor.yaml"));
  Manifests m = RenderKustomization(SourcePath("deploy/k8s/overlays/gpu"));
  ASSERT_TRUE(m.error.empty()) << m.error;
  YAML::Node svc = m.Find("Service", "wrpn-coordinator");
  EXPECT_EQ(sm["metadata"]["namespace"].as<std::string>(""), svc["metadata"]["namespace"].as<std::string>());
  EXPECT_TRUE(Selects(StringMap(sm["spec"]["selector"]["matchLabels"]), StringMap(svc["metadata"]["labels"])));
  std::set<std::string> ports;
  for (const auto& p : svc["spec"]["ports"]) ports.insert(p["name"].as<std::string>());
  for (const auto& e : sm["spec"]["endpoints"]) {
    EXPECT_TRUE(ports.count(e["port"].as<std::string>())) << "endpoint port " << e["port"];
    EXPECT_EQ(e["path"].as<std::string>(), "/metrics");
  }
}

// Kustomize versions with components (kubectl >= 1.21) render an overlay that uses it; Debian's
// kubectl 1.20 (kustomize v2.0.3) has none, and then this test is skipped.
TEST(ServiceMonitorComponent, RendersWhenKustomizeSupportsComponents) {
  Manifests m = RenderKustomization(SourcePath("tests/deploy/k8s-servicemonitor"));
  if (m.error.find("components") != std::string::npos)
    GTEST_SKIP() << "this kustomize has no components: " << m.error;
  ASSERT_TRUE(m.error.empty()) << m.error;
  EXPECT_TRUE(m.Find("ServiceMonitor", "wrpn-coordinator"));
  EXPECT_TRUE(m.Find("StatefulSet", "wrpn-coordinator"));
}

// The HTTPS component (docs/web.md): the coordinator gets --tls-cert/--tls-key from the Secret
// wrpn-tls (gRPC and the HTTP port then serve TLS only), probes and scrape annotations use https,
// the workers trust the Secret's ca.crt; everything else is the plain overlay's.
TEST(HttpsComponent, TurnsOnTlsForTheCoordinatorAndTheWorkersTrustIt) {
  Manifests plain = RenderKustomization(SourcePath("deploy/k8s/overlays/cpu"));
  Manifests m = RenderKustomization(SourcePath("tests/deploy/k8s-https"));
  if (m.error.find("components") != std::string::npos)
    GTEST_SKIP() << "this kustomize has no components: " << m.error;
  ASSERT_TRUE(m.error.empty()) << m.error;
  ASSERT_TRUE(plain.error.empty()) << plain.error;
  auto args_of = [](const YAML::Node& c) {
    std::vector<std::string> out;
    for (const auto& a : c["args"]) out.push_back(a.as<std::string>());
    return out;
  };
  // The mount path of the volume backed by Secret wrpn-tls, and the keys it projects.
  auto tls_mount = [](const YAML::Node& pod, const YAML::Node& c, std::set<std::string>* keys) {
    std::string volume;
    for (const auto& v : pod["volumes"])
      if (v["secret"] && v["secret"]["secretName"].as<std::string>() == "wrpn-tls") {
        volume = v["name"].as<std::string>();
        for (const auto& i : v["secret"]["items"]) keys->insert(i["key"].as<std::string>());
      }
    for (const auto& vm : c["volumeMounts"])
      if (vm["name"].as<std::string>() == volume) return vm["mountPath"].as<std::string>();
    return std::string();
  };

  YAML::Node pod = m.Find("StatefulSet", "wrpn-coordinator")["spec"]["template"];
  YAML::Node plain_pod = plain.Find("StatefulSet", "wrpn-coordinator")["spec"]["template"];
  ASSERT_EQ(pod["spec"]["containers"].size(), 1u) << "no sidecar any more";
  const YAML::Node c = pod["spec"]["containers"][0];
  std::vector<std::string> want = args_of(plain_pod["spec"]["containers"][0]);
  std::set<std::string> keys;
  const std::string dir = tls_mount(pod["spec"], c, &keys);
  ASSERT_FALSE(dir.empty()) << "Secret wrpn-tls not mounted in the coordinator";
  EXPECT_EQ(keys, (std::set<std::string>{"tls.crt", "tls.key"}));
  want.push_back("--tls-cert=" + dir + "/tls.crt");
  want.push_back("--tls-key=" + dir + "/tls.key");
  EXPECT_EQ(args_of(c), want);
  for (const char* probe : {"startupProbe", "livenessProbe", "readinessProbe"}) {
    EXPECT_EQ(c[probe]["httpGet"]["scheme"].as<std::string>(""), "HTTPS") << probe;
    EXPECT_EQ(c[probe]["httpGet"]["port"].as<std::string>(), "http") << probe;
  }
  EXPECT_EQ(StringMap(pod["metadata"]["annotations"])["prometheus.io/scheme"], "https");
  EXPECT_EQ(StringMap(m.Find("Service", "wrpn-coordinator")["metadata"]["annotations"])
                ["prometheus.io/scheme"], "https");

  YAML::Node wpod = m.Find("Deployment", "wrpn-worker")["spec"]["template"]["spec"];
  YAML::Node plain_wpod = plain.Find("Deployment", "wrpn-worker")["spec"]["template"]["spec"];
  const YAML::Node w = wpod["containers"][0];
  std::set<std::string> wkeys;
  const std::string wdir = tls_mount(wpod, w, &wkeys);
  ASSERT_FALSE(wdir.empty()) << "Secret wrpn-tls not mounted in the worker";
  EXPECT_EQ(wkeys, std::set<std::string>{"ca.crt"}) << "the workers need the CA, never the key";
  std::vector<std::string> wwant = args_of(plain_wpod["containers"][0]);
  wwant.push_back("--tls-ca=" + wdir + "/ca.crt");
  EXPECT_EQ(args_of(w), wwant);
}

}  // namespace
}  // namespace wrpn::deploytest

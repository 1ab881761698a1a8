#include "tests/deploy/k8s_manifests.h"

#include <regex>

#include "tests/deploy/deploy_test_util.h"

namespace wrpn::deploytest {

YAML::Node Manifests::Find(const std::string& kind, const std::string& name) const {
  for (const auto& d : docs)
    if (d["kind"].as<std::string>("") == kind && d["metadata"]["name"].as<std::string>("") == name)
      return d;
  return YAML::Node(YAML::NodeType::Undefined);
}

std::vector<YAML::Node> Manifests::OfKind(const std::string& kind) const {
  std::vector<YAML::Node> out;
  for (const auto& d : docs)
    if (d["kind"].as<std::string>("") == kind) out.push_back(d);
  return out;
}

std::vector<YAML::Node> Manifests::Workloads() const {
  auto out = OfKind("Deployment");
  for (const auto& s : OfKind("StatefulSet")) out.push_back(s);
  return out;
}

Manifests RenderKustomization(const std::string& dir) {
  Manifests m;
  auto cmd = KustomizeCommand(dir);
  if (cmd.empty()) {
    m.error = "neither kubectl nor kustomize is on PATH (scripts/install-deps.sh installs kubectl)";
    return m;
  }
  auto r = RunCommand(cmd, std::chrono::seconds(60), /*keep_stderr=*/false);
  if (r.exit_code != 0) {
    m.error = "rendering " + dir + " failed: " + RunCommand(cmd).output;
    return m;
  }
  try {
    for (const auto& d : YAML::LoadAll(r.output))
      if (d.IsMap()) m.docs.push_back(d);
  } catch (const YAML::Exception& e) {
    m.error = std::string("rendered YAML does not parse: ") + e.what();
  }
  if (m.error.empty() && m.docs.empty()) m.error = "rendering " + dir + " produced no objects";
  return m;
}

std::map<std::string, std::string> StringMap(const YAML::Node& node) {
  std::map<std::string, std::string> out;
  if (node && node.IsMap())
    for (const auto& kv : node) out[kv.first.as<std::string>()] = kv.second.as<std::string>("");
  return out;
}

std::vector<std::string> FlagNames(const YAML::Node& container) {
  std::vector<std::string> out;
  static const std::regex flag(R"(^(--[A-Za-z0-9][A-Za-z0-9-]*))");
  for (const char* field : {"command", "args"}) {
    if (!container[field]) continue;
    for (const auto& a : container[field]) {
      std::smatch m;
      std::string s = a.as<std::string>();
      if (std::regex_search(s, m, flag)) out.push_back(m[1]);
    }
  }
  return out;
}

}  // namespace wrpn::deploytest

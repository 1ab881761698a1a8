// The rendered Kubernetes manifests of one overlay, indexed for cross-reference checks.
// Not thread-safe; cheap to copy (YAML::Node is a handle).
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace wrpn::deploytest {

struct Manifests {
  std::vector<YAML::Node> docs;
  std::string error;  // set when rendering or parsing failed

  // The object of `kind` named `name`; an undefined node when there is none.
  YAML::Node Find(const std::string& kind, const std::string& name) const;
  std::vector<YAML::Node> OfKind(const std::string& kind) const;
  // Deployments and StatefulSets.
  std::vector<YAML::Node> Workloads() const;
};

// Runs kustomize (kubectl kustomize, else kustomize build) on a directory and parses the output.
Manifests RenderKustomization(const std::string& dir);

std::map<std::string, std::string> StringMap(const YAML::Node& node);
// Every --flag name (without value) in a container's args and command.
std::vector<std::string> FlagNames(const YAML::Node& container);

}  // namespace wrpn::deploytest

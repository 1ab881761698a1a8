// Static checks of docker/Dockerfile.* and .dockerignore (compose.ContainerStack builds and runs
// the images where an engine can start; these run everywhere): pinned base images, documented build args, non-root final stages,
// the coordinator's healthcheck and ports, COPY sources that exist and are not ignored, stages
// that Compose builds, and docker/runtime-packages.sh on real binaries.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <regex>
#include <set>
#include <string>

#include "tests/deploy/deploy_test_util.h"
#include "tests/deploy/dockerfile.h"

namespace wrpn::deploytest {
namespace {

Dockerfile Load(const std::string& name) { return ParseDockerfile(ReadFile(SourcePath("docker/" + name))); }

std::vector<std::string> Instructions(const DockerStage& s, const std::string& keyword) {
  std::vector<std::string> out;
  for (const auto& i : s.instructions)
    if (i.keyword == keyword) out.push_back(i.args);
  return out;
}

class DockerfileTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DockerfileTest, BaseImagesArePinnedAndStagesResolve) {
  Dockerfile df = Load(GetParam());
  ASSERT_GE(df.stages.size(), 2u) << "expected a multi-stage build";
  std::set<std::string> stages;
  for (const auto& s : df.stages) {
    std::string base = df.Expand(s.base);
    EXPECT_EQ(base.find('$'), std::string::npos) << "unresolved ARG in FROM " << s.base;
    // scratch, the empty image (the optional ccache seed's default), has nothing to pin.
    if (!stages.count(base) && base != "scratch") {
      static const std::regex pinned(R"(^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)(@sha256:[0-9a-f]{64})?$)");
      EXPECT_TRUE(std::regex_match(base, pinned)) << "base image not pinned by tag: " << base;
      EXPECT_EQ(base.find(":latest"), std::string::npos) << base;
    }
    for (const auto& copy : Instructions(s, "COPY")) {
      std::smatch m;
      if (std::regex_search(copy, m, std::regex(R"(--from=([A-Za-z0-9_-]+))")))
        EXPECT_TRUE(stages.count(m[1])) << "COPY --from=" << m[1] << " names no earlier stage";
    }
    if (!s.name.empty()) stages.insert(s.name);
  }
}

TEST_P(DockerfileTest, EveryBuildArgIsDocumentedInTheHeader) {
  Dockerfile df = Load(GetParam());
  ASSERT_FALSE(df.args.empty());
  for (const auto& [name, value] : df.args)
    EXPECT_TRUE(std::regex_search(df.header, std::regex("#\\s+([A-Z_, ]*\\b)?" + name + "\\b")))
        << "ARG " << name << " is not documented in the header of docker/" << GetParam();
}

TEST_P(DockerfileTest, FinalStagesRunAsNonRootWithAnEntrypoint) {
  Dockerfile df = Load(GetParam());
  int finals = 0;
  for (const auto& s : df.stages) {
    auto entry = Instructions(s, "ENTRYPOINT");
    if (entry.empty()) continue;  // a build stage
    ++finals;
    auto users = Instructions(s, "USER");
    ASSERT_FALSE(users.empty()) << "stage " << s.name << " runs as root";
    std::string user = df.Expand(users.back());
    std::string uid = user.substr(0, user.find(':'));
    ASSERT_TRUE(std::regex_match(uid, std::regex("[0-9]+"))) << "USER " << user << " is not numeric";
    EXPECT_NE(std::stoi(uid), 0) << "stage " << s.name << " runs as uid 0";
    EXPECT_NE(entry.back().find("/usr/local/bin/wrpn-"), std::string::npos) << entry.back();
  }
  EXPECT_GE(finals, 1);
}

TEST_P(DockerfileTest, CopiedFilesExistAndAreInTheBuildContext) {
  Dockerfile df = Load(GetParam());
  std::string ignore = ReadFile(SourcePath(".dockerignore"));
  for (const auto& s : df.stages)
    for (const auto& copy : Instructions(s, "COPY")) {
      if (copy.find("--from=") != std::string::npos) continue;
      std::istringstream words(copy);
      std::vector<std::string> w;
      for (std::string x; words >> x;) w.push_back(x);
      for (size_t i = 0; i + 1 < w.size(); ++i) {
        if (w[i] == ".") continue;  // the whole context
        EXPECT_TRUE(FileExists(SourcePath(w[i]))) << "COPY source " << w[i] << " does not exist";
        EXPECT_FALSE(DockerIgnored(ignore, w[i])) << "COPY source " << w[i] << " is in .dockerignore";
      }
    }
  // What the builds read from the context (COPY . .) must not be ignored either.
  for (const char* needed : {"CMakeLists.txt", "common/CMakeLists.txt", "proto/wrpn/v1/coordinator.proto",
                             "server/CMakeLists.txt", "worker/CMakeLists.txt",
                             "data/wrpn_tables.json", "docker/runtime-packages.sh"})
    EXPECT_FALSE(DockerIgnored(ignore, needed)) << needed << " is excluded by .dockerignore";
}

INSTANTIATE_TEST_SUITE_P(Dockerfiles, DockerfileTest,
                         ::testing::Values("Dockerfile.coordinator", "Dockerfile.worker"),
                         [](const auto& info) {
                           return info.param == "Dockerfile.coordinator" ? std::string("coordinator")
                                                                        : std::string("worker");
                         });

TEST(DockerIgnore, KeepsBuildTreesGitAndSecretsOut) {
  std::string ignore = ReadFile(SourcePath(".dockerignore"));
  for (const char* out : {".git/HEAD", "build/CMakeCache.txt", "build-deploy/x.o",
                          "deploy/compose/secrets/tokens", "worker/__pycache__/x.pyc"})
    EXPECT_TRUE(DockerIgnored(ignore, out)) << out << " would be sent to the Docker daemon";
  EXPECT_FALSE(DockerIgnored(ignore, "deploy/compose/secrets/tokens.example"));
}

TEST(CoordinatorImage, HealthcheckAndPortsMatchTheDeployments) {
  Dockerfile df = Load("Dockerfile.coordinator");
  const DockerStage& final_stage = df.stages.back();
  auto health = Instructions(final_stage, "HEALTHCHECK");
  ASSERT_EQ(health.size(), 1u);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(health[0], m, std::regex(R"(http://127\.0\.0\.1:([0-9]+)(/[a-z]+))")))
      << health[0];
  EXPECT_TRUE(m[2] == "/healthz" || m[2] == "/readyz") << m[2];
  const std::string http_port = m[1];
  auto expose = Instructions(final_stage, "EXPOSE");
  ASSERT_EQ(expose.size(), 1u);
  EXPECT_EQ(expose[0], "7070 " + http_port);
  std::string cmd = Instructions(final_stage, "CMD").at(0);
  EXPECT_NE(cmd.find("--http-listen=0.0.0.0:" + http_port), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("--listen=0.0.0.0:7070"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("--token-file=/run/secrets/wrpn-tokens"), std::string::npos)
      << "the image should not default to running without tokens";
  // The same data path the deployments pass with --paper-tables.
  std::string copy_tables;
  for (const auto& c : Instructions(final_stage, "COPY"))
    if (c.find("wrpn_tables.json") != std::string::npos) copy_tables = c;
  EXPECT_NE(copy_tables.find("/usr/share/wrpn/wrpn_tables.json"), std::string::npos);
  EXPECT_NE(cmd.find("--paper-tables=/usr/share/wrpn/wrpn_tables.json"), std::string::npos);
  auto volumes = Instructions(final_stage, "VOLUME");
  ASSERT_EQ(volumes.size(), 1u);
  EXPECT_NE(volumes[0].find("/var/lib/wrpn"), std::string::npos);
}

TEST(WorkerImage, ComposeBuildsStagesThatExist) {
  Dockerfile df = Load("Dockerfile.worker");
  YAML::Node compose = YAML::LoadFile(SourcePath("deploy/compose/docker-compose.yml"));
  int built = 0;
  for (const auto& svc : compose["services"]) {
    YAML::Node build = svc.second["build"];
    if (!build) continue;
    ++built;
    std::string dockerfile = build["dockerfile"].as<std::string>();
    EXPECT_TRUE(FileExists(SourcePath(dockerfile))) << dockerfile;
    EXPECT_EQ(build["context"].as<std::string>(), "../..") << "context must be the repository root";
    if (build["target"]) {
      Dockerfile target_df = ParseDockerfile(ReadFile(SourcePath(dockerfile)));
      EXPECT_TRUE(target_df.Stage(build["target"].as<std::string>()))
          << svc.first << " builds missing target " << build["target"];
    }
  }
  EXPECT_EQ(built, 3);
  // The default target (last stage) is the GPU worker; the CPU one is named.
  EXPECT_EQ(df.stages.back().name, "worker-gpu");
  EXPECT_TRUE(df.Stage("worker-cpu"));
}

// The Debian stand-in for prom/prometheus takes the flags, config mount, volume and port that
// Compose gives the upstream image, and stays opt-in (WRPN_PROMETHEUS_IMAGE).
TEST(PrometheusImage, StandsInForTheUpstreamImageInCompose) {
  Dockerfile df = Load("Dockerfile.prometheus");
  ASSERT_EQ(df.stages.size(), 1u);
  const DockerStage& s = df.stages.back();
  EXPECT_EQ(df.Expand(s.base), "debian:12.11-slim");
  auto users = Instructions(s, "USER");
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0], "65534:65534") << "runs as nobody, as prom/prometheus does";
  EXPECT_EQ(Instructions(s, "EXPOSE"), std::vector<std::string>{"9090"});
  EXPECT_NE(Instructions(s, "VOLUME").at(0).find("/prometheus"), std::string::npos);
  EXPECT_NE(Instructions(s, "ENTRYPOINT").at(0).find("/usr/bin/prometheus"), std::string::npos);
  YAML::Node prom = YAML::LoadFile(SourcePath("deploy/compose/docker-compose.yml"))["services"]["prometheus"];
  EXPECT_EQ(prom["image"].as<std::string>(), "${WRPN_PROMETHEUS_IMAGE:-prom/prometheus:v2.53.0}");
  bool config = false, storage = false;
  for (const auto& c : prom["command"]) {
    config |= c.as<std::string>() == "--config.file=/etc/prometheus/prometheus.yml";
    storage |= c.as<std::string>() == "--storage.tsdb.path=/prometheus";
  }
  EXPECT_TRUE(config && storage) << "Compose passes the paths the image is laid out for";
}

// docker/runtime-packages.sh, which both images use to install exactly the runtime libraries.
TEST(RuntimePackages, NamesThePackagesOfABinarysLibrariesAndRejectsUnpackagedOnes) {
  std::string cmake = FindOnPath({"cmake"});
  ASSERT_FALSE(cmake.empty());
  auto r = RunCommand({"sh", SourcePath("docker/runtime-packages.sh"), cmake});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("libc6\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("libstdc++6\n"), std::string::npos) << r.output;

  // A library copied by hand (here: libstdc++ from a private directory) belongs to no package.
  TempDir dir;
  std::string lib = dir.path() + "/lib";
  std::filesystem::create_directories(lib);
  auto ldd = RunCommand({"ldd", cmake});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(ldd.output, m, std::regex(R"(libstdc\+\+\.so\.6 => (\S+))"))) << ldd.output;
  std::filesystem::copy_file(m[1].str(), lib + "/libstdc++.so.6");
  WriteFile(dir.path() + "/run.sh", "LD_LIBRARY_PATH=" + lib + " exec sh " +
                                        SourcePath("docker/runtime-packages.sh") + " \"$@\"\n");
  auto bad = RunCommand({"sh", dir.path() + "/run.sh", cmake});
  EXPECT_NE(bad.exit_code, 0) << bad.output;
  EXPECT_NE(bad.output.find("no package owns " + lib + "/libstdc++.so.6"), std::string::npos) << bad.output;
  // ... unless that prefix is declared as copied into the image.
  auto ignored = RunCommand({"sh", dir.path() + "/run.sh", "--ignore", lib + "/", cmake});
  EXPECT_EQ(ignored.exit_code, 0) << ignored.output;
  EXPECT_EQ(ignored.output.find("libstdc++6"), std::string::npos) << ignored.output;
}

}  // namespace
}  // namespace wrpn::deploytest

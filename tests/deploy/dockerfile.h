// A small reader for the Dockerfiles in docker/: instructions with continuation lines joined,
// grouped by stage, plus the global ARG defaults. Enough for static checks; not a full parser.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace wrpn::deploytest {

struct DockerInstruction {
  std::string keyword;  // upper case: FROM, RUN, COPY, ...
  std::string args;     // the rest of the (joined) line
};

struct DockerStage {
  std::string base;  // FROM image as written (may hold ${ARG})
  std::string name;  // AS name, or ""
  std::vector<DockerInstruction> instructions;
};

struct Dockerfile {
  std::string header;  // the leading comment block (documentation)
  std::map<std::string, std::string> args;  // every ARG with a default, global or per stage
  std::vector<DockerStage> stages;

  // Replaces ${NAME} and $NAME by ARG defaults.
  std::string Expand(const std::string& s) const;
  const DockerStage* Stage(const std::string& name) const;
};

Dockerfile ParseDockerfile(const std::string& text);

// Whether `path` (relative to the context root) is excluded by .dockerignore patterns.
bool DockerIgnored(const std::string& dockerignore, const std::string& path);

}  // namespace wrpn::deploytest

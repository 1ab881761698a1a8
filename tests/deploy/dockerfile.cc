#include "tests/deploy/dockerfile.h"

#include <fnmatch.h>

#include <cctype>
#include <regex>
#include <sstream>

namespace wrpn::deploytest {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

std::string Dockerfile::Expand(const std::string& s) const {
  static const std::regex var(R"(\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*))");
  std::string out;
  auto begin = std::sregex_iterator(s.begin(), s.end(), var);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    out += s.substr(last, static_cast<size_t>(m.position()) - last);
    std::string name = m[1].matched ? m[1].str() : m[2].str();
    auto a = args.find(name);
    out += a != args.end() ? a->second : m.str();
    last = static_cast<size_t>(m.position() + m.length());
  }
  return out + s.substr(last);
}

const DockerStage* Dockerfile::Stage(const std::string& name) const {
  for (const auto& s : stages)
    if (s.name == name) return &s;
  return nullptr;
}

Dockerfile ParseDockerfile(const std::string& text) {
  Dockerfile df;
  std::istringstream in(text);
  std::string line, pending;
  bool in_header = true;
  std::vector<std::string> logical;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') {
      if (in_header && !t.empty()) df.header += t + "\n";
      continue;  // comments may sit inside continued instructions
    }
    in_header = false;
    if (!t.empty() && t.back() == '\\') {
      pending += t.substr(0, t.size() - 1) + " ";
      continue;
    }
    logical.push_back(pending + t);
    pending.clear();
  }
  if (!pending.empty()) logical.push_back(pending);
  for (const auto& l : logical) {
    auto sp = l.find_first_of(" \t");
    DockerInstruction ins;
    ins.keyword = l.substr(0, sp);
    for (auto& c : ins.keyword) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    ins.args = sp == std::string::npos ? "" : Trim(l.substr(sp));
    if (ins.keyword == "ARG") {
      auto eq = ins.args.find('=');
      if (eq != std::string::npos) {
        std::string value = Trim(ins.args.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
          value = value.substr(1, value.size() - 2);
        df.args.emplace(Trim(ins.args.substr(0, eq)), value);
      } else {
        df.args.emplace(Trim(ins.args), "");
      }
    }
    if (ins.keyword == "FROM") {
      DockerStage st;
      std::istringstream words(ins.args);
      std::vector<std::string> w;
      for (std::string x; words >> x;) w.push_back(x);
      size_t i = 0;
      while (i < w.size() && w[i].rfind("--", 0) == 0) ++i;  // --platform=...
      if (i < w.size()) st.base = w[i];
      if (i + 2 < w.size()) st.name = w[i + 2];
      df.stages.push_back(st);
      continue;
    }
    if (!df.stages.empty()) df.stages.back().instructions.push_back(ins);
  }
  return df;
}

bool DockerIgnored(const std::string& dockerignore, const std::string& path) {
  std::istringstream in(dockerignore);
  std::string line;
  bool ignored = false;
  while (std::getline(in, line)) {
    std::string p = Trim(line);
    if (p.empty() || p[0] == '#') continue;
    bool negate = p[0] == '!';
    if (negate) p = p.substr(1);
    while (!p.empty() && p.back() == '/') p.pop_back();
    // A pattern matches the path itself or any directory above it.
    bool match = false;
    std::string prefix;
    std::istringstream parts(path);
    for (std::string part; std::getline(parts, part, '/');) {
      prefix += (prefix.empty() ? "" : "/") + part;
      std::string pat = p;
      if (pat.rfind("**/", 0) == 0) {
        // **/x matches x at any depth.
        std::string rest = pat.substr(3);
        std::string last = prefix.substr(prefix.rfind('/') == std::string::npos ? 0 : prefix.rfind('/') + 1);
        match = match || fnmatch(rest.c_str(), last.c_str(), 0) == 0 ||
                fnmatch(rest.c_str(), prefix.c_str(), FNM_PATHNAME) == 0;
      } else {
        match = match || fnmatch(pat.c_str(), prefix.c_str(), FNM_PATHNAME) == 0;
      }
    }
    if (match) ignored = !negate;
  }
  return ignored;
}

}  // namespace wrpn::deploytest

#include "controller/cli/tree.h"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <utility>

#include "controller/api/codec.h"
#include "controller/rollout/oci_manifest.h"

namespace rollgate::cli {
namespace {

using std::chrono::seconds;

constexpr const char* kGreen = "32";
constexpr const char* kRed = "31";
constexpr const char* kYellow = "33";
constexpr const char* kBlue = "34";
constexpr const char* kMagenta = "35";
constexpr const char* kDim = "2";
constexpr const char* kBold = "1";

struct Painter {
  bool on = false;
  std::string operator()(const std::string& text, const char* code) const {
    if (!on || text.empty()) return text;
    return std::string("\x1b[") + code + "m" + text + "\x1b[0m";
  }
};

struct Node {
  std::string text;
  std::vector<Node> children;
};

void Draw(const std::vector<Node>& nodes, const std::string& prefix,
          std::vector<std::string>& out) {
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const bool last = i + 1 == nodes.size();
    out.push_back(prefix + (last ? "└── " : "├── ") + nodes[i].text);
    Draw(nodes[i].children, prefix + (last ? "    " : "│   "), out);
  }
}

// The symbol and colour of a phase.
std::pair<const char*, const char*> Look(api::RolloutPhase p) {
  switch (p) {
    case api::RolloutPhase::kSucceeded:
      return {"✔", kGreen};
    case api::RolloutPhase::kFailed:
    case api::RolloutPhase::kRolledBack:
    case api::RolloutPhase::kAborted:
      return {"✖", kRed};
    case api::RolloutPhase::kAwaitingApproval:
    case api::RolloutPhase::kPaused:
      return {"‖", kMagenta};
    case api::RolloutPhase::kProgressing:
    case api::RolloutPhase::kRollingBack:
      return {"◌", kYellow};
    case api::RolloutPhase::kNone:
    case api::RolloutPhase::kPending:
      return {"·", kDim};
  }
  return {"·", kDim};
}

std::pair<const char*, const char*> Look(api::EnvironmentPhase p) {
  switch (p) {
    case api::EnvironmentPhase::kSucceeded:
      return {"✔", kGreen};
    case api::EnvironmentPhase::kFailed:
    case api::EnvironmentPhase::kRolledBack:
      return {"✖", kRed};
    case api::EnvironmentPhase::kAwaitingApproval:
      return {"‖", kMagenta};
    case api::EnvironmentPhase::kUpdating:
    case api::EnvironmentPhase::kVerifying:
    case api::EnvironmentPhase::kBaking:
    case api::EnvironmentPhase::kRollingBack:
      return {"◌", kYellow};
    case api::EnvironmentPhase::kPending:
      return {"·", kDim};
  }
  return {"·", kDim};
}

std::pair<const char*, const char*> Look(api::SmokeCheckPhase p) {
  switch (p) {
    case api::SmokeCheckPhase::kPassed:
      return {"✔", kGreen};
    case api::SmokeCheckPhase::kFailed:
    case api::SmokeCheckPhase::kTimedOut:
      return {"✖", kRed};
    case api::SmokeCheckPhase::kRunning:
      return {"◌", kYellow};
  }
  return {"·", kDim};
}

template <class Phase>
std::string PhaseText(Phase p, const Painter& paint) {
  const auto [symbol, colour] = Look(p);
  std::string name = api::PhaseName(p);
  if (name.empty()) name = "Pending";
  return paint(std::string(symbol) + " " + name, colour);
}

std::string Elapsed(const std::optional<api::WallTime>& from,
                    const std::optional<api::WallTime>& to, api::WallTime now) {
  if (!from) return "";
  return HumanDuration(std::chrono::duration_cast<seconds>(to.value_or(now) - *from));
}

std::string Ratio(int n, int of) { return std::to_string(n) + "/" + std::to_string(of); }

// The lines of a message (at most `max`, the last ones), each trimmed.
std::vector<std::string> MessageLines(const std::string& message, std::size_t max) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= message.size()) {
    std::size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    std::string line = message.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
    start = end + 1;
  }
  if (lines.size() > max) lines.erase(lines.begin(), lines.end() - static_cast<long>(max));
  return lines;
}

// The first line of a message, for a one-line summary.
std::string OneLine(const std::string& message) {
  auto lines = MessageLines(message, 1000);
  if (lines.empty()) return "";
  return lines.size() == 1 ? lines[0] : lines[0] + " …";
}

const api::EnvironmentStatus* FindEnv(const api::Rollout& r, const std::string& name) {
  for (const auto& e : r.status.environments) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const api::DeploymentView* FindDeployment(const std::vector<api::DeploymentView>& ds,
                                          const std::string& ns, const std::string& name) {
  for (const auto& d : ds) {
    if (d.namespace_ == ns && d.name == name) return &d;
  }
  return nullptr;
}

std::string ReplicaCounts(int updated, int ready, int available, int desired) {
  return "updated " + Ratio(updated, desired) + "  ready " + Ratio(ready, desired) +
         "  available " + Ratio(available, desired);
}

std::string SmokeCheckText(const api::SmokeCheckStatus& c, api::WallTime now,
                           const Painter& paint) {
  std::string text = "smoke check " + paint(c.name, kBold) + "  " + PhaseText(c.phase, paint);
  if (c.exit_code) text += "  exit " + std::to_string(*c.exit_code);
  if (const std::string d = Elapsed(c.started_at, c.finished_at, now); !d.empty()) {
    text += "  " + d;
  }
  if (!c.job.empty()) text += paint("  job " + c.job, kDim);
  return text;
}

Node SmokeCheckNode(const api::SmokeCheckStatus& c, api::WallTime now, const Painter& paint) {
  Node n{SmokeCheckText(c, now, paint), {}};
  if (c.phase != api::SmokeCheckPhase::kPassed) {
    for (auto& line : MessageLines(c.message, 5)) n.children.push_back({paint(line, kDim), {}});
  }
  return n;
}

Node TargetNode(const api::Rollout& r, const api::EnvironmentSpec& spec,
                const api::EnvironmentStatus* env, const api::TargetSpec& t,
                const std::vector<api::DeploymentView>& deployments, const TreeOptions& opts,
                const Painter& paint) {
  std::string ns = api::EnvironmentNamespace(r, spec);
  const api::TargetStatus* ts = nullptr;
  if (env != nullptr) {
    for (const auto& s : env->targets) {
      if (s.deployment == t.deployment) {
        ts = &s;
        if (!s.namespace_.empty()) ns = s.namespace_;
      }
    }
  }
  const api::DeploymentView* d = FindDeployment(deployments, ns, t.deployment);
  Node n{"Deployment " + paint(ns + "/" + t.deployment, kBold), {}};
  if (ts != nullptr && ts->replicas > 0) {
    n.text += "  " + ReplicaCounts(ts->updated_replicas, ts->ready_replicas, ts->available_replicas,
                                   ts->replicas);
  } else if (d != nullptr) {
    n.text += "  " + ReplicaCounts(d->updated_replicas, d->ready_replicas, d->available_replicas,
                                   d->spec_replicas);
  } else {
    n.text += paint("  (not observed)", kDim);
  }
  if (d != nullptr) {
    for (const auto& [container, logical] : t.containers) {
      auto it = d->container_images.find(container);
      if (it == d->container_images.end()) continue;
      n.children.push_back({"container " + container + ": " + it->second, {}});
    }
  }
  if (ts != nullptr) {
    for (const auto& [container, image] : ts->previous_images) {
      std::string was = "container " + container;
      was += " was ";
      was += image;
      n.children.push_back({paint(was, kDim), {}});
    }
  }
  if (env != nullptr) {
    for (const auto& c : env->smoke_checks) {
      if (c.target == t.deployment) n.children.push_back(SmokeCheckNode(c, opts.now, paint));
    }
  }
  return n;
}

Node EnvironmentNode(const api::Rollout& r, const api::EnvironmentSpec& spec,
                     const std::vector<api::DeploymentView>& deployments, std::size_t name_width,
                     const TreeOptions& opts, const Painter& paint) {
  const api::EnvironmentStatus* env = FindEnv(r, spec.name);
  const api::EnvironmentPhase phase = env != nullptr ? env->phase : api::EnvironmentPhase::kPending;
  std::string name = spec.name;
  name.resize(std::max(name_width, name.size()), ' ');
  std::string text = paint(name, kBold) + "  " + PhaseText(phase, paint);
  if (env != nullptr) {
    if (const std::string d = Elapsed(env->started_at, env->finished_at, opts.now); !d.empty()) {
      text += "  " + d;
    }
    std::string words;
    if (!env->reason.empty() && env->reason != "Succeeded") words = env->reason + ": ";
    words += OneLine(env->message);
    if (!words.empty()) {
      const bool bad =
          phase == api::EnvironmentPhase::kFailed || phase == api::EnvironmentPhase::kRolledBack;
      text += "  " + paint(words, bad ? kRed : kDim);
    }
  }
  Node n{text, {}};
  if (spec.manual_approval) {
    std::string approval = "approval: ";
    if (env != nullptr && env->approved_at) {
      approval += "approved " + api::FormatTime(*env->approved_at);
    } else {
      approval += phase == api::EnvironmentPhase::kAwaitingApproval
                      ? paint("awaited: " + opts.program + " promote " + r.name, kMagenta)
                      : "required";
    }
    n.children.push_back({approval, {}});
  }
  for (const auto& t : spec.targets) {
    n.children.push_back(TargetNode(r, spec, env, t, deployments, opts, paint));
  }
  if (env == nullptr) return n;
  for (const auto& c : env->smoke_checks) {
    bool matched = false;
    for (const auto& t : spec.targets) matched = matched || t.deployment == c.target;
    if (!matched) n.children.push_back(SmokeCheckNode(c, opts.now, paint));
  }
  if (env->validation) {
    const auto& v = *env->validation;
    std::string text2 = "worker validation: " + Ratio(v.passed, v.gpu_pods) + " GPU pods passed";
    if (v.failed > 0) text2 += ", " + paint(std::to_string(v.failed) + " failed", kRed);
    if (!v.message.empty()) text2 += paint("  last: " + OneLine(v.message), kDim);
    n.children.push_back({text2, {}});
  }
  if (env->analysis) {
    const auto& a = *env->analysis;
    const int want = spec.analysis ? spec.analysis->samples : a.samples;
    std::string text2 =
        "analysis: " + Ratio(a.samples, want) + " samples, " + std::to_string(a.passed) + " passed";
    if (a.failed > 0) text2 += ", " + paint(std::to_string(a.failed) + " failed", kRed);
    if (a.inconclusive > 0) text2 += ", " + std::to_string(a.inconclusive) + " inconclusive";
    if (!a.last_value.empty()) text2 += "  last value " + a.last_value;
    if (a.last_sample_at) {
      text2 += paint(
          " (" + HumanDuration(std::chrono::duration_cast<seconds>(opts.now - *a.last_sample_at)) +
              " ago)",
          kDim);
    }
    if (!a.message.empty() && a.failed > 0) text2 += paint("  " + OneLine(a.message), kDim);
    n.children.push_back({text2, {}});
  }
  if (spec.bake_seconds > 0 && env->verified_at &&
      (phase == api::EnvironmentPhase::kBaking || phase == api::EnvironmentPhase::kSucceeded)) {
    const api::WallTime end = *env->verified_at + seconds(spec.bake_seconds);
    const std::string total = HumanDuration(seconds(spec.bake_seconds));
    if (phase == api::EnvironmentPhase::kBaking) {
      n.children.push_back(
          {"bake: " + HumanDuration(std::chrono::duration_cast<seconds>(end - opts.now)) +
               " left of " + total,
           {}});
    } else {
      n.children.push_back({"bake: " + total + " done", {}});
    }
  }
  return n;
}

}  // namespace

std::string HumanDuration(seconds d) {
  long long s = std::max<long long>(0, d.count());
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, (s % 86400) / 3600);
  }
  return buf;
}

bool UseColor(bool stdout_is_tty, const char* no_color_env) {
  return stdout_is_tty && (no_color_env == nullptr || *no_color_env == '\0');
}

namespace {

// The end (one past) of the escape sequence that starts at line[i] (an ESC): CSI ("ESC [",
// parameters, a final byte 0x40-0x7E), OSC ("ESC ]" up to BEL or ESC \\), else ESC and one byte.
std::size_t EscapeEnd(const std::string& line, std::size_t i) {
  const std::size_t n = line.size();
  if (i + 1 >= n) return n;
  if (line[i + 1] == '[') {
    std::size_t j = i + 2;
    while (j < n && (line[j] < 0x40 || line[j] > 0x7e)) ++j;
    return j < n ? j + 1 : n;
  }
  if (line[i + 1] == ']') {
    for (std::size_t j = i + 2; j < n; ++j) {
      if (line[j] == '\a') return j + 1;
      if (line[j] == '\x1b' && j + 1 < n && line[j + 1] == '\\') return j + 2;
    }
    return n;
  }
  return i + 2;
}

// Whether the escape sequence line[begin, end) is an SGR that leaves a colour or attribute on:
// its last parameter is neither empty nor 0 ("ESC[m", "ESC[0m" and "ESC[31;0m" turn it off).
std::optional<bool> SgrLeavesColorOn(const std::string& line, std::size_t begin, std::size_t end) {
  if (end - begin < 3 || line[begin + 1] != '[' || line[end - 1] != 'm') return std::nullopt;
  const std::string params = line.substr(begin + 2, end - begin - 3);
  const std::size_t semi = params.rfind(';');
  const std::string last = semi == std::string::npos ? params : params.substr(semi + 1);
  return !(last.empty() || last == "0" || last == "00");
}

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; }

}  // namespace

int DisplayWidth(const std::string& line) {
  int width = 0;
  for (std::size_t i = 0; i < line.size();) {
    if (line[i] == '\x1b') {
      i = EscapeEnd(line, i);
      continue;
    }
    if (!IsContinuationByte(line[i])) ++width;
    ++i;
  }
  return width;
}

std::string CutToWidth(const std::string& line, int columns) {
  if (columns <= 0 || DisplayWidth(line) <= columns) return line;
  std::string out;
  out.reserve(static_cast<std::size_t>(columns) + 16);
  bool color_on = false;
  int width = 0;
  for (std::size_t i = 0; i < line.size();) {
    if (line[i] == '\x1b') {
      const std::size_t end = EscapeEnd(line, i);
      if (const auto on = SgrLeavesColorOn(line, i, end)) color_on = *on;
      out.append(line, i, end - i);
      i = end;
      continue;
    }
    if (!IsContinuationByte(line[i])) {
      if (width == columns - 1) break;  // the last column is the ellipsis's
      ++width;
    }
    out += line[i];
    ++i;
  }
  out += "…";
  if (color_on) out += "\x1b[0m";
  return out;
}

std::string WaitingFor(const api::Rollout& r, const TreeOptions& opts) {
  const auto& s = r.status;
  if (api::IsTerminal(s.phase)) return "";
  if (r.spec.paused || s.phase == api::RolloutPhase::kPaused) {
    return "the rollout to be resumed (spec.paused is true)";
  }
  const api::EnvironmentStatus* env = FindEnv(r, s.current_environment);
  const api::EnvironmentSpec* spec = nullptr;
  for (const auto& e : r.spec.environments) {
    if (e.name == s.current_environment) spec = &e;
  }
  if (env == nullptr || spec == nullptr) {
    return s.phase == api::RolloutPhase::kNone ? "the controller to pick the rollout up" : "";
  }
  const std::string where = " of environment " + env->name;
  switch (env->phase) {
    case api::EnvironmentPhase::kAwaitingApproval:
      return "approval" + where + ": " + opts.program + " promote " + r.name;
    case api::EnvironmentPhase::kBaking:
      if (env->verified_at) {
        const api::WallTime end = *env->verified_at + seconds(spec->bake_seconds);
        return "the bake time" + where + ": " +
               HumanDuration(std::chrono::duration_cast<seconds>(end - opts.now)) + " left";
      }
      return "the bake time" + where;
    case api::EnvironmentPhase::kVerifying:
      for (const auto& c : env->smoke_checks) {
        if (c.phase == api::SmokeCheckPhase::kRunning) return "smoke check " + c.name + where;
      }
      if (env->validation && env->validation->gpu_pods > 0 &&
          env->validation->passed < env->validation->gpu_pods) {
        return "worker validation" + where + ": " +
               Ratio(env->validation->passed, env->validation->gpu_pods) + " GPU pods passed";
      }
      if (spec->analysis && env->analysis) {
        return "analysis" + where + ": " + Ratio(env->analysis->samples, spec->analysis->samples) +
               " samples";
      }
      return "the Deployments" + where + " to be ready" +
             (env->message.empty() ? "" : ": " + OneLine(env->message));
    case api::EnvironmentPhase::kPending:
    case api::EnvironmentPhase::kUpdating:
      return "environment " + env->name + " to start" +
             (env->message.empty() ? "" : ": " + OneLine(env->message));
    case api::EnvironmentPhase::kRollingBack:
      return "the rollback" + where;
    case api::EnvironmentPhase::kSucceeded:
    case api::EnvironmentPhase::kRolledBack:
    case api::EnvironmentPhase::kFailed:
      return "";
  }
  return "";
}

std::vector<std::string> RenderTree(const api::Rollout& r,
                                    const std::vector<api::DeploymentView>& deployments,
                                    const TreeOptions& opts) {
  const Painter paint{opts.color};
  const auto& s = r.status;
  std::vector<std::string> out;
  auto field = [&out, &paint](const std::string& key, const std::string& value) {
    std::string k = key + ":";
    if (!value.empty()) k.resize(std::max<std::size_t>(k.size(), 13), ' ');
    out.push_back(paint(k, kBold) + value);
  };
  field("Name", r.name);
  field("Namespace", r.namespace_);
  field("Phase", s.phase == api::RolloutPhase::kNone ? paint("· (not reconciled yet)", kDim)
                                                     : PhaseText(s.phase, paint));
  field("Revision", std::to_string(s.revision));
  if (!s.current_environment.empty()) field("Environment", s.current_environment);
  if (!s.message.empty()) field("Message", OneLine(s.message));
  if (const std::string w = WaitingFor(r, opts); !w.empty()) {
    field("Waiting for", paint(w, kMagenta));
  }
  if (!r.spec.images.empty()) {
    field("Images", "");
    std::size_t width = 0;
    for (const auto& [logical, ref] : r.spec.images) width = std::max(width, logical.size());
    for (const auto& [logical, ref] : r.spec.images) {
      std::string line = "  " + logical;
      line.append(width - logical.size() + 2, ' ');
      line += ref;
      for (const auto& resolved : s.resolved_images) {
        if (resolved.name != logical || resolved.reference != ref) continue;
        line += paint("@" + resolved.digest, kBlue);
        if (resolved.size > 0) line += "  " + rollout::HumanBytes(resolved.size);
      }
      out.push_back(line);
    }
  }
  std::size_t name_width = 0;
  for (const auto& e : r.spec.environments) name_width = std::max(name_width, e.name.size());
  std::vector<Node> envs;
  envs.reserve(r.spec.environments.size());
  for (const auto& e : r.spec.environments) {
    envs.push_back(EnvironmentNode(r, e, deployments, name_width, opts, paint));
  }
  if (!envs.empty()) {
    field("Environments", "");
    Draw(envs, "", out);
  }
  return out;
}

}  // namespace rollgate::cli

#include "controller/cli/history.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "controller/api/codec.h"
#include "controller/cli/output.h"
#include "controller/cli/tree.h"
#include "controller/kube/json_fields.h"
#include "controller/kube/kube_client.h"
#include "controller/rollout/planner.h"

namespace rollgate::cli {
namespace {

using Json = web::json::value;
using std::chrono::seconds;

std::string Images(const std::map<std::string, std::string>& images) {
  std::string out;
  for (const auto& [logical, ref] : images) {
    if (!out.empty()) out += ",";
    out += logical;
    out += "=";
    out += ref;
  }
  return out.empty() ? "<none>" : out;
}

// `text` on one line: line breaks and tabs become spaces.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return text;
}

std::string In(OutputFormat format, const Json& v) {
  return format == OutputFormat::kYaml ? ToYaml(v) : PrettyJson(v);
}

// When an Event last happened: lastTimestamp, else eventTime, else firstTimestamp, else its
// creation.
std::optional<api::WallTime> EventTime(const Json& ev) {
  for (const char* field : {"lastTimestamp", "eventTime", "firstTimestamp"}) {
    if (auto t = api::ParseTime(kube::StringField(ev, field))) return t;
  }
  return api::ParseTime(kube::MetaString(ev, "creationTimestamp"));
}

std::string InvolvedUid(const Json& ev) {
  const Json* ref = kube::Field(ev, "involvedObject");
  return ref == nullptr ? "" : kube::StringField(*ref, "uid");
}

std::string StateName(ImageState s) {
  switch (s) {
    case ImageState::kSame:
      return "Same";
    case ImageState::kDiffers:
      return "Differs";
    case ImageState::kMissing:
      return "Missing";
  }
  return "";
}

std::string Marker(ImageState s) {
  switch (s) {
    case ImageState::kSame:
      return "=";
    case ImageState::kDiffers:
      return "~";
    case ImageState::kMissing:
      return "?";
  }
  return "";
}

// The RUNNING cell: the image, or why there is none.
std::string Running(const ImageDiff& d) {
  if (d.state != ImageState::kMissing) return d.running;
  return d.missing == "unreadable" ? "<unreadable>" : "<no " + d.missing + ">";
}

}  // namespace

std::vector<api::RevisionRecord> HistoryOf(const api::Rollout& r) {
  std::vector<api::RevisionRecord> out = r.status.history;
  const bool recorded = std::any_of(out.begin(), out.end(), [&](const api::RevisionRecord& h) {
    return h.revision == r.status.revision;
  });
  if (!recorded && r.status.revision > 0) {
    api::RevisionRecord current;
    current.revision = r.status.revision;
    current.images = r.spec.images;
    current.phase = r.status.phase;
    out.push_back(std::move(current));
  }
  return out;
}

std::string HistoryTable(const api::Rollout& r, api::WallTime now) {
  std::vector<std::vector<std::string>> rows = {
      {"REVISION", "PHASE", "STARTED", "DURATION", "IMAGES", "REASON"}};
  for (const auto& h : HistoryOf(r)) {
    std::string revision = std::to_string(h.revision);
    if (h.revision == r.status.revision) revision += " (current)";
    const std::string phase = api::PhaseName(h.phase);
    std::string duration = "<unknown>";
    if (h.started_at) {
      duration = HumanDuration(
          std::chrono::duration_cast<seconds>(h.finished_at.value_or(now) - *h.started_at));
    }
    rows.push_back({revision, phase.empty() ? "<none>" : phase,
                    h.started_at ? api::FormatTime(*h.started_at) : "<unknown>", duration,
                    Images(h.images), h.reason});
  }
  return FormatTable(rows);
}

std::string FormatHistory(const api::Rollout& r, OutputFormat format) {
  return In(format, api::EncodeHistory(HistoryOf(r)));
}

std::string EventsTable(const std::vector<Json>& events, const std::string& uid,
                        api::WallTime now) {
  std::vector<std::pair<api::WallTime, const Json*>> kept;
  for (const auto& ev : events) {
    const std::string about = InvolvedUid(ev);
    if (!uid.empty() && !about.empty() && about != uid) continue;
    kept.emplace_back(EventTime(ev).value_or(api::WallTime{}), &ev);
  }
  if (kept.empty()) return "Events:  <none>\n";
  std::stable_sort(kept.begin(), kept.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::vector<std::string>> rows = {{"LAST SEEN", "TYPE", "REASON", "MESSAGE"}};
  for (const auto& [at, ev] : kept) {
    std::string seen = at == api::WallTime{}
                           ? "<unknown>"
                           : HumanDuration(std::chrono::duration_cast<seconds>(now - at));
    if (const Json* count = kube::Field(*ev, "count");
        count != nullptr && count->is_integer() && count->as_number().to_int64() > 1) {
      seen += " (x" + std::to_string(count->as_number().to_int64()) + ")";
    }
    rows.push_back({seen, kube::StringField(*ev, "type"), kube::StringField(*ev, "reason"),
                    OneLine(kube::StringField(*ev, "message"))});
  }
  return "Events:\n" + FormatTable(rows);
}

std::vector<ImageDiff> DiffImages(const api::Rollout& r,
                                  const std::vector<api::DeploymentView>& deployments,
                                  const std::map<std::string, std::string>& unreadable) {
  // The planner's rule: spec.images, pinned to the recorded digests when the rollout pins.
  const std::map<std::string, std::string> images = rollout::PinnedImages(r);
  std::vector<ImageDiff> out;
  for (const auto& env : r.spec.environments) {
    const std::string ns = api::EnvironmentNamespace(r, env);
    for (const auto& t : env.targets) {
      const std::string key = ns + "/" + t.deployment;
      const auto d = std::find_if(deployments.begin(), deployments.end(),
                                  [&](const api::DeploymentView& v) { return v.Key() == key; });
      for (const auto& [container, image] : rollout::DesiredImages(images, t)) {
        ImageDiff row;
        row.environment = env.name;
        row.namespace_ = ns;
        row.deployment = t.deployment;
        row.container = container;
        row.spec = image;
        if (d == deployments.end()) {
          row.missing = unreadable.contains(key) ? "unreadable" : "deployment";
        } else if (auto c = d->container_images.find(container); c == d->container_images.end()) {
          row.missing = "container";
        } else {
          row.running = c->second;
          row.state = row.running == row.spec ? ImageState::kSame : ImageState::kDiffers;
        }
        out.push_back(std::move(row));
      }
    }
  }
  return out;
}

std::string DiffTable(const std::vector<ImageDiff>& rows) {
  std::vector<std::vector<std::string>> table = {
      {"", "ENVIRONMENT", "NAMESPACE", "DEPLOYMENT", "CONTAINER", "SPEC", "RUNNING"}};
  for (const auto& d : rows) {
    table.push_back({Marker(d.state), d.environment, d.namespace_, d.deployment, d.container,
                     d.spec.empty() ? "<none>" : d.spec, Running(d)});
  }
  return FormatTable(table);
}

std::string FormatDiff(const std::vector<ImageDiff>& rows, OutputFormat format) {
  Json list = Json::array();
  std::size_t i = 0;
  for (const auto& d : rows) {
    Json o = Json::object(true);
    o["environment"] = Json::string(d.environment);
    o["namespace"] = Json::string(d.namespace_);
    o["deployment"] = Json::string(d.deployment);
    o["container"] = Json::string(d.container);
    o["spec"] = Json::string(d.spec);
    if (d.state != ImageState::kMissing) o["running"] = Json::string(d.running);
    o["state"] = Json::string(StateName(d.state));
    if (d.state == ImageState::kMissing) o["missing"] = Json::string(d.missing);
    list[i++] = o;
  }
  return In(format, list);
}

}  // namespace rollgate::cli

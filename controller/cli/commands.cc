#include "controller/cli/commands.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "controller/api/codec.h"
#include "controller/cli/history.h"
#include "controller/cli/output.h"
#include "controller/cli/tree.h"

namespace rollgate::cli {
namespace {

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

TreeOptions TreeOpts(const Options& o, const Io& io) {
  TreeOptions t;
  t.now = io.now();
  t.color = io.color;
  t.program = o.program;
  return t;
}

// What the watch thread hands to the drawing thread.
struct Snapshot {
  std::optional<api::Rollout> rollout;
  std::vector<api::DeploymentView> deployments;
  std::string warning;  // the watch's last error while it reconnects
};

// Draws frames: in place on a terminal (cursor up over the last frame, each line cleared, each
// line cut to the terminal's width so that none wraps and the cursor-up count stays right),
// appended (when different from the last, never cut) otherwise.
class Screen {
 public:
  explicit Screen(const Io& io) : io_(io) {}
  void Draw(const std::vector<std::string>& lines) {
    if (!io_.tty) {
      if (lines == last_) return;
      io_.out((last_.empty() ? "" : "\n") + Join(lines));
      last_ = lines;
      return;
    }
    std::string frame;
    if (drawn_ > 0) frame += "\x1b[" + std::to_string(drawn_) + "A";
    const int columns = io_.columns ? io_.columns() : 0;
    for (const auto& l : lines) frame += "\x1b[2K" + CutToWidth(l, columns) + "\n";
    frame += "\x1b[J";  // what the last frame had below
    io_.out(frame);
    drawn_ = lines.size();
    last_ = lines;
  }

 private:
  const Io& io_;
  std::size_t drawn_ = 0;
  std::vector<std::string> last_;
};

}  // namespace

int Fail(const Io& io, const std::string& message) {
  io.err("error: " + message + "\n");
  return 1;
}

std::vector<api::DeploymentView> TargetDeployments(kube::KubeClient& client, const api::Rollout& r,
                                                   std::map<std::string, std::string>* unreadable) {
  std::vector<api::DeploymentView> out;
  const auto rt = kube::resources::Deployments();
  for (const auto& env : r.spec.environments) {
    // In another cluster: the CLI talks to the hub only (the rollout's status has the counters).
    if (!env.cluster.empty()) continue;
    const std::string ns = api::EnvironmentNamespace(r, env);
    for (const auto& t : env.targets) {
      auto obj = client.Get(rt, ns, t.deployment);
      if (!obj.ok()) {
        if (unreadable != nullptr && obj.status().code() != StatusCode::kNotFound) {
          (*unreadable)[ns + "/" + t.deployment] = obj.status().ToString();
        }
        continue;
      }
      auto d = api::DecodeDeployment(*obj);
      if (d.ok()) {
        out.push_back(std::move(*d));
      } else if (unreadable != nullptr) {
        (*unreadable)[ns + "/" + t.deployment] = d.status().ToString();
      }
    }
  }
  return out;
}

int List(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io) {
  auto list = kube::ListAll(client, kube::resources::ContainerRollouts(), ns, {});
  if (!list.ok()) return Fail(io, list.status().ToString());
  if (list->items.empty() &&
      (o.output == OutputFormat::kDefault || o.output == OutputFormat::kWide)) {
    io.err(ns.empty() ? "No resources found\n" : "No resources found in " + ns + " namespace.\n");
    return 0;
  }
  io.out(FormatList(list->items, o.output, ns.empty()));
  return 0;
}

int Get(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io) {
  auto obj = client.Get(kube::resources::ContainerRollouts(), ns, o.name);
  if (!obj.ok()) return Fail(io, obj.status().ToString());
  if (o.output != OutputFormat::kDefault && o.output != OutputFormat::kWide) {
    io.out(FormatObject(*obj, o.output));
    return 0;
  }
  auto r = api::DecodeRollout(*obj);
  if (!r.ok()) return Fail(io, ns + "/" + o.name + ": " + r.status().message());
  io.out(Join(RenderTree(*r, TargetDeployments(client, *r), TreeOpts(o, io))));
  return 0;
}

int History(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io) {
  auto obj = client.Get(kube::resources::ContainerRollouts(), ns, o.name);
  if (!obj.ok()) return Fail(io, obj.status().ToString());
  auto r = api::DecodeRollout(*obj);
  if (!r.ok()) return Fail(io, ns + "/" + o.name + ": " + r.status().message());
  if (o.output == OutputFormat::kJson || o.output == OutputFormat::kYaml) {
    io.out(FormatHistory(*r, o.output));
    return 0;
  }
  const api::WallTime now = io.now();
  io.out(HistoryTable(*r, now));
  // The Events the controller recorded about the rollout (core/v1, as its EventRecorder writes
  // them); they expire after an hour, the history above does not.
  kube::ListOptions lo;
  lo.field_selector = "involvedObject.kind=ContainerRollout,involvedObject.name=" + o.name;
  auto events = kube::ListAll(client, kube::ResourceType::Core("v1", "events"), ns, lo);
  if (!events.ok()) {
    io.err("note: the Events of " + ns + "/" + o.name +
           " cannot be listed: " + events.status().ToString() + "\n");
    return 0;
  }
  io.out("\n" + EventsTable(events->items, r->uid, now));
  return 0;
}

int Diff(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io) {
  auto obj = client.Get(kube::resources::ContainerRollouts(), ns, o.name);
  if (!obj.ok()) return Fail(io, obj.status().ToString());
  auto r = api::DecodeRollout(*obj);
  if (!r.ok()) return Fail(io, ns + "/" + o.name + ": " + r.status().message());
  std::map<std::string, std::string> unreadable;
  const auto rows = DiffImages(*r, TargetDeployments(client, *r, &unreadable), unreadable);
  io.out(o.output == OutputFormat::kJson || o.output == OutputFormat::kYaml
             ? FormatDiff(rows, o.output)
             : DiffTable(rows));
  for (const auto& [key, why] : unreadable) {
    std::string note = "note: deployment ";
    note += key;
    note += " cannot be read: ";
    note += why;
    note += "\n";
    io.err(note);
  }
  return 0;
}

int Watch(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io,
          const CancelToken& cancel) {
  std::mutex mu;
  std::condition_variable cv;
  Snapshot latest;               // the last one published
  std::deque<Snapshot> pending;  // published, not drawn yet (piped: every one is drawn)
  bool done = false;
  int rc = 0;
  std::string error;  // printed after the last frame
  const auto reg = cancel.OnCancel([&mu, &cv] {
    const std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  });
  auto publish = [&](Snapshot s) {
    const std::lock_guard<std::mutex> lock(mu);
    latest = s;
    pending.push_back(std::move(s));
    cv.notify_all();
  };
  auto finish = [&](int code, const std::string& message) {  // the first call counts
    const std::lock_guard<std::mutex> lock(mu);
    if (done) return;
    done = true;
    rc = code;
    error = message;
    cv.notify_all();
  };
  const auto rt = kube::resources::ContainerRollouts();
  // True when the watch should end: --until-done and a terminal phase of this generation.
  auto show = [&](const kube::Json& obj) {
    auto r = api::DecodeRollout(obj);
    if (!r.ok()) {
      publish(Snapshot{std::nullopt, {}, "cannot decode the rollout: " + r.status().message()});
      return false;
    }
    const bool terminal =
        api::IsTerminal(r->status.phase) && r->status.observed_generation >= r->generation;
    const api::RolloutPhase phase = r->status.phase;
    auto deployments = TargetDeployments(client, *r);
    publish(Snapshot{std::move(*r), std::move(deployments), ""});
    if (o.until_done && terminal) {
      finish(phase == api::RolloutPhase::kSucceeded ? 0 : 1,
             phase == api::RolloutPhase::kSucceeded ? ""
                                                    : "the rollout ended " + api::PhaseName(phase));
      return true;
    }
    return false;
  };

  std::thread watcher([&] {
    std::string rv;
    bool first = true;
    int failures = 0;
    while (!cancel.cancelled()) {
      if (rv.empty()) {
        auto obj = client.Get(rt, ns, o.name);
        if (!obj.ok()) {
          if (cancel.cancelled()) break;
          if (first || obj.status().code() == StatusCode::kNotFound) {
            finish(1, obj.status().ToString());
            return;
          }
          Snapshot s;
          {
            const std::lock_guard<std::mutex> lock(mu);
            s = latest;
          }
          s.warning = "reading the rollout again: " + obj.status().ToString();
          publish(std::move(s));
          cancel.SleepFor(std::chrono::seconds(std::min(++failures, 5)));
          continue;
        }
        first = false;
        rv = kube::MetaString(*obj, "resourceVersion");
        if (show(*obj)) return;
      }
      kube::WatchOptions wo;
      wo.field_selector = "metadata.name=" + o.name;
      wo.resource_version = rv;
      bool stop = false;
      const Status st = client.Watch(
          rt, ns, wo,
          [&](kube::WatchEvent&& ev) {
            if (const std::string v = kube::MetaString(ev.object, "resourceVersion"); !v.empty()) {
              rv = v;
            }
            switch (ev.type) {
              case kube::WatchEvent::Type::kAdded:
              case kube::WatchEvent::Type::kModified:
                failures = 0;
                stop = show(ev.object);
                return !stop;
              case kube::WatchEvent::Type::kDeleted:
                finish(1, "the rollout " + ns + "/" + o.name + " was deleted");
                stop = true;
                return false;
              case kube::WatchEvent::Type::kBookmark:
                return true;
            }
            return true;
          },
          cancel);
      if (stop || cancel.cancelled()) break;
      if (st.code() == StatusCode::kGone) {
        rv.clear();  // re-read the rollout, then watch from there
      } else if (!st.ok()) {
        Snapshot s;
        {
          const std::lock_guard<std::mutex> lock(mu);
          s = latest;
        }
        s.warning = "watch: " + st.ToString() + " (reconnecting)";
        publish(std::move(s));
        cancel.SleepFor(std::chrono::seconds(std::min(++failures, 5)));
      }
    }
    finish(0, "");
  });

  Screen screen(io);
  std::unique_lock<std::mutex> lock(mu);
  while (true) {
    if (io.tty) {
      cv.wait_for(lock, std::chrono::seconds(1));
    } else {
      cv.wait(lock, [&] { return !pending.empty() || done || cancel.cancelled(); });
    }
    // A terminal shows the latest state (and its clocks) every second; a pipe gets every state.
    std::deque<Snapshot> draw;
    if (io.tty) {
      draw.push_back(latest);
    } else {
      draw.swap(pending);
    }
    pending.clear();
    for (const auto& s : draw) {
      if (!s.rollout) continue;
      auto lines = RenderTree(*s.rollout, s.deployments, TreeOpts(o, io));
      if (!s.warning.empty()) lines.push_back(s.warning);
      screen.Draw(lines);
    }
    if (done || cancel.cancelled()) break;
  }
  const int code = rc;
  const std::string message = error;
  lock.unlock();
  watcher.join();
  if (!message.empty()) {
    Fail(io, message);
    return code == 0 ? 1 : code;
  }
  return code;
}

Result<std::string> RequestAction(kube::KubeClient& client, const std::string& ns,
                                  const std::string& name, const std::string& verb,
                                  api::WallTime now) {
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const std::string value = api::FormatTime(now) + "/" + std::to_string(nanos % 1000000000);
  kube::Json patch = kube::Json::object();
  patch["metadata"]["annotations"]["rollgate.io/" + verb] = kube::Json::string(value);
  auto res = client.Patch(kube::resources::ContainerRollouts(), ns, name, kube::PatchType::kMerge,
                          patch.serialize(), {});
  if (!res.ok()) return res.status();
  return value;
}

int Annotate(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io) {
  auto value = RequestAction(client, ns, o.name, o.verb_word, io.now());
  if (!value.ok()) return Fail(io, value.status().ToString());
  io.out(o.verb_word + " requested for " + ns + "/" + o.name + " (rollgate.io/" + o.verb_word +
         "=" + *value + ")\n");
  return 0;
}

}  // namespace rollgate::cli

// The verbs that talk to the API server (list, get, get --watch, promote/abort/retry), written
// against KubeClient so that tests drive them with a fake. Output goes through Io; errors are
// printed "error: ..." (kubectl's prefix) and return 1; 0 is success.
// Thread-safety: one command at a time; Watch runs the watch on a thread of its own.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "controller/api/types.h"
#include "controller/cli/args.h"
#include "controller/common/cancel.h"
#include "controller/kube/kube_client.h"

namespace rollgate::cli {

struct Io {
  std::function<void(const std::string&)> out;  // stdout (flushed)
  std::function<void(const std::string&)> err;  // stderr
  bool tty = false;                             // stdout is a terminal: redraw in place
  bool color = false;
  // The terminal's width in columns, asked again for every frame of a watch on a terminal (so a
  // resize is honoured; its lines are cut to it); 0 or unset: unknown, nothing is cut.
  std::function<int()> columns;
  std::function<api::WallTime()> now;
};

// "error: <status>" on err, returns 1.
int Fail(const Io& io, const std::string& message);

// list, and get without a name. `ns` is "" for every namespace.
int List(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io);

// get NAME: the tree or the object in o.output.
int Get(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io);

// get NAME --watch: draws the tree, then again on every change of the rollout (a watch on it,
// re-established from the last resourceVersion when it ends, re-read after 410 Gone). On a
// terminal it redraws in place (and every second, for the clocks); piped, it appends each tree
// that differs from the one before. Ends on `cancel` (0), when the rollout is deleted (1), or with
// o.until_done when the rollout has reached a terminal phase for its current generation (0 for
// Succeeded, 1 otherwise).
int Watch(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io,
          const CancelToken& cancel);

// Sets annotation rollgate.io/<verb> (promote, abort or retry) of ns/name to a fresh value
// (the time, to the nanosecond): the controller acts once on each value. The value, or why the
// patch failed.
Result<std::string> RequestAction(kube::KubeClient& client, const std::string& ns,
                                  const std::string& name, const std::string& verb,
                                  api::WallTime now);

// promote | abort | retry NAME: a fresh value in the rollgate.io/<verb> annotation.
int Annotate(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io);

// history NAME: the revisions (status.history) as a table, then the rollout's Events; with
// o.output json or yaml, the revisions only. Events that cannot be listed (forbidden) leave a
// note on stderr; the exit code is still 0.
int History(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io);

// diff NAME: per environment, Deployment and container, the image the spec wants against the one
// its pod template runs (read now), as a table or a json/yaml list. 0 whatever differs; 1 when
// the rollout cannot be read. A Deployment that cannot be read (other than not found) is a note
// on stderr.
int Diff(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io);

// The Deployments the rollout's environments target in the cluster `client` reaches, as far as
// they can be read (a Deployment that cannot be read is left out; with `unreadable`, those that
// failed other than not found are named there, "ns/name" -> why). Environments in another
// cluster (environments[].cluster) are not read.
std::vector<api::DeploymentView> TargetDeployments(
    kube::KubeClient& client, const api::Rollout& r,
    std::map<std::string, std::string>* unreadable = nullptr);

}  // namespace rollgate::cli

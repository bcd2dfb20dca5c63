// What `rollgate history NAME` and `rollgate diff NAME` print, as pure functions of the decoded
// rollout, its Events and the Deployments as read (commands.cc reads them), so that they are
// tested with golden files:
//  - history: status.history as a table (REVISION PHASE STARTED DURATION IMAGES REASON, newest
//    last, the current revision marked), then the rollout's Events (LAST SEEN TYPE REASON
//    MESSAGE, oldest first); -o json|yaml: the records as a list. A status without a history
//    (written by a controller before it existed) shows its current revision alone.
//  - diff: per environment, target Deployment and container, the image the spec wants (pinned to
//    the recorded digest when the rollout pins: rollout::PinnedImages, the planner's own rule)
//    against the image the Deployment's pod template runs: = same, ~ differs, ? missing.
// Thread-safety: pure functions.
#pragma once

#include <cpprest/json.h>

#include <map>
#include <string>
#include <vector>

#include "controller/api/types.h"
#include "controller/cli/args.h"

namespace rollgate::cli {

// ---- history ----

// The revisions to show, oldest first: status.history, and the current revision (status.revision
// with spec.images and status.phase, times unknown) when the history has no record of it.
std::vector<api::RevisionRecord> HistoryOf(const api::Rollout& r);

// The table of HistoryOf(r); the current revision reads "N (current)". Running revisions count
// their duration up to `now`.
std::string HistoryTable(const api::Rollout& r, api::WallTime now);

// HistoryOf(r) as a JSON list of status.history's records, in `format` (json or yaml).
std::string FormatHistory(const api::Rollout& r, OutputFormat format);

// "Events:" and the table of the core/v1 Events about the rollout whose uid is `uid` (an Event
// that names another uid is about an earlier rollout of the same name and left out; one without
// a uid is kept), oldest first by lastTimestamp (else eventTime, firstTimestamp, creation);
// "Events:  <none>" when there are none.
std::string EventsTable(const std::vector<web::json::value>& events, const std::string& uid,
                        api::WallTime now);

// ---- diff ----

enum class ImageState { kSame, kDiffers, kMissing };

struct ImageDiff {
  std::string environment;
  std::string namespace_;
  std::string deployment;
  std::string container;
  std::string spec;     // the image the spec wants ("" when spec.images lacks the logical image)
  std::string running;  // the image the pod template runs ("" when missing)
  ImageState state = ImageState::kMissing;
  std::string missing;  // kMissing: "deployment", "container" or "unreadable"
};

// One row per environment, target and container, in spec order (containers by name).
// `deployments` are the targets as read now; `unreadable` names ("ns/name") those that could not
// be read (other than not found).
std::vector<ImageDiff> DiffImages(const api::Rollout& r,
                                  const std::vector<api::DeploymentView>& deployments,
                                  const std::map<std::string, std::string>& unreadable = {});

// The marker, ENVIRONMENT NAMESPACE DEPLOYMENT CONTAINER SPEC RUNNING.
std::string DiffTable(const std::vector<ImageDiff>& rows);

// The rows as a JSON list (environment, namespace, deployment, container, spec, running, state
// Same|Differs|Missing), in `format` (json or yaml).
std::string FormatDiff(const std::vector<ImageDiff>& rows, OutputFormat format);

}  // namespace rollgate::cli

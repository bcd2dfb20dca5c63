// The tree `rollgate get NAME` draws: the rollout (phase, revision, images with digests, what it
// waits for), each environment (phase, duration, reason and message) and under it each target
// Deployment (replicas updated/ready/available, the images it runs), worker validation, analysis
// samples, smoke checks and bake time. A pure function of the rollout, the Deployments observed,
// the time and whether to colour, so that it is tested with golden files.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "controller/api/types.h"

namespace rollgate::cli {

struct TreeOptions {
  api::WallTime now;
  bool color = false;  // ANSI colours (a terminal without NO_COLOR)
  // How the user runs the CLI, for the hints ("kubectl rollgate promote NAME").
  std::string program = "rollgate";
};

// The lines of the tree, without newlines.
std::vector<std::string> RenderTree(const api::Rollout& r,
                                    const std::vector<api::DeploymentView>& deployments,
                                    const TreeOptions& opts);

// What the rollout waits for, in words ("approval of environment prod: rollgate promote web"),
// or "" when it waits for nothing (finished, or not started).
std::string WaitingFor(const api::Rollout& r, const TreeOptions& opts);

// "45s", "3m05s", "2h03m", "3d04h"; negative durations count as 0.
std::string HumanDuration(std::chrono::seconds d);

// Whether colours are wanted: stdout is a terminal and NO_COLOR is unset or empty.
bool UseColor(bool stdout_is_tty, const char* no_color_env);

// The columns `line` takes on a terminal: ANSI escape sequences take none, every UTF-8 code point
// one (the tree's glyphs ├ └ ‖ ✔ are single-width).
int DisplayWidth(const std::string& line);

// `line` cut to `columns` display columns (as DisplayWidth counts them), so that a terminal does
// not wrap it: a longer line keeps its first columns - 1 columns and ends with "…", then
// "\x1b[0m" when a colour was on at the cut. A line that fits, or columns <= 0 (the width is
// unknown), is returned as it is. Escape sequences and code points are never split.
std::string CutToWidth(const std::string& line, int columns);

}  // namespace rollgate::cli

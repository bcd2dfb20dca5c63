// rollgate-validate: the worker startup validator that the controller injects as an init
// container into GPU workers (docs/design.md "Worker startup validation"). Runs the CUDA probe
// (controller/validator/probe.h) bounded by --timeout, prints one JSON verdict on stdout, writes
// the same verdict to the termination log, and exits with the failure class's code (0 passed, 2
// usage, 10 library, 11 init, 12 devices, 13 below minimum, 14 context/memory, 15 kernel, 16
// timeout). A hung driver call cannot be cancelled, so on a timeout the process reports and ends
// with _exit while the probe thread is still inside the driver. Thread-safety: main thread plus one
// probe thread; they share only the VerdictRecorder.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "controller/validator/bounded_run.h"
#include "controller/validator/options.h"
#include "controller/validator/probe.h"
#include "controller/validator/termination_log.h"
#include "controller/validator/verdict.h"
#include "controller/validator/verdict_recorder.h"

namespace {

using rollgate::validator::Verdict;
using Clock = std::chrono::steady_clock;

// Stamps the duration, then writes the verdict to the termination log first (stdout may be a
// pipe that nobody drains) and to stdout. A termination log that cannot be written is reported
// on stderr and does not change the verdict.
void Emit(Verdict verdict, const std::string& termination_log, Clock::time_point start) {
  verdict.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  std::string json = rollgate::validator::RenderVerdictJson(verdict);
  if (std::string error = rollgate::validator::WriteTerminationLog(termination_log, json);
      !error.empty()) {
    std::fprintf(stderr, "rollgate-validate: cannot write the termination log: %s\n",
                 error.c_str());
  }
  json += '\n';
  std::fwrite(json.data(), 1, json.size(), stdout);
  std::fflush(stdout);
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
  const Clock::time_point start = Clock::now();
  const std::string program = argc > 0 && argv[0] != nullptr ? argv[0] : "rollgate-validate";
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);

  rollgate::validator::ParsedArgs parsed = rollgate::validator::ParseArgs(args);
  if (!parsed.error.empty()) {
    std::fprintf(stderr, "rollgate-validate: %s\n\n%s", parsed.error.c_str(),
                 rollgate::validator::Usage(program).c_str());
    Verdict verdict = rollgate::validator::UsageVerdict(parsed.error);
    Emit(verdict, parsed.options.termination_log, start);
    return rollgate::validator::ExitCode(verdict.failure);
  }
  if (parsed.help) {
    std::fputs(rollgate::validator::Usage(program).c_str(), stdout);
    return 0;
  }

  const rollgate::validator::ValidateOptions options = parsed.options;
  // Shared with the probe thread, which may outlive main's interest in it after a timeout.
  auto recorder = std::make_shared<rollgate::validator::VerdictRecorder>();
  const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(options.timeout_seconds));
  rollgate::validator::BoundedRunResult result = rollgate::validator::RunBounded(
      [recorder, options] { rollgate::validator::RunProbe(options, *recorder); }, timeout);

  if (result == rollgate::validator::BoundedRunResult::kFinished) {
    Verdict verdict = recorder->Snapshot().verdict;
    Emit(verdict, options.termination_log, start);
    return rollgate::validator::ExitCode(verdict.failure);
  }
  rollgate::validator::VerdictRecorder::Progress progress = recorder->Snapshot();
  Verdict verdict = rollgate::validator::TimedOutVerdict(std::move(progress.verdict),
                                                         progress.running, options.timeout_seconds);
  Emit(verdict, options.termination_log, start);
  // The probe thread is stuck in the driver: end the process without unwinding or joining it.
  _exit(rollgate::validator::ExitCode(verdict.failure));
}

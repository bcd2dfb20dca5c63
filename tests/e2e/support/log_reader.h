// Reading what the e2e tests and their child processes write: whole files, lines, the tail of a
// log for failure messages, and the controller's log records. The controller writes one record a
// line, as text (`<time> level=info component=c msg="..." key=value`, the default) or as JSON
// (`{"ts":..,"level":..,"component":..,"msg":..,"key":"value"}`, --log-format=json); CountLog
// matches records by message and field in either format, skipping lines that are no record (the
// tests' own "=== ..." markers, anything else a process printed).
// Thread-safety: reentrant; files are read afresh on every call.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rollgate::e2e {

// The whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// Its lines, without the newlines.
std::vector<std::string> ReadLines(const std::string& path);

// Appends `line` and a newline (a marker in a child's log: "=== e2e: SIGKILL controller A").
void AppendLine(const std::string& path, const std::string& line);

// "--- <path> (last <n> lines)\n" and those lines, indented: for failure messages.
std::string Tail(const std::string& path, size_t n = 30);

// One log record of the controller.
struct LogRecord {
  std::string level;
  std::string component;
  std::string msg;
  std::map<std::string, std::string> fields;  // every other key
};

// The record on `line` (text or JSON), or nullopt when the line is not one.
std::optional<LogRecord> ParseLogLine(std::string_view line);

// How many records of the log at `path` have message `msg` and, when `field` is given as
// "key=value" ("deployment=ns/name"), that field with exactly that value.
int CountLog(const std::string& path, const std::string& msg, const std::string& field = {});

}  // namespace rollgate::e2e

#include "controller/common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "controller/common/json_escape.h"

namespace rollgate::log {
namespace {

// The process-wide log sink's state: the one deliberate global, set at start-up.
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_format{static_cast<int>(OutputFormat::kText)};
std::mutex g_write_mu;

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

void AppendValue(std::string& out, std::string_view v) {
  const bool quote = v.empty() || v.find_first_of(" \"=\t\n") != std::string_view::npos;
  if (!quote) {
    out += v;
    return;
  }
  out += '"';
  for (char ch : v) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  out += '"';
}

}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }
void SetFormat(OutputFormat format) { g_format.store(static_cast<int>(format)); }
bool Enabled(Level level) { return static_cast<int>(level) >= g_level.load(); }

std::string FormatRecord(OutputFormat format, Level level, std::string_view component,
                         std::string_view message, std::initializer_list<Field> fields) {
  if (format == OutputFormat::kText)
    return ::rollgate::log::Format(level, component, message, fields);
  std::string text = ::rollgate::log::Format(level, component, "", {});
  std::string out = "{\"ts\":";
  json::AppendQuoted(out, text.substr(0, text.find(' ')));
  out += ",\"level\":";
  json::AppendQuoted(out, LevelName(level));
  out += ",\"component\":";
  json::AppendQuoted(out, component);
  out += ",\"msg\":";
  json::AppendQuoted(out, message);
  for (const auto& [k, v] : fields) {
    out += ',';
    json::AppendQuoted(out, k);
    out += ':';
    json::AppendQuoted(out, v);
  }
  out += '}';
  return out;
}

std::string Format(Level level, std::string_view component, std::string_view message,
                   std::initializer_list<Field> fields) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[96];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string out = ts;
  out += " level=";
  out += LevelName(level);
  out += " component=";
  AppendValue(out, component);
  out += " msg=";
  AppendValue(out, message);
  for (const auto& [k, v] : fields) {
    out += ' ';
    out += k;
    out += '=';
    AppendValue(out, v);
  }
  return out;
}

void Write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  std::string line =
      FormatRecord(static_cast<OutputFormat>(g_format.load()), level, component, message, fields);
  line += '\n';
  std::lock_guard<std::mutex> lock(g_write_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace rollgate::log

// Structured, leveled logging to stderr: one line per record, `key=value` fields, values quoted
// when they contain spaces. Callers never pass tokens, keys or certificate data; the HTTP layers
// log neither headers nor bodies of requests.
// Thread-safety: every function may be called from any thread; lines never interleave.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace rollgate::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using Field = std::pair<std::string_view, std::string>;

enum class OutputFormat { kText, kJson };
// Text (`key=value`) or one JSON object per line. Set once at start-up (default text).
void SetFormat(OutputFormat format);

// Records below `level` are dropped. Set once at start-up (default Info).
void SetLevel(Level level);
bool Enabled(Level level);

void Write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields = {});

inline void Debug(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, c, m, f);
}
inline void Info(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, c, m, f);
}
inline void Warn(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kWarning, c, m, f);
}
inline void Error(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kError, c, m, f);
}

// Formats one record without writing it (used by Write and by tests).
std::string FormatRecord(OutputFormat format, Level level, std::string_view component,
                         std::string_view message, std::initializer_list<Field> fields);
std::string Format(Level level, std::string_view component, std::string_view message,
                   std::initializer_list<Field> fields);

}  // namespace rollgate::log

#include "tests/e2e/support/log_reader.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tests/e2e/support/json.h"

namespace rollgate::e2e {
namespace {

// The JSON format: every member a string.
std::optional<LogRecord> ParseJsonRecord(std::string_view line) {
  Json j;
  try {
    j = Json::parse(std::string(line));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!j.is_object() || !j.has_field("msg") || !j.has_field("level")) return std::nullopt;
  LogRecord r;
  for (const auto& [k, v] : j.as_object()) {
    const std::string s = v.is_string() ? v.as_string() : v.serialize();
    if (k == "level") {
      r.level = s;
    } else if (k == "component") {
      r.component = s;
    } else if (k == "msg") {
      r.msg = s;
    } else if (k != "ts") {
      r.fields[k] = s;
    }
  }
  return r;
}

// The text format: a timestamp, then key=value pairs; a value is bare (up to the next space) or
// quoted with \" \\ \n escapes.
std::optional<LogRecord> ParseTextRecord(std::string_view line) {
  const size_t first_space = line.find(' ');
  if (first_space == std::string_view::npos) return std::nullopt;
  std::map<std::string, std::string> kv;
  size_t i = first_space + 1;
  while (i < line.size()) {
    if (line[i] == ' ') {
      ++i;
      continue;
    }
    const size_t eq = line.find('=', i);
    if (eq == std::string_view::npos || eq == i) return std::nullopt;
    const std::string key(line.substr(i, eq - i));
    if (key.find(' ') != std::string::npos) return std::nullopt;
    i = eq + 1;
    std::string value;
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        const char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < line.size()) {
          const char e = line[i++];
          value += e == 'n' ? '\n' : e;
        } else {
          value += c;
        }
      }
      if (!closed) return std::nullopt;
    } else {
      const size_t end = std::min(line.find(' ', i), line.size());
      value = std::string(line.substr(i, end - i));
      i = end;
    }
    kv[key] = value;
  }
  if (kv.count("level") == 0 || kv.count("msg") == 0) return std::nullopt;
  LogRecord r;
  r.level = kv["level"];
  r.component = kv["component"];
  r.msg = kv["msg"];
  kv.erase("level");
  kv.erase("component");
  kv.erase("msg");
  r.fields = std::move(kv);
  return r;
}

}  // namespace

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void AppendLine(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << '\n';
}

std::string Tail(const std::string& path, size_t n) {
  const std::vector<std::string> lines = ReadLines(path);
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) {
    out += "  " + lines[i] + "\n";
  }
  return "--- " + path + " (last " + std::to_string(n) + " lines)\n" + out;
}

std::optional<LogRecord> ParseLogLine(std::string_view line) {
  if (!line.empty() && line.front() == '{') return ParseJsonRecord(line);
  return ParseTextRecord(line);
}

int CountLog(const std::string& path, const std::string& msg, const std::string& field) {
  std::string key;
  std::string value;
  if (!field.empty()) {
    const size_t eq = field.find('=');
    key = field.substr(0, eq);
    value = eq == std::string::npos ? std::string() : field.substr(eq + 1);
  }
  int n = 0;
  for (const auto& line : ReadLines(path)) {
    const std::optional<LogRecord> r = ParseLogLine(line);
    if (!r || r->msg != msg) continue;
    if (!key.empty()) {
      auto it = r->fields.find(key);
      if (it == r->fields.end() || it->second != value) continue;
    }
    ++n;
  }
  return n;
}

}  // namespace rollgate::e2e

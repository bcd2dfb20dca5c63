#include "controller/cli/output.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>

#include "controller/api/codec.h"

namespace rollgate::cli {
namespace {

// Numbers as kubectl prints them: the shortest text that reads back as the same double (0.05, not
// 0.050000000000000003); integers as integers.
std::string Number(const Json& v) {
  if (!v.is_double()) return v.serialize();
  const double d = v.as_double();
  if (!std::isfinite(d)) return v.serialize();
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), d);
  if (ec != std::errc()) return v.serialize();
  return {buf.data(), end};
}

std::string Scalar(const Json& v) { return v.is_number() ? Number(v) : v.serialize(); }

void AppendJson(const Json& v, int indent, std::string& out) {
  const std::string pad(static_cast<std::size_t>(indent + 4), ' ');
  const std::string close(static_cast<std::size_t>(indent), ' ');
  if (v.is_object()) {
    const auto& obj = v.as_object();
    if (obj.empty()) {
      out += "{}";
      return;
    }
    out += "{\n";
    bool first = true;
    for (const auto& kv : obj) {
      if (!first) out += ",\n";
      first = false;
      out += pad + Json::string(kv.first).serialize() + ": ";
      AppendJson(kv.second, indent + 4, out);
    }
    out += "\n" + close + "}";
  } else if (v.is_array()) {
    const auto& arr = v.as_array();
    if (arr.size() == 0) {
      out += "[]";
      return;
    }
    out += "[\n";
    bool first = true;
    for (const auto& item : arr) {
      if (!first) out += ",\n";
      first = false;
      out += pad;
      AppendJson(item, indent + 4, out);
    }
    out += "\n" + close + "]";
  } else {
    out += Scalar(v);
  }
}

// Whether a string can be written plain in YAML and read back as the same string.
bool PlainYaml(const std::string& s) {
  if (s.empty()) return false;
  static const char* const kReserved[] = {"true", "false", "yes", "no", "on", "off",  "null",
                                          "True", "False", "Yes", "No", "On", "Off",  "Null",
                                          "TRUE", "FALSE", "YES", "NO", "ON", "OFF",  "NULL",
                                          "~",    "y",     "n",   "Y",  "N",  ".inf", ".nan"};
  for (const char* r : kReserved) {
    if (s == r) return false;
  }
  // Anything that starts like a number (or a sign) is quoted: "1.10", "0x1f", "-1", "1e3".
  const char c0 = s[0];
  if ((c0 >= '0' && c0 <= '9') || c0 == '-' || c0 == '+' || c0 == '.') return false;
  if (s.back() == ' ' || s.front() == ' ') return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '/' || c == '@' || c == ' ' ||
                    c == '(' || c == ')' || c == ',' || c == '=' || c == '+';
    if (!ok) return false;
  }
  return true;
}

std::string YamlScalar(const Json& v) {
  if (v.is_string()) {
    const std::string& s = v.as_string();
    return PlainYaml(s) ? s : v.serialize();  // a JSON string is a YAML double-quoted scalar
  }
  return Scalar(v);  // numbers, booleans, null
}

bool IsEmptyCollection(const Json& v) {
  return (v.is_object() && v.as_object().empty()) || (v.is_array() && v.as_array().size() == 0);
}

std::string YamlKey(const std::string& k) { return PlainYaml(k) ? k : Json::string(k).serialize(); }

void AppendYaml(const Json& v, int indent, std::string& out);

// A value after "key:" or "- ": scalars and empty collections on the same line.
void AppendYamlValue(const Json& v, int indent, bool after_dash, std::string& out) {
  if (IsEmptyCollection(v)) {
    out += v.is_object() ? " {}\n" : " []\n";
  } else if (v.is_object() || v.is_array()) {
    if (after_dash && v.is_object()) {
      // "- key: value" with the other keys under the first.
      out += " ";
      std::string inner;
      AppendYaml(v, indent, inner);
      out += inner.substr(static_cast<std::size_t>(indent));
      return;
    }
    out += "\n";
    AppendYaml(v, indent, out);
  } else {
    out += " " + YamlScalar(v) + "\n";
  }
}

void AppendYaml(const Json& v, int indent, std::string& out) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  if (v.is_object()) {
    for (const auto& kv : v.as_object()) {
      out += pad + YamlKey(kv.first) + ":";
      // Lists under a key are not indented further (kubectl's style).
      AppendYamlValue(kv.second, kv.second.is_array() ? indent : indent + 2, false, out);
    }
  } else if (v.is_array()) {
    for (const auto& item : v.as_array()) {
      out += pad + "-";
      AppendYamlValue(item, indent + 2, true, out);
    }
  } else {
    out += pad + YamlScalar(v) + "\n";
  }
}

std::string ImagesSummary(const api::Rollout& r) {
  if (!r.status.resolved_summary.empty()) return r.status.resolved_summary;
  std::string out;
  for (const auto& [logical, ref] : r.spec.images) {
    if (!out.empty()) out += ",";
    out += logical;
    out += "=";
    out += ref;
  }
  return out;
}

Json ListOf(const std::vector<Json>& items) {
  Json list = Json::object(true);
  list["apiVersion"] = Json::string("v1");
  list["kind"] = Json::string("List");
  Json arr = Json::array(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) arr[i] = items[i];
  list["items"] = arr;
  list["metadata"] = Json::object(true);
  list["metadata"]["resourceVersion"] = Json::string("");
  return list;
}

}  // namespace

std::string PrettyJson(const Json& v) {
  std::string out;
  AppendJson(v, 0, out);
  return out + "\n";
}

std::string ToYaml(const Json& v) {
  std::string out;
  if (IsEmptyCollection(v) || !(v.is_object() || v.is_array())) {
    return (v.is_object() ? std::string("{}") : v.is_array() ? "[]" : YamlScalar(v)) + "\n";
  }
  AppendYaml(v, 0, out);
  return out;
}

std::string ResourceName(const std::string& name) { return "containerrollout.rollgate.io/" + name; }

std::string RolloutTable(const std::vector<api::Rollout>& rollouts, bool all_namespaces,
                         bool wide) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  if (all_namespaces) header.emplace_back("NAMESPACE");
  for (const char* h : {"NAME", "PHASE", "ENVIRONMENT", "REVISION"}) header.emplace_back(h);
  if (wide) {
    header.emplace_back("IMAGES");
    header.emplace_back("MESSAGE");
  }
  rows.push_back(header);
  for (const auto& r : rollouts) {
    std::vector<std::string> row;
    if (all_namespaces) row.push_back(r.namespace_);
    row.push_back(r.name);
    const std::string phase = api::PhaseName(r.status.phase);
    row.push_back(phase.empty() ? "<none>" : phase);
    row.push_back(r.status.current_environment.empty() ? "<none>" : r.status.current_environment);
    row.push_back(std::to_string(r.status.revision));
    if (wide) {
      row.push_back(ImagesSummary(r));
      row.push_back(r.status.message);
    }
    rows.push_back(std::move(row));
  }
  return FormatTable(rows);
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string FormatList(const std::vector<Json>& items, OutputFormat format, bool all_namespaces) {
  switch (format) {
    case OutputFormat::kJson:
      return PrettyJson(ListOf(items));
    case OutputFormat::kYaml:
      return ToYaml(ListOf(items));
    case OutputFormat::kName: {
      std::string out;
      for (const auto& item : items) {
        if (auto r = api::DecodeRollout(item); r.ok()) out += ResourceName(r->name) + "\n";
      }
      return out;
    }
    case OutputFormat::kDefault:
    case OutputFormat::kWide:
      break;
  }
  std::vector<api::Rollout> rollouts;
  for (const auto& item : items) {
    if (auto r = api::DecodeRollout(item); r.ok()) rollouts.push_back(std::move(*r));
  }
  return RolloutTable(rollouts, all_namespaces, format == OutputFormat::kWide);
}

std::string FormatObject(const Json& obj, OutputFormat format) {
  switch (format) {
    case OutputFormat::kJson:
      return PrettyJson(obj);
    case OutputFormat::kYaml:
      return ToYaml(obj);
    case OutputFormat::kName:
      if (obj.has_field("metadata") && obj.at("metadata").has_string_field("name")) {
        return ResourceName(obj.at("metadata").at("name").as_string()) + "\n";
      }
      return "";
    case OutputFormat::kDefault:
    case OutputFormat::kWide:
      return "";
  }
  return "";
}

}  // namespace rollgate::cli

#include "controller/common/flags.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace rollgate {
namespace {

Status Bad(const std::string& name, const std::string& value, const char* want) {
  return Status(StatusCode::kInvalidArgument,
                "invalid value \"" + value + "\" for flag --" + name + ": want " + want);
}

}  // namespace

void FlagSet::Add(const std::string& name, Flag f) { flags_[name] = std::move(f); }

void FlagSet::String(const std::string& name, std::string* target, const std::string& help) {
  Add(name, {help, *target, false, [target](const std::string& v) {
               *target = v;
               return Status::Ok();
             }});
}

void FlagSet::Int(const std::string& name, int* target, const std::string& help) {
  Add(name, {help, std::to_string(*target), false, [name, target](const std::string& v) {
               int out = 0;
               auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
               if (ec != std::errc() || p != v.data() + v.size()) return Bad(name, v, "an integer");
               *target = out;
               return Status::Ok();
             }});
}

void FlagSet::Double(const std::string& name, double* target, const std::string& help) {
  std::ostringstream def;
  def << *target;
  Add(name, {help, def.str(), false, [name, target](const std::string& v) {
               char* end = nullptr;
               const double out = std::strtod(v.c_str(), &end);
               if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(out)) {
                 return Bad(name, v, "a number");
               }
               *target = out;
               return Status::Ok();
             }});
}

void FlagSet::Bool(const std::string& name, bool* target, const std::string& help) {
  Add(name, {help, *target ? "true" : "false", true, [name, target](const std::string& v) {
               if (v == "true" || v == "1") {
                 *target = true;
               } else if (v == "false" || v == "0") {
                 *target = false;
               } else {
                 return Bad(name, v, "true or false");
               }
               return Status::Ok();
             }});
}

void FlagSet::List(const std::string& name, std::vector<std::string>* target,
                   const std::string& help) {
  Add(name, {help, "", false, [target](const std::string& v) {
               std::stringstream ss(v);
               std::string item;
               while (std::getline(ss, item, ',')) {
                 if (!item.empty()) target->push_back(item);
               }
               return Status::Ok();
             }});
}

void FlagSet::Short(char letter, const std::string& name) { short_[letter] = name; }

Status FlagSet::SetFlag(const std::string& shown, const Flag& f, bool has_value, std::string value,
                        int argc, const char* const* argv, int* i) {
  if (!has_value) {
    if (f.is_bool) {
      value = "true";
    } else if (*i + 1 < argc) {
      value = argv[++*i];
    } else {
      return Status(StatusCode::kInvalidArgument, "flag " + shown + " needs a value");
    }
  }
  return f.set(value);
}

Status FlagSet::Parse(int argc, const char* const* argv, bool* help_requested) {
  *help_requested = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help_requested = true;
      return Status::Ok();
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) positional_.emplace_back(argv[i]);
      break;
    }
    if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-') {
      // -x, -x value, -x=value, -xvalue
      auto it = short_.find(arg[1]);
      if (it == short_.end() || flags_.count(it->second) == 0) {
        return Status(StatusCode::kInvalidArgument,
                      std::string("unknown shorthand flag: '") + arg[1] + "' in " + arg);
      }
      const Flag& f = flags_.at(it->second);
      const std::string shown = std::string("-") + arg[1];
      std::string rest = arg.substr(2);
      const bool has_value = !rest.empty();
      if (has_value && rest[0] == '=') rest = rest.substr(1);
      if (Status st = SetFlag(shown, f, has_value, rest, argc, argv, &i); !st.ok()) return st;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = flags_.find(name);
    if (it == flags_.end()) {
      return Status(StatusCode::kInvalidArgument, "unknown flag --" + name);
    }
    if (Status st = SetFlag("--" + name, it->second, has_value, value, argc, argv, &i); !st.ok()) {
      return st;
    }
  }
  return Status::Ok();
}

std::string FlagSet::Usage() const { return "Usage: " + program_ + " [flags]\n\n" + FlagsHelp(); }

std::string FlagSet::FlagsHelp() const {
  std::map<std::string, char> letters;
  for (const auto& [letter, name] : short_) letters[name] = letter;
  std::string out = "Flags:\n";
  for (const auto& [name, f] : flags_) {
    auto l = letters.find(name);
    out += l == letters.end() ? "      --" + name : std::string("  -") + l->second + ", --" + name;
    if (!f.is_bool) out += " value";
    out += "\n        " + f.help;
    if (!f.default_value.empty()) out += " (default " + f.default_value + ")";
    out += "\n";
  }
  return out;
}

}  // namespace rollgate

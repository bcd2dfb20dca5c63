// A small command-line flag parser in the style users know from controller-runtime binaries:
// `--name=value`, `--name value`, `--bool-flag`, `--bool-flag=false`, `--help`. Unknown flags and
// malformed values are errors that name the flag. Positional arguments are collected, before,
// between and after flags; everything after `--` is positional. One-letter short forms (kubectl's
// `-n NS`, `-n=NS`, `-nNS`, `-A`) are aliases declared with Short().
// Thread-safety: a FlagSet is used by one thread during start-up.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "controller/common/status.h"

namespace rollgate {

class FlagSet {
 public:
  explicit FlagSet(std::string program) : program_(std::move(program)) {}

  void String(const std::string& name, std::string* target, const std::string& help);
  void Int(const std::string& name, int* target, const std::string& help);
  void Double(const std::string& name, double* target, const std::string& help);
  void Bool(const std::string& name, bool* target, const std::string& help);
  // Repeatable or comma-separated list.
  void List(const std::string& name, std::vector<std::string>* target, const std::string& help);
  // `-<letter>` for the flag `name` (declared before).
  void Short(char letter, const std::string& name);

  // Parses argv[1..]. `help_requested` is set for --help/-h (Parse then returns OK).
  Status Parse(int argc, const char* const* argv, bool* help_requested);
  const std::vector<std::string>& positional() const { return positional_; }
  // "Usage: PROGRAM [flags]" and the flags' help (FlagsHelp()).
  std::string Usage() const;
  // "Flags:" and one entry per flag (its short form, value, help and default), no usage line.
  std::string FlagsHelp() const;

 private:
  struct Flag {
    std::string help;
    std::string default_value;
    bool is_bool = false;
    std::function<Status(const std::string&)> set;
  };
  void Add(const std::string& name, Flag f);

  std::string program_;
  Status SetFlag(const std::string& shown, const Flag& f, bool has_value, std::string value,
                 int argc, const char* const* argv, int* i);

  std::map<std::string, Flag> flags_;
  std::map<char, std::string> short_;  // letter -> long name
  std::vector<std::string> positional_;
};

}  // namespace rollgate

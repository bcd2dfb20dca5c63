// A small command-line flag parser in the style users know from controller-runtime binaries:
// `--name=value`, `--name value`, `--bool-flag`, `--bool-flag=false`, `--help`. Unknown flags and
// malformed values are errors that name the flag. Positional arguments are collected.
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

  // Parses argv[1..]. `help_requested` is set for --help/-h (Parse then returns OK).
  Status Parse(int argc, const char* const* argv, bool* help_requested);
  const std::vector<std::string>& positional() const { return positional_; }
  std::string Usage() const;

 private:
  struct Flag {
    std::string help;
    std::string default_value;
    bool is_bool = false;
    std::function<Status(const std::string&)> set;
  };
  void Add(const std::string& name, Flag f);

  std::string program_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> positional_;
};

}  // namespace rollgate

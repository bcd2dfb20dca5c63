// ReverseIndex: entry -> the keys that name it (a Deployment -> the rollouts targeting it), kept
// by moving one key at a time from the entries it named before to those it names now.
// Thread-safety: none; the owner locks.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace rollgate {

using ReverseIndex = std::map<std::string, std::set<std::string>>;

// Moves `key` in `index` from the entries of `before` to those of `now`. An entry no key names
// any more is erased and returned (its objects may leave a cache).
inline std::vector<std::string> Reindex(ReverseIndex& index, const std::string& key,
                                        const std::set<std::string>& before,
                                        const std::set<std::string>& now) {
  std::vector<std::string> emptied;
  for (const auto& e : before) {
    if (now.contains(e)) continue;
    auto it = index.find(e);
    if (it == index.end()) continue;
    it->second.erase(key);
    if (it->second.empty()) {
      index.erase(it);
      emptied.push_back(e);
    }
  }
  for (const auto& e : now) index[e].insert(key);
  return emptied;
}

}  // namespace rollgate

// The corpus regression runner: links with one fuzz target (instead of libFuzzer) and runs it over
// every file of the directories (or files) given on the command line, in name order, so that
// ctest replays each checked-in corpus in the normal g++ build (and under ASan in build-san).
// A failed invariant aborts (the file being run is printed first); exit 1 when no input is found.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const auto& entry : fs::recursive_directory_iterator(arg, ec)) {
        if (entry.is_regular_file()) inputs.push_back(entry.path());
      }
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "%s: no such file or directory\n", argv[i]);
      return 1;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...: no inputs found\n", argv[0]);
    return 1;
  }
  for (const fs::path& p : inputs) {
    // stdio rather than istreambuf_iterator, which trips g++ 12's -Wnull-dereference.
    std::string data;
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (f == nullptr) {
      std::fprintf(stderr, "%s: cannot open\n", p.c_str());
      return 1;
    }
    char buf[8192];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) {
      std::fprintf(stderr, "%s: cannot read\n", p.c_str());
      return 1;
    }
    std::printf("running %s (%zu bytes)\n", p.c_str(), data.size());
    std::fflush(stdout);
    // An empty vector's data() may be null; libFuzzer passes a valid pointer, so do the same.
    static const std::uint8_t kEmpty = 0;
    (void)LLVMFuzzerTestOneInput(
        data.empty() ? &kEmpty : reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  }
  std::printf("%zu inputs passed\n", inputs.size());
  return 0;
}

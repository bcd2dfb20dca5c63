// A fake CUDA driver library for the tests of rollgate-validate on machines without a GPU. Built
// as a shared library named libcuda.so.1, it exports the driver API entry points the probe
// resolves, declared by the validator's own controller/validator/driver_api.h (each export is
// checked at compile time against DriverApi's function type, so the two cannot drift; what the
// fake cannot catch, a mismatch with NVIDIA's cuda.h, is the GPU check's job: tests/gpu), and
// behaves like a driver with working devices: contexts are per thread, memory is host memory handed
// out as device pointers and bounds-checked, and cuModuleLoadData really parses the PTX (the subset
// that vecadd uses), which cuLaunchKernel then interprets thread by thread over the grid, reading
// the kernel parameters as the entry's signature declares them. Errors of the kernel (a bad
// address) surface at cuCtxSynchronize, as a real launch's do.
//
// Behaviour per test, read from the environment at every cuInit:
//   FAKE_CUDA_MODE         ok (default) | init_fail | init_no_device | hang_init | version_fail |
//                          no_devices | old_driver | low_cc | name_fail | ctx_fail | alloc_fail |
//                          module_fail | launch_fail | sync_fail | wrong_result | noop_kernel |
//                          hang | hang_destroy
//                          (hang: cuCtxSynchronize never returns; hang_destroy: cuCtxDestroy)
//   FAKE_CUDA_DEVICES      device count (default 1)
//   FAKE_CUDA_FAIL_DEVICE  the device that the device faults (low_cc, name_fail, ctx_fail,
//                          alloc_fail, module_fail, launch_fail, sync_fail, wrong_result,
//                          noop_kernel) apply to; default every device
//   FAKE_CUDA_DEVICE_NAME  (default "Fake CUDA Device"); FAKE_CUDA_DRIVER_VERSION (default 12040);
//   FAKE_CUDA_COMPUTE_CAPABILITY (default "9.0")
// Besides the driver API it exports fake_cuda_live_objects(): contexts, allocations and modules
// not yet released, for the tests' leak checks.
// Thread-safety: one mutex guards all state (the hangs wait without holding it); the current
// context is per thread, as in the real driver.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "controller/validator/driver_api.h"

#define FAKE_API extern "C" __attribute__((visibility("default")))

// cuda.h's types, as the validator declares them.
using rollgate::validator::CUcontext;
using rollgate::validator::CUdevice;
using rollgate::validator::CUdevice_attribute;
using rollgate::validator::CUdeviceptr;
using rollgate::validator::CUfunction;
using rollgate::validator::CUmodule;
using rollgate::validator::CUresult;
using rollgate::validator::CUstream;

namespace {

// cudaError_enum values and their cuGetErrorName / cuGetErrorString texts (the validator names
// only the two it acts on).
enum : CUresult {
  CUDA_SUCCESS = rollgate::validator::kCudaSuccess,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_DEVICES_UNAVAILABLE = 46,
  CUDA_ERROR_NO_DEVICE = rollgate::validator::kCudaErrorNoDevice,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
  CUDA_ERROR_INVALID_PTX = 218,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_ILLEGAL_ADDRESS = 700,
  CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
  CUDA_ERROR_LAUNCH_TIMEOUT = 702,
  CUDA_ERROR_LAUNCH_FAILED = 719,
  CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
  CUDA_ERROR_UNKNOWN = 999,
};

struct ErrorText {
  CUresult code;
  const char* name;
  const char* message;
};
constexpr ErrorText kErrors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_DEVICES_UNAVAILABLE, "CUDA_ERROR_DEVICES_UNAVAILABLE",
     "CUDA-capable device(s) is/are busy or unavailable"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_NO_BINARY_FOR_GPU, "CUDA_ERROR_NO_BINARY_FOR_GPU",
     "no kernel image is available for execution on the device"},
    {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS",
     "an illegal memory access was encountered"},
    {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
     "too many resources requested for launch"},
    {CUDA_ERROR_LAUNCH_TIMEOUT, "CUDA_ERROR_LAUNCH_TIMEOUT",
     "the launch timed out and was terminated"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
     "system has unsupported display driver / cuda driver combination"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

// ---- configuration ------------------------------------------------------------------------

// Defaults for the tests' environment variables are applied by ReadConfig (at every cuInit);
// before the first cuInit the empty mode behaves as "ok".
struct Config {
  std::string mode;
  int devices = 1;
  int fail_device = -1;  // -1: every device
  std::string device_name;
  int driver_version = 12040;
  int cc_major = 9;
  int cc_minor = 0;
  std::size_t total_memory = std::size_t{80} << 30;
};

std::string Env(const char* name, const char* fallback) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read under g_mu; the tests never setenv meanwhile
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

Config ReadConfig() {
  Config c;
  c.mode = Env("FAKE_CUDA_MODE", "ok");
  c.devices = std::atoi(Env("FAKE_CUDA_DEVICES", "1").c_str());
  c.fail_device = std::atoi(Env("FAKE_CUDA_FAIL_DEVICE", "-1").c_str());
  c.device_name = Env("FAKE_CUDA_DEVICE_NAME", "Fake CUDA Device");
  c.driver_version = std::atoi(Env("FAKE_CUDA_DRIVER_VERSION", "12040").c_str());
  std::string cc = Env("FAKE_CUDA_COMPUTE_CAPABILITY", "9.0");
  std::sscanf(cc.c_str(), "%d.%d", &c.cc_major, &c.cc_minor);
  if (c.mode == "old_driver") c.driver_version = 11040;
  return c;
}

// ---- PTX: the subset the probe's kernel uses ----------------------------------------------

struct Instruction {
  std::string predicate;  // "%p1", "!%p1" or ""
  std::string opcode;     // "ld.param.u32"
  std::vector<std::string> operands;
};

struct Param {
  std::string name;
  std::size_t size;
};

struct Entry {
  std::string name;
  std::vector<Param> params;
  std::vector<Instruction> body;
  std::map<std::string, std::size_t> labels;  // label -> index of the next instruction
};

struct Program {
  int target_major = 0;
  int target_minor = 0;
  std::vector<Entry> entries;
};

constexpr std::string_view kOpcodes[] = {
    "ld.param.u32",  "ld.param.s32",
    "ld.param.b32",  "ld.param.u64",
    "ld.param.s64",  "ld.param.b64",
    "mov.u32",       "mov.b32",
    "mov.s32",       "mov.u64",
    "mov.b64",       "mad.lo.s32",
    "mad.lo.u32",    "mul.lo.s32",
    "mul.lo.u32",    "add.s32",
    "add.u32",       "add.s64",
    "add.u64",       "mul.wide.s32",
    "mul.wide.u32",  "cvta.to.global.u64",
    "ld.global.f32", "st.global.f32",
    "add.f32",       "setp.lt.s32",
    "setp.le.s32",   "setp.gt.s32",
    "setp.ge.s32",   "setp.eq.s32",
    "setp.ne.s32",   "bra",
    "bra.uni",       "ret",
    "exit",
};

std::string Trim(std::string_view s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  std::size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool IsIdent(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$' || c == '.' ||
          c == '%')) {
      return false;
    }
  }
  return true;
}

std::string StripComments(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text.substr(i, 2) == "//") {
      i = text.find('\n', i);
      if (i == std::string_view::npos) break;
    } else if (text.substr(i, 2) == "/*") {
      i = text.find("*/", i);
      if (i == std::string_view::npos) break;
      i += 2;
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::optional<std::size_t> ParamSize(std::string_view type) {
  if (type == ".u64" || type == ".s64" || type == ".b64") return 8;
  if (type == ".u32" || type == ".s32" || type == ".b32" || type == ".f32") return 4;
  return std::nullopt;
}

// Parses the module; on a syntax error or an instruction outside the subset, says why.
std::optional<Program> ParsePtx(std::string_view image, std::string* why) {
  std::string text = StripComments(image);
  Program program;
  if (text.find(".version") == std::string::npos) {
    *why = "no .version";
    return std::nullopt;
  }
  std::size_t target = text.find(".target");
  if (target == std::string::npos ||
      std::sscanf(text.c_str() + target, ".target sm_%d", &program.target_major) != 1) {
    *why = "no .target sm_XX";
    return std::nullopt;
  }
  program.target_minor = program.target_major % 10;
  program.target_major /= 10;

  for (std::size_t pos = text.find(".entry"); pos != std::string::npos;
       pos = text.find(".entry", pos + 1)) {
    Entry entry;
    std::size_t open = text.find('(', pos);
    std::size_t close = text.find(')', pos);
    std::size_t brace = text.find('{', pos);
    std::size_t end = text.find('}', pos);
    if (open == std::string::npos || close == std::string::npos || brace == std::string::npos ||
        end == std::string::npos || !(open < close && close < brace && brace < end)) {
      *why = "malformed .entry";
      return std::nullopt;
    }
    entry.name = Trim(std::string_view(text).substr(pos + 6, open - pos - 6));
    std::string params = text.substr(open + 1, close - open - 1);
    for (std::size_t p = 0; p <= params.size();) {
      std::size_t comma = params.find(',', p);
      if (comma == std::string::npos) comma = params.size();
      std::string decl = Trim(std::string_view(params).substr(p, comma - p));
      p = comma + 1;
      if (decl.empty()) continue;
      char space[16] = {}, type[16] = {}, name[128] = {};
      if (std::sscanf(decl.c_str(), "%15s %15s %127s", space, type, name) != 3 ||
          std::string_view(space) != ".param" || !ParamSize(type)) {
        *why = "bad parameter \"" + decl + "\"";
        return std::nullopt;
      }
      entry.params.push_back({name, *ParamSize(type)});
    }
    std::string body = text.substr(brace + 1, end - brace - 1);
    for (std::size_t s = 0; s < body.size();) {
      std::size_t semi = body.find(';', s);
      if (semi == std::string::npos) {
        if (!Trim(std::string_view(body).substr(s)).empty()) {
          *why = "statement without ';'";
          return std::nullopt;
        }
        break;
      }
      std::string stmt = Trim(std::string_view(body).substr(s, semi - s));
      s = semi + 1;
      // Leading labels: "LBB0_2:".
      for (std::size_t colon = stmt.find(':'); colon != std::string::npos; colon = stmt.find(':')) {
        std::string label = Trim(std::string_view(stmt).substr(0, colon));
        if (!IsIdent(label) || label.find(' ') != std::string::npos) break;
        entry.labels[label] = entry.body.size();
        stmt = Trim(std::string_view(stmt).substr(colon + 1));
      }
      if (stmt.empty() || stmt[0] == '.') continue;  // .reg and other declarations
      Instruction ins;
      if (stmt[0] == '@') {
        std::size_t sp = stmt.find_first_of(" \t");
        ins.predicate = stmt.substr(1, sp - 1);
        stmt = Trim(std::string_view(stmt).substr(sp));
      }
      std::size_t sp = stmt.find_first_of(" \t");
      ins.opcode = stmt.substr(0, sp);
      if (std::find(std::begin(kOpcodes), std::end(kOpcodes), ins.opcode) == std::end(kOpcodes)) {
        *why = "unsupported instruction \"" + ins.opcode + "\"";
        return std::nullopt;
      }
      if (sp != std::string::npos) {
        std::string ops = stmt.substr(sp);
        for (std::size_t o = 0; o <= ops.size();) {
          std::size_t comma = ops.find(',', o);
          if (comma == std::string::npos) comma = ops.size();
          std::string operand = Trim(std::string_view(ops).substr(o, comma - o));
          std::erase_if(operand, [](char c) { return c == ' ' || c == '\t'; });
          if (operand.empty()) {
            *why = "empty operand in \"" + stmt + "\"";
            return std::nullopt;
          }
          ins.operands.push_back(operand);
          o = comma + 1;
        }
      }
      entry.body.push_back(std::move(ins));
    }
    for (const Instruction& ins : entry.body) {
      if ((ins.opcode == "bra" || ins.opcode == "bra.uni") &&
          (ins.operands.size() != 1 || entry.labels.count(ins.operands[0]) == 0)) {
        *why = "branch to an unknown label";
        return std::nullopt;
      }
    }
    program.entries.push_back(std::move(entry));
  }
  if (program.entries.empty()) {
    *why = "no .entry";
    return std::nullopt;
  }
  return program;
}

// ---- driver state -------------------------------------------------------------------------

struct FakeContext {
  int device = 0;
  CUresult sticky_error = CUDA_SUCCESS;  // the launch error that cuCtxSynchronize reports
};

struct FakeModule {
  FakeContext* context = nullptr;
  Program program;
};

struct FakeFunction {
  FakeModule* module = nullptr;
  const Entry* entry = nullptr;
};

struct Allocation {
  std::unique_ptr<unsigned char[]> bytes;
  std::size_t size = 0;
  FakeContext* context = nullptr;
};

std::mutex g_mu;
bool g_initialized = false;
Config g_config;
std::set<FakeContext*> g_contexts;
std::set<FakeModule*> g_modules;
std::map<FakeFunction*, std::unique_ptr<FakeFunction>> g_functions;
std::map<std::uintptr_t, Allocation> g_allocations;  // by address
thread_local FakeContext* t_current = nullptr;

bool FaultOn(int device) { return g_config.fail_device < 0 || g_config.fail_device == device; }
bool Mode(std::string_view m) { return g_config.mode == m; }

[[noreturn]] void HangForever() {
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

// The current context, or the error a driver call made without one returns.
CUresult Current(FakeContext** out) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (t_current == nullptr || g_contexts.count(t_current) == 0) return CUDA_ERROR_INVALID_CONTEXT;
  *out = t_current;
  return CUDA_SUCCESS;
}

// The allocation holding [address, address + size), or nullptr.
Allocation* Find(std::uintptr_t address, std::size_t size) {
  auto it = g_allocations.upper_bound(address);
  if (it == g_allocations.begin()) return nullptr;
  --it;
  if (address + size > it->first + it->second.size) return nullptr;
  return &it->second;
}

// The host bytes behind device addresses [address, address + size), or nullptr when no allocation
// holds them all.
unsigned char* HostBytes(std::uintptr_t address, std::size_t size) {
  Allocation* a = Find(address, size);
  if (a == nullptr) return nullptr;
  return a->bytes.get() + (address - reinterpret_cast<std::uintptr_t>(a->bytes.get()));
}

CUresult DeviceOk(CUdevice dev) {
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (dev < 0 || dev >= g_config.devices) return CUDA_ERROR_INVALID_DEVICE;
  return CUDA_SUCCESS;
}

// ---- the interpreter ----------------------------------------------------------------------

struct ThreadIndex {
  unsigned ctaid, ntid, tid, nctaid;
};

class Interpreter {
 public:
  Interpreter(const Entry& entry, void** params) : entry_(entry), params_(params) {}

  CUresult RunThread(const ThreadIndex& index) {
    regs_.clear();
    index_ = index;
    for (std::size_t pc = 0, steps = 0; pc < entry_.body.size(); ++steps) {
      if (steps > 100000) return CUDA_ERROR_LAUNCH_TIMEOUT;
      const Instruction& ins = entry_.body[pc];
      ++pc;
      if (!ins.predicate.empty()) {
        bool negate = ins.predicate[0] == '!';
        std::optional<std::uint64_t> p = Read(negate ? ins.predicate.substr(1) : ins.predicate);
        if (!p) return CUDA_ERROR_LAUNCH_FAILED;
        if ((*p != 0) == negate) continue;
      }
      std::optional<std::size_t> jump;
      CUresult r = Execute(ins, &jump);
      if (r != CUDA_SUCCESS) return r;
      if (ins.opcode == "ret" || ins.opcode == "exit") return CUDA_SUCCESS;
      if (jump) pc = *jump;
    }
    return CUDA_SUCCESS;
  }

 private:
  static std::uint32_t Lo(std::uint64_t v) { return static_cast<std::uint32_t>(v); }
  static std::int32_t S32(std::uint64_t v) { return static_cast<std::int32_t>(Lo(v)); }
  static float F32(std::uint64_t v) {
    float f;
    std::uint32_t bits = Lo(v);
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static std::uint64_t Bits(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return bits;
  }

  std::optional<std::uint64_t> Read(const std::string& operand) {
    if (operand == "%ctaid.x") return index_.ctaid;
    if (operand == "%ntid.x") return index_.ntid;
    if (operand == "%tid.x") return index_.tid;
    if (operand == "%nctaid.x") return index_.nctaid;
    if (operand[0] == '%') {
      auto it = regs_.find(operand);
      if (it == regs_.end()) return std::nullopt;  // read before written: a kernel bug
      return it->second;
    }
    char* end = nullptr;
    long long v = std::strtoll(operand.c_str(), &end, 0);  // NOLINT(google-runtime-int)
    if (end == operand.c_str() || *end != '\0') return std::nullopt;
    return static_cast<std::uint64_t>(v);
  }

  // "[name]" or "[name+8]" -> (name, offset)
  static std::optional<std::pair<std::string, std::int64_t>> Address(const std::string& operand) {
    if (operand.size() < 3 || operand.front() != '[' || operand.back() != ']') return std::nullopt;
    std::string inner = operand.substr(1, operand.size() - 2);
    std::int64_t offset = 0;
    if (std::size_t plus = inner.find('+'); plus != std::string::npos) {
      offset = std::strtoll(inner.c_str() + plus + 1, nullptr, 0);
      inner.resize(plus);
    }
    return std::pair{inner, offset};
  }

  CUresult Execute(const Instruction& ins, std::optional<std::size_t>* jump) {
    const std::string& op = ins.opcode;
    const std::vector<std::string>& a = ins.operands;
    auto need = [&](std::size_t n) { return a.size() == n; };
    auto write = [&](std::uint64_t v) { regs_[a[0]] = v; };

    if (op == "ret" || op == "exit") return CUDA_SUCCESS;
    if (op == "bra" || op == "bra.uni") {
      *jump = entry_.labels.at(a[0]);
      return CUDA_SUCCESS;
    }
    if (op.rfind("ld.param.", 0) == 0) {
      auto addr = need(2) ? Address(a[1]) : std::nullopt;
      if (!addr) return CUDA_ERROR_LAUNCH_FAILED;
      for (std::size_t i = 0; i < entry_.params.size(); ++i) {
        if (entry_.params[i].name != addr->first) continue;
        std::size_t size = op.back() == '4' ? 8 : 4;
        if (addr->second < 0 ||
            static_cast<std::size_t>(addr->second) + size > entry_.params[i].size) {
          return CUDA_ERROR_LAUNCH_FAILED;
        }
        std::uint64_t v = 0;
        std::memcpy(&v, static_cast<const unsigned char*>(params_[i]) + addr->second, size);
        write(v);
        return CUDA_SUCCESS;
      }
      return CUDA_ERROR_LAUNCH_FAILED;
    }
    if (op == "ld.global.f32" || op == "st.global.f32") {
      bool load = op[0] == 'l';
      auto addr = need(2) ? Address(a[load ? 1 : 0]) : std::nullopt;
      if (!addr) return CUDA_ERROR_LAUNCH_FAILED;
      std::optional<std::uint64_t> base = Read(addr->first);
      if (!base) return CUDA_ERROR_LAUNCH_FAILED;
      const auto address = static_cast<std::uintptr_t>(*base + addr->second);
      unsigned char* p = HostBytes(address, 4);
      if (p == nullptr) return CUDA_ERROR_ILLEGAL_ADDRESS;
      if (load) {
        std::uint32_t bits;
        std::memcpy(&bits, p, 4);
        write(bits);
      } else {
        std::optional<std::uint64_t> v = Read(a[1]);
        if (!v) return CUDA_ERROR_LAUNCH_FAILED;
        std::uint32_t bits = Lo(*v);
        std::memcpy(p, &bits, 4);
      }
      return CUDA_SUCCESS;
    }
    // Register-to-register instructions: read every source operand.
    std::vector<std::uint64_t> src;
    for (std::size_t i = 1; i < a.size(); ++i) {
      std::optional<std::uint64_t> v = Read(a[i]);
      if (!v) return CUDA_ERROR_LAUNCH_FAILED;
      src.push_back(*v);
    }
    if (a.empty()) return CUDA_ERROR_LAUNCH_FAILED;
    if (op.rfind("mov.", 0) == 0 && src.size() == 1) {
      write(op.find("64") != std::string::npos ? src[0] : Lo(src[0]));
    } else if ((op == "mad.lo.s32" || op == "mad.lo.u32") && src.size() == 3) {
      write(Lo(Lo(src[0]) * Lo(src[1]) + Lo(src[2])));
    } else if ((op == "mul.lo.s32" || op == "mul.lo.u32") && src.size() == 2) {
      write(Lo(std::uint64_t{Lo(src[0])} * Lo(src[1])));
    } else if ((op == "add.s32" || op == "add.u32") && src.size() == 2) {
      write(Lo(Lo(src[0]) + Lo(src[1])));
    } else if ((op == "add.s64" || op == "add.u64") && src.size() == 2) {
      write(src[0] + src[1]);
    } else if (op == "mul.wide.s32" && src.size() == 2) {
      write(static_cast<std::uint64_t>(static_cast<std::int64_t>(S32(src[0])) * S32(src[1])));
    } else if (op == "mul.wide.u32" && src.size() == 2) {
      write(static_cast<std::uint64_t>(Lo(src[0])) * Lo(src[1]));
    } else if (op == "cvta.to.global.u64" && src.size() == 1) {
      write(src[0]);
    } else if (op == "add.f32" && src.size() == 2) {
      write(Bits(F32(src[0]) + F32(src[1])));
    } else if (op.rfind("setp.", 0) == 0 && src.size() == 2) {
      std::int32_t x = S32(src[0]), y = S32(src[1]);
      std::string_view cmp = std::string_view(op).substr(5, 2);
      bool r = cmp == "lt"   ? x < y
               : cmp == "le" ? x <= y
               : cmp == "gt" ? x > y
               : cmp == "ge" ? x >= y
               : cmp == "eq" ? x == y
                             : x != y;
      write(r ? 1 : 0);
    } else {
      return CUDA_ERROR_LAUNCH_FAILED;
    }
    return CUDA_SUCCESS;
  }

  const Entry& entry_;
  void** params_;
  ThreadIndex index_{};
  std::unordered_map<std::string, std::uint64_t> regs_;
};

}  // namespace

// ---- the driver API -----------------------------------------------------------------------

FAKE_API CUresult cuInit(unsigned int flags) {
  std::unique_lock lock(g_mu);
  g_config = ReadConfig();
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  static constexpr std::string_view kModes[] = {
      "ok",          "init_fail", "init_no_device", "hang_init",   "version_fail", "no_devices",
      "old_driver",  "low_cc",    "name_fail",      "ctx_fail",    "alloc_fail",   "module_fail",
      "launch_fail", "sync_fail", "wrong_result",   "noop_kernel", "hang",         "hang_destroy"};
  if (std::find(std::begin(kModes), std::end(kModes), g_config.mode) == std::end(kModes)) {
    std::fprintf(stderr, "fake libcuda: unknown FAKE_CUDA_MODE \"%s\"\n", g_config.mode.c_str());
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (Mode("hang_init")) {
    lock.unlock();
    HangForever();
  }
  if (Mode("init_fail")) return CUDA_ERROR_SYSTEM_DRIVER_MISMATCH;
  if (Mode("init_no_device")) return CUDA_ERROR_NO_DEVICE;
  g_initialized = true;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDriverGetVersion(int* version) {
  std::lock_guard lock(g_mu);
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (Mode("version_fail")) return CUDA_ERROR_UNKNOWN;
  *version = g_config.driver_version;  // works before cuInit, as the real one does
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetCount(int* count) {
  std::lock_guard lock(g_mu);
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  *count = Mode("no_devices") ? 0 : g_config.devices;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  std::lock_guard lock(g_mu);
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = DeviceOk(ordinal); r != CUDA_SUCCESS) return r;
  *device = ordinal;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  std::lock_guard lock(g_mu);
  if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = DeviceOk(dev); r != CUDA_SUCCESS) return r;
  if (Mode("name_fail") && FaultOn(dev)) return CUDA_ERROR_INVALID_DEVICE;
  std::snprintf(name, static_cast<std::size_t>(len), "%s", g_config.device_name.c_str());
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attrib, CUdevice dev) {
  std::lock_guard lock(g_mu);
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = DeviceOk(dev); r != CUDA_SUCCESS) return r;
  bool low = Mode("low_cc") && FaultOn(dev);
  if (attrib == rollgate::validator::kAttrComputeCapabilityMajor) {
    *value = low ? 3 : g_config.cc_major;
  } else if (attrib == rollgate::validator::kAttrComputeCapabilityMinor) {
    *value = low ? 5 : g_config.cc_minor;
  } else {
    return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuDeviceTotalMem_v2(std::size_t* bytes, CUdevice dev) {
  std::lock_guard lock(g_mu);
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = DeviceOk(dev); r != CUDA_SUCCESS) return r;
  *bytes = g_config.total_memory;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxCreate_v2(CUcontext* ctx, unsigned int flags, CUdevice dev) {
  std::lock_guard lock(g_mu);
  if (ctx == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = DeviceOk(dev); r != CUDA_SUCCESS) return r;
  if (Mode("ctx_fail") && FaultOn(dev)) return CUDA_ERROR_DEVICES_UNAVAILABLE;
  auto* c = new FakeContext{dev, CUDA_SUCCESS};
  g_contexts.insert(c);
  t_current = c;  // a new context becomes current to the calling thread
  *ctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxDestroy_v2(CUcontext ctx) {
  std::unique_lock lock(g_mu);
  auto* c = reinterpret_cast<FakeContext*>(ctx);
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (g_contexts.count(c) == 0) return CUDA_ERROR_INVALID_CONTEXT;
  if (Mode("hang_destroy")) {
    lock.unlock();
    HangForever();
  }
  g_contexts.erase(c);
  if (t_current == c) t_current = nullptr;
  delete c;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxSetCurrent(CUcontext ctx) {
  std::lock_guard lock(g_mu);
  if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
  auto* c = reinterpret_cast<FakeContext*>(ctx);
  if (c != nullptr && g_contexts.count(c) == 0) return CUDA_ERROR_INVALID_CONTEXT;
  t_current = c;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuCtxSynchronize() {
  std::unique_lock lock(g_mu);
  FakeContext* c = nullptr;
  if (CUresult r = Current(&c); r != CUDA_SUCCESS) return r;
  if (Mode("hang")) {
    lock.unlock();
    HangForever();
  }
  if (Mode("sync_fail") && FaultOn(c->device)) return CUDA_ERROR_ILLEGAL_ADDRESS;
  return c->sticky_error;  // launch errors are sticky, as in the real driver
}

FAKE_API CUresult cuMemAlloc_v2(CUdeviceptr* dptr, std::size_t bytes) {
  std::lock_guard lock(g_mu);
  FakeContext* c = nullptr;
  if (CUresult r = Current(&c); r != CUDA_SUCCESS) return r;
  if (dptr == nullptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  if (Mode("alloc_fail") && FaultOn(c->device)) return CUDA_ERROR_OUT_OF_MEMORY;
  Allocation a;
  a.bytes = std::make_unique<unsigned char[]>(bytes);
  a.size = bytes;
  a.context = c;
  auto address = reinterpret_cast<std::uintptr_t>(a.bytes.get());
  g_allocations.emplace(address, std::move(a));
  *dptr = address;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemFree_v2(CUdeviceptr dptr) {
  std::lock_guard lock(g_mu);
  FakeContext* c = nullptr;
  if (CUresult r = Current(&c); r != CUDA_SUCCESS) return r;
  auto it = g_allocations.find(static_cast<std::uintptr_t>(dptr));
  if (it == g_allocations.end()) return CUDA_ERROR_INVALID_VALUE;
  g_allocations.erase(it);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, std::size_t bytes) {
  std::lock_guard lock(g_mu);
  FakeContext* c = nullptr;
  if (CUresult r = Current(&c); r != CUDA_SUCCESS) return r;
  unsigned char* device = HostBytes(static_cast<std::uintptr_t>(dst), bytes);
  if (src == nullptr || device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (c->sticky_error != CUDA_SUCCESS) return c->sticky_error;
  std::memcpy(device, src, bytes);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, std::size_t bytes) {
  std::lock_guard lock(g_mu);
  FakeContext* c = nullptr;
  if (CUresult r = Current(&c); r != CUDA_SUCCESS) return r;
  const unsigned char* device = HostBytes(static_cast<std::uintptr_t>(src), bytes);
  if (dst == nullptr || device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (c->sticky_error != CUDA_SUCCESS) return c->sticky_error;
  std::memcpy(dst, device, bytes);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  std::lock_guard lock(g_mu);
  FakeContext* c = nullptr;
  if (CUresult r = Current(&c); r != CUDA_SUCCESS) return r;
  if (module == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (Mode("module_fail") && FaultOn(c->device)) return CUDA_ERROR_INVALID_PTX;
  std::string why;
  std::optional<Program> program = ParsePtx(static_cast<const char*>(image), &why);
  if (!program) {
    std::fprintf(stderr, "fake libcuda: PTX rejected: %s\n", why.c_str());
    return CUDA_ERROR_INVALID_PTX;
  }
  // JIT compiles for the device only when the PTX does not target a newer architecture.
  int cc_major = Mode("low_cc") && FaultOn(c->device) ? 3 : g_config.cc_major;
  int cc_minor = Mode("low_cc") && FaultOn(c->device) ? 5 : g_config.cc_minor;
  if (std::pair{program->target_major, program->target_minor} > std::pair{cc_major, cc_minor}) {
    return CUDA_ERROR_NO_BINARY_FOR_GPU;
  }
  auto* m = new FakeModule{c, std::move(*program)};
  g_modules.insert(m);
  *module = reinterpret_cast<CUmodule>(m);
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuModuleGetFunction(CUfunction* fn, CUmodule module, const char* name) {
  std::lock_guard lock(g_mu);
  FakeContext* c = nullptr;
  if (CUresult r = Current(&c); r != CUDA_SUCCESS) return r;
  auto* m = reinterpret_cast<FakeModule*>(module);
  if (fn == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (g_modules.count(m) == 0) return CUDA_ERROR_INVALID_HANDLE;
  for (const Entry& e : m->program.entries) {
    if (e.name != name) continue;
    auto f = std::make_unique<FakeFunction>(FakeFunction{m, &e});
    FakeFunction* handle = f.get();
    g_functions.emplace(handle, std::move(f));
    *fn = reinterpret_cast<CUfunction>(handle);
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_NOT_FOUND;
}

FAKE_API CUresult cuModuleUnload(CUmodule module) {
  std::lock_guard lock(g_mu);
  FakeContext* c = nullptr;
  if (CUresult r = Current(&c); r != CUDA_SUCCESS) return r;
  auto* m = reinterpret_cast<FakeModule*>(module);
  if (g_modules.count(m) == 0) return CUDA_ERROR_INVALID_HANDLE;
  std::erase_if(g_functions, [m](const auto& f) { return f.second->module == m; });
  g_modules.erase(m);
  delete m;
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuLaunchKernel(CUfunction fn, unsigned int grid_x, unsigned int grid_y,
                                 unsigned int grid_z, unsigned int block_x, unsigned int block_y,
                                 unsigned int block_z, unsigned int shared_mem_bytes,
                                 CUstream stream, void** kernel_params, void** extra) {
  std::lock_guard lock(g_mu);
  FakeContext* c = nullptr;
  if (CUresult r = Current(&c); r != CUDA_SUCCESS) return r;
  auto it = g_functions.find(reinterpret_cast<FakeFunction*>(fn));
  if (it == g_functions.end()) return CUDA_ERROR_INVALID_HANDLE;
  const FakeFunction& f = *it->second;
  if (f.module->context != c) return CUDA_ERROR_INVALID_CONTEXT;
  if (stream != nullptr || extra != nullptr || shared_mem_bytes != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (grid_x == 0 || grid_y != 1 || grid_z != 1 || block_x == 0 || block_y != 1 || block_z != 1 ||
      block_x > 1024) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (!f.entry->params.empty() && kernel_params == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (Mode("launch_fail") && FaultOn(c->device)) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
  if (c->sticky_error != CUDA_SUCCESS) return c->sticky_error;
  if (Mode("noop_kernel") && FaultOn(c->device)) return CUDA_SUCCESS;

  Interpreter interpreter(*f.entry, kernel_params);
  for (unsigned block = 0; block < grid_x && c->sticky_error == CUDA_SUCCESS; ++block) {
    for (unsigned thread = 0; thread < block_x; ++thread) {
      CUresult r = interpreter.RunThread({block, block_x, thread, grid_x});
      if (r != CUDA_SUCCESS) {
        c->sticky_error = r;  // reported by the next synchronising call
        break;
      }
    }
  }
  if (Mode("wrong_result") && FaultOn(c->device) && f.entry->params.size() == 4) {
    // Corrupt one element of the output (third parameter, n in the fourth).
    CUdeviceptr out = 0;
    int n = 0;
    std::memcpy(&out, kernel_params[2], sizeof out);
    std::memcpy(&n, kernel_params[3], sizeof n);
    unsigned char* p = n > 0 ? HostBytes(static_cast<std::uintptr_t>(out) +
                                             sizeof(float) * static_cast<unsigned>(n / 2),
                                         sizeof(float))
                             : nullptr;
    if (p != nullptr) {
      float value = 0;
      std::memcpy(&value, p, sizeof value);
      value += 1.0F;
      std::memcpy(p, &value, sizeof value);
    }
  }
  return CUDA_SUCCESS;
}

FAKE_API CUresult cuGetErrorName(CUresult error, const char** name) {
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (const ErrorText& e : kErrors) {
    if (e.code == error) {
      *name = e.name;
      return CUDA_SUCCESS;
    }
  }
  *name = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

FAKE_API CUresult cuGetErrorString(CUresult error, const char** message) {
  if (message == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (const ErrorText& e : kErrors) {
    if (e.code == error) {
      *message = e.message;
      return CUDA_SUCCESS;
    }
  }
  *message = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

// Test hook: contexts, allocations and modules not released yet.
FAKE_API int fake_cuda_live_objects() {
  std::lock_guard lock(g_mu);
  return static_cast<int>(g_contexts.size() + g_allocations.size() + g_modules.size());
}

// Every export has exactly the type the validator's DriverApi expects of it (the _v2 entry points
// under their exported names), so a change to driver_api.h that the fake does not follow, or the
// reverse, fails to compile.
namespace {
namespace v = rollgate::validator;
static_assert(std::is_same_v<decltype(&cuInit), v::CuInitFn>);
static_assert(std::is_same_v<decltype(&cuDriverGetVersion), v::CuDriverGetVersionFn>);
static_assert(std::is_same_v<decltype(&cuDeviceGetCount), v::CuDeviceGetCountFn>);
static_assert(std::is_same_v<decltype(&cuDeviceGet), v::CuDeviceGetFn>);
static_assert(std::is_same_v<decltype(&cuDeviceGetName), v::CuDeviceGetNameFn>);
static_assert(std::is_same_v<decltype(&cuDeviceGetAttribute), v::CuDeviceGetAttributeFn>);
static_assert(std::is_same_v<decltype(&cuDeviceTotalMem_v2), v::CuDeviceTotalMemFn>);
static_assert(std::is_same_v<decltype(&cuCtxCreate_v2), v::CuCtxCreateFn>);
static_assert(std::is_same_v<decltype(&cuCtxDestroy_v2), v::CuCtxDestroyFn>);
static_assert(std::is_same_v<decltype(&cuCtxSetCurrent), v::CuCtxSetCurrentFn>);
static_assert(std::is_same_v<decltype(&cuCtxSynchronize), v::CuCtxSynchronizeFn>);
static_assert(std::is_same_v<decltype(&cuMemAlloc_v2), v::CuMemAllocFn>);
static_assert(std::is_same_v<decltype(&cuMemFree_v2), v::CuMemFreeFn>);
static_assert(std::is_same_v<decltype(&cuMemcpyHtoD_v2), v::CuMemcpyHtoDFn>);
static_assert(std::is_same_v<decltype(&cuMemcpyDtoH_v2), v::CuMemcpyDtoHFn>);
static_assert(std::is_same_v<decltype(&cuModuleLoadData), v::CuModuleLoadDataFn>);
static_assert(std::is_same_v<decltype(&cuModuleGetFunction), v::CuModuleGetFunctionFn>);
static_assert(std::is_same_v<decltype(&cuModuleUnload), v::CuModuleUnloadFn>);
static_assert(std::is_same_v<decltype(&cuLaunchKernel), v::CuLaunchKernelFn>);
static_assert(std::is_same_v<decltype(&cuGetErrorName), v::CuGetErrorNameFn>);
static_assert(std::is_same_v<decltype(&cuGetErrorString), v::CuGetErrorStringFn>);
}  // namespace

// The probe's test kernel: `vecadd(const float* a, const float* b, float* c, int n)`, c[i] = a[i] +
// b[i] for i < n, one thread per element, as PTX text that the driver JIT-compiles for whatever
// GPU it runs on (ISA 6.0 for sm_50, which every current driver accepts), plus the host side:
// the inputs, the launch geometry and the check of the result. The inputs are chosen so that
// every sum is exact in float, so the check compares exactly.
// Thread-safety: constants and pure functions; safe to call from any thread.
#pragma once

#include <string>
#include <vector>

namespace rollgate::validator {

inline constexpr const char* kVecAddKernelName = "vecadd";
// NUL-terminated PTX, as cuModuleLoadData wants it.
extern const char* const kVecAddPtx;

inline constexpr int kVecAddElements = 1024;
inline constexpr unsigned kVecAddBlockSize = 256;
// What the output buffer holds before the launch: no correct sum is negative, so a kernel that
// never ran is caught too.
inline constexpr float kVecAddSentinel = -1.0F;

struct VecAddInputs {
  std::vector<float> a;
  std::vector<float> b;
};
// a[i] = i, b[i] = (n - i) / 4: exact in float for n up to 2^22.
VecAddInputs MakeVecAddInputs(int n);

// Blocks of kVecAddBlockSize threads that cover n elements.
unsigned VecAddGridSize(int n);

// "" when c[i] == a[i] + b[i] for every i (and the sizes agree); otherwise what is wrong, e.g.
// "wrong result in 3 of 1024 elements, first at index 7: got 22, want 21".
std::string CheckVecAddResult(const VecAddInputs& in, const std::vector<float>& c);

}  // namespace rollgate::validator

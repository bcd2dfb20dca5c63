// The vecadd PTX and its host-side helpers. See vecadd.h.
// Thread-safety: constants and pure functions; see vecadd.h.
#include "controller/validator/vecadd.h"

#include <array>
#include <cstdio>

namespace rollgate::validator {

// Equivalent CUDA C (what clang/nvcc would compile to this, modulo register numbering):
//   extern "C" __global__ void vecadd(const float* a, const float* b, float* c, int n) {
//     int i = blockIdx.x * blockDim.x + threadIdx.x;
//     if (i < n) c[i] = a[i] + b[i];
//   }
const char* const kVecAddPtx = R"ptx(//
// rollgate-validate: vector add
//
.version 6.0
.target sm_50
.address_size 64

.visible .entry vecadd(
	.param .u64 vecadd_param_0,
	.param .u64 vecadd_param_1,
	.param .u64 vecadd_param_2,
	.param .u32 vecadd_param_3
)
{
	.reg .pred 	%p<2>;
	.reg .b32 	%r<6>;
	.reg .f32 	%f<4>;
	.reg .b64 	%rd<11>;

	ld.param.u32 	%r1, [vecadd_param_3];
	mov.u32 	%r2, %ctaid.x;
	mov.u32 	%r3, %ntid.x;
	mov.u32 	%r4, %tid.x;
	mad.lo.s32 	%r5, %r2, %r3, %r4;
	setp.ge.s32 	%p1, %r5, %r1;
	@%p1 bra 	LBB0_2;
	ld.param.u64 	%rd4, [vecadd_param_0];
	ld.param.u64 	%rd5, [vecadd_param_2];
	cvta.to.global.u64 	%rd6, %rd5;
	ld.param.u64 	%rd7, [vecadd_param_1];
	cvta.to.global.u64 	%rd8, %rd7;
	cvta.to.global.u64 	%rd9, %rd4;
	mul.wide.s32 	%rd10, %r5, 4;
	add.s64 	%rd1, %rd6, %rd10;
	add.s64 	%rd2, %rd8, %rd10;
	add.s64 	%rd3, %rd9, %rd10;
	ld.global.f32 	%f1, [%rd3];
	ld.global.f32 	%f2, [%rd2];
	add.f32 	%f3, %f1, %f2;
	st.global.f32 	[%rd1], %f3;
LBB0_2:
	ret;
}
)ptx";

VecAddInputs MakeVecAddInputs(int n) {
  VecAddInputs in;
  in.a.resize(static_cast<std::size_t>(n));
  in.b.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    in.a[static_cast<std::size_t>(i)] = static_cast<float>(i);
    in.b[static_cast<std::size_t>(i)] = static_cast<float>(n - i) * 0.25F;
  }
  return in;
}

unsigned VecAddGridSize(int n) {
  return (static_cast<unsigned>(n) + kVecAddBlockSize - 1) / kVecAddBlockSize;
}

std::string CheckVecAddResult(const VecAddInputs& in, const std::vector<float>& c) {
  if (in.a.size() != in.b.size() || c.size() != in.a.size()) {
    return "result has " + std::to_string(c.size()) + " elements, want " +
           std::to_string(in.a.size());
  }
  std::size_t wrong = 0;
  std::size_t first = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (!(c[i] == in.a[i] + in.b[i])) {  // also catches NaN
      if (wrong == 0) first = i;
      ++wrong;
    }
  }
  if (wrong == 0) return "";
  std::array<char, 128> text{};
  std::snprintf(text.data(), text.size(),
                "wrong result in %zu of %zu elements, first at index %zu: got %g, want %g", wrong,
                c.size(), first, static_cast<double>(c[first]),
                static_cast<double>(in.a[first] + in.b[first]));
  return text.data();
}

}  // namespace rollgate::validator

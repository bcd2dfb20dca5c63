// Tests of the probe's kernel side: the embedded PTX, the inputs and the host-side check.
// Thread-safety: single-threaded tests.
#include "controller/validator/vecadd.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace rollgate::validator {
namespace {

TEST(CudaVecAddTest, PtxDeclaresTheKernelForAnOldIsa) {
  std::string ptx = kVecAddPtx;  // up to the terminating NUL
  ASSERT_FALSE(ptx.empty());
  EXPECT_EQ(ptx.substr(ptx.size() - 2), "}\n") << "the NUL follows the entry's body";
  EXPECT_NE(ptx.find(".version 6.0\n"), std::string::npos);
  EXPECT_NE(ptx.find(".target sm_50\n"), std::string::npos);
  EXPECT_NE(ptx.find(".address_size 64\n"), std::string::npos);
  EXPECT_NE(ptx.find(".visible .entry vecadd("), std::string::npos);
  EXPECT_NE(ptx.find(".param .u32 vecadd_param_3"), std::string::npos);
  EXPECT_EQ(std::string(kVecAddKernelName), "vecadd");
}

TEST(CudaVecAddTest, InputsAreExactAndGeometryCoversEveryElement) {
  VecAddInputs in = MakeVecAddInputs(kVecAddElements);
  ASSERT_EQ(in.a.size(), 1024U);
  ASSERT_EQ(in.b.size(), 1024U);
  EXPECT_EQ(in.a[7], 7.0F);
  EXPECT_EQ(in.b[0], 256.0F);
  EXPECT_EQ(in.b[1023], 0.25F);
  for (std::size_t i = 0; i < in.a.size(); ++i) {
    double exact = static_cast<double>(i) + (1024.0 - static_cast<double>(i)) / 4;
    ASSERT_EQ(static_cast<double>(in.a[i] + in.b[i]), exact) << i;
    ASSERT_GT(in.a[i] + in.b[i], kVecAddSentinel);
  }
  EXPECT_EQ(VecAddGridSize(1024), 4U);
  EXPECT_EQ(VecAddGridSize(1025), 5U);
  EXPECT_EQ(VecAddGridSize(1), 1U);
}

TEST(CudaVecAddTest, CheckAcceptsOnlyTheExactSum) {
  VecAddInputs in = MakeVecAddInputs(8);
  std::vector<float> c(8);
  for (std::size_t i = 0; i < 8; ++i) c[i] = in.a[i] + in.b[i];
  EXPECT_EQ(CheckVecAddResult(in, c), "");

  std::vector<float> wrong = c;
  wrong[3] += 1;
  wrong[5] = NAN;
  EXPECT_EQ(CheckVecAddResult(in, wrong),
            "wrong result in 2 of 8 elements, first at index 3: got 5.25, want 4.25");

  std::vector<float> untouched(8, kVecAddSentinel);
  EXPECT_EQ(CheckVecAddResult(in, untouched),
            "wrong result in 8 of 8 elements, first at index 0: got -1, want 2");
  EXPECT_EQ(CheckVecAddResult(in, std::vector<float>(7)), "result has 7 elements, want 8");
}

}  // namespace
}  // namespace rollgate::validator

// The constants of the vectorised exp the AVX-512 and AVX2 kernels share (Cephes expf): x = n ln2
// + r with |r| <= ln2 / 2 (ln2 split in two for an exact n ln2), e^r = 1 + r + r^2 p(r) with p of
// degree 5. Relative error ~1.5e-7 on [kExpMin, kExpMax]; below kExpMin the kernels give 0 (e^x
// under the smallest normal float), above kExpMax they saturate.
#pragma once

namespace hexe::cpu::exp_poly {

inline constexpr float kExpMin = -87.33654f, kExpMax = 88.72283f;
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
// p(r), highest power first.
inline constexpr float kP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

}  // namespace hexe::cpu::exp_poly

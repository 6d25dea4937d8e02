/*
 * AVX2 + FMA kernels of the nn engine (see cpu_ops.h, "SIMD dispatch").
 *
 * Each function carries its own target attribute, so the file builds with
 * the project's flags (no -mavx2) and nothing here runs unless cpu_ops.c
 * checked the CPU first. With UPRES_NO_SIMD, or on other targets, the file
 * is empty and the portable kernels are the only ones.
 */
#include "nn/cpu/cpu_ops.h"

#ifdef NNCPU_HAVE_AVX2

#include <immintrin.h>
#include <string.h>

#define AVX2_FN __attribute__((target("avx2,fma")))

int nncpu_avx2_usable(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* bias + act on one 8-lane half-row. */
AVX2_FN static inline __m256 finish(__m256 v, __m256 bias, nn_act act, __m256 alpha)
{
    v = _mm256_add_ps(v, bias);
    if (act == NN_ACT_RELU) {
        v = _mm256_max_ps(v, _mm256_setzero_ps());
    } else if (act == NN_ACT_LEAKY) {
        __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
        v = _mm256_blendv_ps(v, _mm256_mul_ps(v, alpha), neg);
    }
    return v;
}

AVX2_FN void nncpu_avx2_gemm6x16(size_t K, const float *restrict a, const float *restrict b,
                                 float *restrict out, size_t ldo, int rows, int cols,
                                 const float *bias, nn_act act, float alpha)
{
    /* Twelve accumulators + two B vectors + one broadcast: 15 of the 16
     * ymm registers, so the whole tile stays in registers over K. */
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t k = 0; k < K; k++) {
        const __m256 b0 = _mm256_loadu_ps(b + k * NNCPU_NR_AVX2);
        const __m256 b1 = _mm256_loadu_ps(b + k * NNCPU_NR_AVX2 + 8);
        const float *ak = a + k * NNCPU_MR;
        __m256 x;
        x = _mm256_broadcast_ss(ak + 0);
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(ak + 1);
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(ak + 2);
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(ak + 3);
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(ak + 4);
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(ak + 5);
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    const __m256 acc[NNCPU_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                     {c30, c31}, {c40, c41}, {c50, c51}};
    const __m256 al = _mm256_set1_ps(alpha);
    for (int r = 0; r < rows; r++) {
        const __m256 bv = _mm256_set1_ps(bias ? bias[r] : 0.0f);
        __m256 v0 = finish(acc[r][0], bv, act, al), v1 = finish(acc[r][1], bv, act, al);
        float *dst = out + (size_t)r * ldo;
        if (cols == NNCPU_NR_AVX2) {
            _mm256_storeu_ps(dst, v0);
            _mm256_storeu_ps(dst + 8, v1);
        } else {
            /* A partial tile goes through a buffer rather than masked
             * stores, so no access ever reaches past the row. */
            float tmp[NNCPU_NR_AVX2];
            _mm256_storeu_ps(tmp, v0);
            _mm256_storeu_ps(tmp + 8, v1);
            memcpy(dst, tmp, (size_t)cols * sizeof(float));
        }
    }
}

#else

/* ISO C wants at least one declaration per translation unit. */
typedef int nncpu_avx2_unused;

#endif

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

/* bias + act on one 8-lane half-row (alpha: the leaky or PReLU slope). */
AVX2_FN static inline __m256 finish(__m256 v, __m256 bias, nn_act act, __m256 alpha)
{
    v = _mm256_add_ps(v, bias);
    if (act == NN_ACT_RELU) {
        v = _mm256_max_ps(v, _mm256_setzero_ps());
    } else if (act == NN_ACT_LEAKY || act == NN_ACT_PRELU) {
        __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
        v = _mm256_blendv_ps(v, _mm256_mul_ps(v, alpha), neg);
    }
    return v;
}

AVX2_FN void nncpu_avx2_gemm6x16(size_t K, const float *restrict a, const float *restrict b,
                                 float *restrict out, size_t ldo, int rows, int cols,
                                 const float *bias, nn_act act, const float *alpha)
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
    for (int r = 0; r < rows; r++) {
        const __m256 bv = _mm256_set1_ps(bias ? bias[r] : 0.0f);
        const float slope = act == NN_ACT_PRELU ? alpha[r] : act == NN_ACT_LEAKY ? alpha[0] : 0.0f;
        const __m256 al = _mm256_set1_ps(slope);
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

/* ---- Winograd block kernel (cpu_wino_impl.h) compiled for AVX2 + FMA ---- */

#include <math.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

typedef float v8 __attribute__((vector_size(32)));

/* 8x8 transpose in registers: unpack pairs, shuffle quads, swap halves. */
static inline __attribute__((always_inline)) void wino_transpose_avx2(v8 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps((__m256)r[0], (__m256)r[1]);
    __m256 t1 = _mm256_unpackhi_ps((__m256)r[0], (__m256)r[1]);
    __m256 t2 = _mm256_unpacklo_ps((__m256)r[2], (__m256)r[3]);
    __m256 t3 = _mm256_unpackhi_ps((__m256)r[2], (__m256)r[3]);
    __m256 t4 = _mm256_unpacklo_ps((__m256)r[4], (__m256)r[5]);
    __m256 t5 = _mm256_unpackhi_ps((__m256)r[4], (__m256)r[5]);
    __m256 t6 = _mm256_unpacklo_ps((__m256)r[6], (__m256)r[7]);
    __m256 t7 = _mm256_unpackhi_ps((__m256)r[6], (__m256)r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = (v8)_mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = (v8)_mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = (v8)_mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = (v8)_mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = (v8)_mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = (v8)_mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = (v8)_mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = (v8)_mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Six floats: four through an xmm store, two through a 64-bit one. */
static inline __attribute__((always_inline)) void wino_load6_avx2(v8 *v, const float *p)
{
    __m128 lo = _mm_loadu_ps(p);
    __m128 hi = _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(p + 4));
    *v = (v8)_mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}
static inline __attribute__((always_inline)) void wino_store6_avx2(float *p, const v8 *v)
{
    _mm_storeu_ps(p, _mm256_castps256_ps128((__m256)*v));
    _mm_storel_pi((__m64 *)(p + 4), _mm256_extractf128_ps((__m256)*v, 1));
}

/* Lane i = row[x0 + i] inside [0, W), else 0: one load of 8 floats that
 * lie in the row (W >= 8), moved into place by a lane permutation. */
static inline __attribute__((always_inline)) void wino_loadedge_avx2(v8 *v, const float *row,
                                                                     int x0, int W)
{
    int b = x0 < 0 ? 0 : x0 > W - 8 ? W - 8 : x0;
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i col = _mm256_add_epi32(iota, _mm256_set1_epi32(x0));
    __m256i inside = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), col),
                                         _mm256_cmpgt_epi32(_mm256_set1_epi32(W), col));
    __m256 x = _mm256_permutevar8x32_ps(_mm256_loadu_ps(row + b),
                                        _mm256_add_epi32(iota, _mm256_set1_epi32(x0 - b)));
    *v = (v8)_mm256_and_ps(x, _mm256_castsi256_ps(inside));
}

#define WINO_LOADEDGE wino_loadedge_avx2
#define WINO_LOAD6 wino_load6_avx2
#define WINO_STORE6 wino_store6_avx2
#define WINO_NAME(x) x##_avx2
#define WINO_FMA(a, b, c) ((v8)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define WINO_TRANSPOSE wino_transpose_avx2
#include "nn/cpu/cpu_wino_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else

/* ISO C wants at least one declaration per translation unit. */
typedef int nncpu_avx2_unused;

#endif

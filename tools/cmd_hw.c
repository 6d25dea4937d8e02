/* `upres hw`: what this machine offers (CPU, SIMD, memory, GPU) and the
 * settings `upres upscale` would use on it for a model. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cli_hw_help[] =
    "usage: upres hw [-m MODEL] [--size WxH] [--json]\n"
    "\n"
    "Describes this machine: CPU model, logical cores, SIMD features of the CPU\n"
    "(x86: sse2, sse4.1, avx, avx2, fma, avx512f), total and available RAM, and\n"
    "the GPU (always none: upres has no GPU backend yet). Then recommends, for\n"
    "MODEL on a WxH input, the settings 'upres upscale' picks itself with its\n"
    "default memory budget (a quarter of RAM, at most 512 MiB): tile size, threads (-j, by\n"
    "default one per logical core), precision (fp16 is never used: the CPU backend computes in\n"
    "fp32) and batch size (always 1: images run one at a time).\n"
    "\n"
    "  -m, --model MODEL    a model file or name, as for 'upres upscale' (default:\n"
    "                       the first default model found)\n"
    "      --model-path DIR also search DIR for model names (repeatable)\n"
    "      --size WxH       input size for the recommendation (default 1920x1080)\n"
    "      --json           one JSON object on stdout: cpu, logical_cores, simd\n"
    "                       (list), ram_total_bytes, ram_available_bytes, gpu,\n"
    "                       model (path or null), arch, width, height,\n"
    "                       recommended {batch_size, tile_size (null without a\n"
    "                       model), fp16, threads}, tiles, tile_bytes\n"
    "\n"
    "Example: upres hw -m realesr-animevideov3 --json\n";

/* CPU model name from /proc/cpuinfo into buf (x86 "model name"; ARM and
 * others "Model", "Hardware" or "cpu model"); NULL when not found. */
static const char *cpu_name(char *buf, size_t cap)
{
    static const char *const keys[] = {"model name", "Model", "Hardware", "cpu model"};
    char line[512], found[4][256] = {{0}};
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return NULL;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        size_t klen = (size_t)(colon - line);
        while (klen && (line[klen - 1] == ' ' || line[klen - 1] == '\t')) klen--;
        for (int k = 0; k < 4; k++) {
            if (found[k][0] || strlen(keys[k]) != klen || strncmp(line, keys[k], klen)) continue;
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t') v++;
            snprintf(found[k], sizeof found[k], "%s", v);
            found[k][strcspn(found[k], "\r\n")] = 0;
        }
    }
    fclose(f);
    for (int k = 0; k < 4; k++)
        if (found[k][0]) return cli_clean(found[k], buf, cap);
    return NULL;
}

/* SIMD features of this CPU, as a NULL-terminated list of static names. */
static void simd_features(const char *out[8])
{
    int n = 0;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse2")) out[n++] = "sse2";
    if (__builtin_cpu_supports("sse4.1")) out[n++] = "sse4.1";
    if (__builtin_cpu_supports("avx")) out[n++] = "avx";
    if (__builtin_cpu_supports("avx2")) out[n++] = "avx2";
    if (__builtin_cpu_supports("fma")) out[n++] = "fma";
    if (__builtin_cpu_supports("avx512f")) out[n++] = "avx512f";
#endif
    out[n] = NULL;
}

typedef cli_model_job hw_opts;

static int hw_option(cli_args *a, void *opts)
{
    return cli_model_job_option(a, opts);
}

int cli_hw_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "hw", 0};
    hw_opts o;
    memset(&o, 0, sizeof o);
    o.w = 1920;
    o.h = 1080;
    int rc = CLI_OK;
    int exit_now;
    rc = cli_parse_options(g, &a, hw_option, &o, NULL, NULL, &exit_now);
    if (rc == CLI_OK && exit_now >= 0) rc = exit_now;
    if (rc != CLI_OK || exit_now >= 0) {
        cli_paths_free(&o.model_dirs);
        return rc;
    }

    char cpu_buf[256];
    const char *cpu = cpu_name(cpu_buf, sizeof cpu_buf);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    const char *simd[8];
    simd_features(simd);
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGE_SIZE);
    uint64_t ram = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    uint64_t avail = cli_available_memory();

    upres_ctx *ctx = NULL;
    upres_model *model = NULL;
    char *model_path = NULL;
    uint32_t tile = 0, tiles = 0;
    uint64_t tile_bytes = 0;
    if ((rc = cli_make_ctx(g, &ctx)) != CLI_OK) goto done;
    if ((rc = cli_resolve_model(g, ctx, o.model, &o.model_dirs, 0, &model, &model_path)))
        goto done;
    int st = upres_upscale_plan(ctx, model, o.w, o.h, NULL, &tile, &tiles, &tile_bytes);
    if (st != UPRES_OK) {
        char what[64];
        snprintf(what, sizeof what, "plan the tiles of a %ux%u input", o.w, o.h);
        rc = cli_report(ctx, st, what, NULL);
        goto done;
    }
    upres_model_info mi;
    memset(&mi, 0, sizeof mi);
    if (model) upres_model_get_info(model, &mi);
    /* The threads the plan was made for (-j), as upscale would use them. */
    const int threads = upres_ctx_threads(ctx);
    cli_progress_clear();
    if (o.json) {
        fputs("{\"cpu\": ", stdout);
        cli_json_str(stdout, cpu);
        printf(", \"logical_cores\": %ld, \"simd\": [", cores);
        for (int i = 0; simd[i]; i++) printf("%s\"%s\"", i ? ", " : "", simd[i]);
        printf("], \"ram_total_bytes\": %llu, \"ram_available_bytes\": %llu, \"gpu\": null, "
               "\"model\": ",
               (unsigned long long)ram, (unsigned long long)avail);
        cli_json_str(stdout, model ? model_path : NULL);
        fputs(", \"arch\": ", stdout);
        cli_json_str(stdout, model ? mi.arch : NULL);
        printf(", \"width\": %u, \"height\": %u, \"recommended\": {\"batch_size\": 1, "
               "\"tile_size\": ",
               o.w, o.h);
        if (model) printf("%u", tile);
        else fputs("null", stdout);
        printf(", \"fp16\": false, \"threads\": %d}, \"tiles\": %u, \"tile_bytes\": %llu}\n",
               threads, tiles, (unsigned long long)tile_bytes);
        fflush(stdout);
        goto done;
    }
    printf("CPU:      %s, %ld logical core%s\n", cpu ? cpu : "unknown model", cores,
           cores == 1 ? "" : "s");
    printf("SIMD:    ");
    for (int i = 0; simd[i]; i++) printf(" %s", simd[i]);
    printf("%s\n", simd[0] ? "" : " none detected");
    printf("memory:   %.1f GB total, %.1f GB available\n", ram / 1073741824.0,
           avail / 1073741824.0);
    printf("GPU:      none used (upres has no GPU backend yet)\n");
    if (model) {
        char name[sizeof mi.name];
        printf("model:    %s (%s, x%d)\n", cli_clean(mi.name, name, sizeof name), mi.arch,
               mi.scale);
        printf("for a %ux%u input: tile %u (%u tile%s, ~%.0f MB each), %d thread%s, fp32, "
               "batch 1\n",
               o.w, o.h, tile, tiles, tiles == 1 ? "" : "s", tile_bytes / 1048576.0, threads,
               threads == 1 ? "" : "s");
    } else {
        printf("model:    none found (lanczos3 needs no tiles)\n");
        printf("for a %ux%u input: %d thread%s\n", o.w, o.h, threads, threads == 1 ? "" : "s");
    }

done:
    cli_progress_clear();
    upres_model_free(model);
    free(model_path);
    upres_ctx_free(ctx);
    cli_paths_free(&o.model_dirs);
    return rc;
}

/* Shared pieces of the `upres` command-line tool: the subcommand table,
 * option parsing, error reporting, the progress bar.
 *
 * The tool uses only the public API (upres.h). Exit codes: CLI_OK on success,
 * CLI_FAIL when the work failed (bad input file, write error, ...), CLI_USAGE
 * for bad command lines. Every failure prints exactly one line on stderr. */
#ifndef UPRES_CLI_H
#define UPRES_CLI_H

#include "upres.h"

#include <stdio.h>

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Options accepted before or after the subcommand name. */
typedef struct cli_global {
    int verbose;            /* -v: timings and steps on stderr */
    int quiet;              /* -q: no progress bar, no summary lines */
    int threads;            /* -j: 0 = one per CPU */
    uint64_t max_pixels;    /* --max-pixels; 0 = library default */
} cli_global;

/* One subcommand. `run` gets the arguments after the subcommand's name
 * (argv[0] is the first of them, argc may be 0) and returns an exit code. */
typedef struct cli_command {
    const char *name;
    const char *summary;   /* one line for `upres --help` */
    int (*run)(cli_global *g, int argc, char **argv);
    const char *help;      /* full text for `upres NAME --help` */
} cli_command;

/* The table (tools/upres.c), terminated by an entry with name == NULL. */
extern const cli_command cli_commands[];
const cli_command *cli_find_command(const char *name);
/* Prints the help of subcommand `cmd` (NULL: the overview) on stdout. */
void cli_print_help(const char *cmd);

/* Subcommand handlers and their help texts (tools/cmd_*.c). */
int cli_info_main(cli_global *g, int argc, char **argv);
int cli_resize_main(cli_global *g, int argc, char **argv);
int cli_convert_main(cli_global *g, int argc, char **argv);
int cli_split_main(cli_global *g, int argc, char **argv);
int cli_split_processed_main(cli_global *g, int argc, char **argv);
int cli_batch_split_main(cli_global *g, int argc, char **argv);
int cli_merge_main(cli_global *g, int argc, char **argv);
int cli_upscale_main(cli_global *g, int argc, char **argv);
int cli_models_main(cli_global *g, int argc, char **argv);
int cli_metrics_main(cli_global *g, int argc, char **argv);  /* tools/cmd_metrics.c */
int cli_compare_main(cli_global *g, int argc, char **argv);  /* tools/cmd_compare.c */
int cli_bench_main(cli_global *g, int argc, char **argv);    /* tools/cmd_bench.c */
int cli_hw_main(cli_global *g, int argc, char **argv);       /* tools/cmd_hw.c */
extern const char cli_metrics_help[];
extern const char cli_compare_help[];
extern const char cli_bench_help[];
extern const char cli_hw_help[];
extern const char cli_split_help[];
extern const char cli_split_processed_help[];
extern const char cli_batch_split_help[];
extern const char cli_merge_help[];
extern const char cli_upscale_help[];
extern const char cli_models_help[];
extern const char cli_info_help[];
extern const char cli_resize_help[];
extern const char cli_convert_help[];
/* Help for the options every subcommand accepts (printed after each help). */
extern const char cli_global_help[];
/* Help for the output options shared by resize and convert (a string
 * literal, appended to their help texts). */
#define CLI_OUTPUT_HELP \
    "Output options (the format comes from OUT's extension: .png .jpg .jpeg .tif\n" \
    ".tiff .webp):\n" \
    "      --quality Q      JPEG and lossy WebP quality, 1-100 (default 95)\n" \
    "      --compression N  PNG zlib level, 0-9 (default 6)\n" \
    "      --lossless       WebP: lossless encoding\n" \
    "      --depth D        8 or 16 (PNG, TIFF) bits per sample, or 32 (float\n" \
    "                       TIFF); default: the input's (PNG: 16 for float);\n" \
    "                       JPEG and WebP are always 8\n" \
    "      --no-icc         do not store the ICC colour profile\n" \
    "      --force          allow OUT to be the same file as IN (replaced\n" \
    "                       atomically)\n"


/* ---- argument scanning ------------------------------------------------- */

/* A cursor over a subcommand's arguments. `cmd` names the subcommand for
 * messages (NULL before one is chosen). */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;
    const char *cmd;
    int only_operands;  /* set after "--" */
} cli_args;

/* Result of matching an option: not this option, matched (cursor advanced,
 * *value set when the option takes one), or a usage error already printed. */
enum { CLI_NOMATCH = 0, CLI_MATCH = 1, CLI_BAD = -1 };

/* Operand handling at argv[i]: returns 1 and stores it in *operand (cursor
 * advanced) when it is an operand (not an option, or anything after "--",
 * or a lone "-"); returns 2 for "--" itself (consumed); 0 for an option. */
int cli_take_operand(cli_args *a, const char **operand);

/* Parses a command's arguments: options go to opt(a, opts), then to the
 * global options. operand NULL: the command takes no operands; else it takes
 * at most one, stored in *operand (a second is a usage error quoting
 * `operand_help`, e.g. "want one IN"). Returns CLI_OK, or the exit status of
 * a usage error (message printed); *exit_now is the status to exit with at
 * once (--help, --version) or -1. */
int cli_parse_options(cli_global *g, cli_args *a, int (*opt)(cli_args *, void *), void *opts,
                      const char **operand, const char *operand_help, int *exit_now);

/* Matches argv[i] against `--long`, `--long=V`, `-s` or `-sV` (short may be
 * 0); in long names '_' and '-' match each other. When `value` is non-NULL the option takes a value (inline or the next
 * argument); a missing value is a usage error. */
int cli_match(cli_args *a, const char *longname, char shortname, const char **value);

/* Handles one global option at the cursor (-v, -q, -j N, --max-pixels N,
 * --version, -h). Sets *exit_now to an exit code when the program should stop
 * successfully (--version, --help: output already printed). */
int cli_global_option(cli_args *a, cli_global *g, int *exit_now);

/* Prints "upres: MESSAGE; run 'upres [CMD] --help' for usage" on stderr and
 * returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) CLI_PRINTF(2, 3);

/* Strict number parsers: the whole string must be a number in range.
 * Return 1 on success, 0 otherwise (nothing printed). */
int cli_parse_long(const char *s, long min, long max, long *out);
/* Unsigned integer with an optional decimal suffix k, M, G (x1000^n). */
int cli_parse_count(const char *s, uint64_t *out);
/* A positive finite decimal number (digits and at most one '.'). */
int cli_parse_factor(const char *s, double *out);
/* "WxH" with W, H in 1..max. */
int cli_parse_size(const char *s, uint32_t max, uint32_t *w, uint32_t *h);

/* ---- output options (resize, convert) ---------------------------------- */

typedef struct cli_output {
    int quality;        /* 1..100 */
    int compression;    /* 0..9 */
    int lossless;
    int depth;          /* 0 = keep, 8, 16, 32 */
    int no_icc;
    int force;
    int quality_set, compression_set;
} cli_output;

void cli_output_defaults(cli_output *o);
/* Matches one output option at the cursor; see cli_match for the result. */
int cli_output_option(cli_args *a, cli_output *o);
/* Checks the options against the format chosen by OUT's extension and fills
 * an encode descriptor. Returns CLI_OK or CLI_USAGE (message printed). */
int cli_output_desc(const char *cmd, const cli_output *o, const char *out_path,
                    upres_encode_desc *d);

/* ---- files, context, messages ------------------------------------------ */

/* Refuses (CLI_FAIL, message printed) when `out` is the same file as `in`
 * (unless force), a directory, or in a folder that does not exist. */
int cli_check_paths(const char *in, const char *out, int force);

/* Creates the context from the global options (threads, limits, progress).
 * Returns CLI_OK or CLI_FAIL (message printed). */
int cli_make_ctx(const cli_global *g, upres_ctx **ctx);

/* Loads `path` (orientation applied when apply_orientation), reporting a
 * failure on stderr. Returns CLI_OK or CLI_FAIL. */
int cli_load(const cli_global *g, upres_ctx *ctx, const char *path, int apply_orientation,
             upres_image **img, upres_file_info *info);
/* Saves atomically, reporting a failure on stderr. Returns CLI_OK or CLI_FAIL. */
int cli_save(const cli_global *g, upres_ctx *ctx, const upres_image *img, const char *path,
             const upres_encode_desc *d);

/* "cannot VERB 'PATH': <strerror> (<detail>); <hint>" on stderr; returns
 * CLI_FAIL. `path` may be NULL. */
int cli_report(upres_ctx *ctx, int status, const char *verb, const char *path);
/* "upres: MESSAGE" on stderr (one line); returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) CLI_PRINTF(1, 2);
/* "upres: MESSAGE" on stderr when verbose. */
void cli_verbose(const cli_global *g, const char *fmt, ...) CLI_PRINTF(2, 3);
/* A summary line on stdout unless quiet. */
void cli_note(const cli_global *g, const char *fmt, ...) CLI_PRINTF(2, 3);

/* Copies `s` into buf (cap > 0) with control characters replaced by '?', so
 * a file name or a codec message cannot break the one-line rule. */
const char *cli_clean(const char *s, char *buf, size_t cap);

/* "8-bit RGB", "16-bit gray+alpha", ... of an image in memory. */
const char *cli_layout_name(const upres_image *img, char *buf, size_t cap);
/* "gray", "gray+alpha", "RGB", "RGBA" or "?". */
const char *cli_channels_name(uint32_t channels);

/* ---- machine checks and patterns (tools/cli_sys.c) ---------------------- */

/* Free bytes for an unprivileged writer in the file system holding `dir`;
 * 0 when unknown. */
int cli_free_bytes(const char *dir, uint64_t *out);
/* Memory the system could give us now (MemAvailable); 0 when unknown. */
uint64_t cli_available_memory(void);
/* The value of `key` (e.g. "VmHWM", "MemTotal") in a /proc file of
 * "Key:  N kB" lines, in bytes; 0 when missing. */
uint64_t cli_proc_kb(const char *path, const char *key);
/* Peak resident memory of this process in bytes (VmHWM, else getrusage);
 * 0 when unknown. */
uint64_t cli_peak_rss(void);
/* Resets the peak (VmHWM) to the current resident size; 1 when it could
 * (Linux /proc/self/clear_refs). */
int cli_peak_rss_reset(void);
/* Fails with "Need ~X MB, have Y MB free" when `need` bytes do not fit in
 * `dir`'s file system; CLI_OK when they do or free space is unknown. */
int cli_check_disk(const char *dir, uint64_t need, const char *what);
/* Warns on stderr (does not fail) when `need` bytes exceed the available
 * memory; with -v prints the estimate. */
void cli_check_memory(const cli_global *g, uint64_t need, const char *what);

/* A list of malloc()ed paths. */
typedef struct cli_paths {
    char **v;
    size_t n, cap;
} cli_paths;
/* Appends the files matching `pattern` (sorted, no duplicates): '*', '?' and
 * '[...]' match within a name (a leading '.' only explicitly), '**' matches
 * any number of folders (hidden folders and links to folders are not
 * entered); a trailing '**' means every file below. Folders are never listed.
 * `root` (may be NULL) receives the folder the walk started from: the
 * pattern's leading literal folders with "." components dropped ("." when
 * none); matches start with it. Returns 0 when out of memory. */
int cli_expand_pattern(const char *pattern, cli_paths *out, char *root, size_t root_cap);
/* Appends a copy of `path`; 0 when out of memory. */
int cli_paths_add(cli_paths *l, const char *path);
void cli_paths_free(cli_paths *l);

/* Monotonic seconds. */
double cli_now(void);

/* ---- progress bar (tools/progress.c) ----------------------------------- */

/* Starts the bar's clock; the bar is drawn only when `enabled` and the work
 * has lasted ~0.5 s (environment UPRES_FORCE_PROGRESS=1 forces it on with no
 * delay, for tests). Also installs a SIGINT handler that cancels the work at
 * the next progress report (a second Ctrl-C kills as usual). */
void cli_progress_start(int enabled);
/* upres_progress_fn; `user` is unused. */
int cli_progress_cb(void *user, const char *what, uint64_t done, uint64_t total);
/* Shows a one-line status ("writing 'x.png'") in the bar's place for a step
 * that reports no progress; drawn under the same conditions as the bar, or
 * at once when `likely_long` (a big image). Erased like the bar. */
void cli_progress_status(const char *text, int likely_long);
/* Erases the bar if drawn (call before printing to stderr). */
void cli_progress_clear(void);
/* 1 once Ctrl-C was pressed; commands check it between steps (decoders and
 * encoders report no progress) so an interrupted run writes nothing. */
int cli_interrupted(void);

/* Shared by the model commands (defined in tools/cmd_upscale.c). */
/* Finds and loads a model the way `upscale -m` does. want != NULL: a file,
 * else a name in the search path (--model-path dirs, UPRES_MODEL_PATH,
 * ./models, $XDG_DATA_HOME/upres/models); not found or not loadable is an
 * error (one line printed, CLI_FAIL). want == NULL: the default list;
 * nothing usable leaves *model NULL after one warning. want_scale prefers
 * files of that scale among equal names (0 = any). *path receives the
 * loaded file (owned) or NULL. */
int cli_resolve_model(const cli_global *g, upres_ctx *ctx, const char *want,
                      const cli_paths *model_dirs, int want_scale, upres_model **model,
                      char **path);
/* Writes s as a JSON string with its quotes (NULL: null); invalid UTF-8
 * becomes U+FFFD, control characters backslash-u escapes. */
void cli_json_str(FILE *f, const char *s);
/* Matches -m/--model MODEL and --model-path DIR (repeatable) for the model
 * commands; returns like cli_match (CLI_BAD after printing a usage error). */
int cli_model_option(cli_args *a, const char **model, cli_paths *dirs);
/* Matches --tile N (0 automatic, 8..65535) and --tile-pad N (0..4096) of
 * `upscale` and `bench`; returns like cli_match. */
int cli_tile_option(cli_args *a, long *tile, long *tile_pad);
/* Options shared by `bench` and `hw` (defined in tools/cmd_bench.c). */
typedef struct cli_model_job {
    const char *model;    /* -m */
    cli_paths model_dirs; /* --model-path */
    uint32_t w, h;        /* --size WxH */
    int json;             /* --json */
} cli_model_job;
/* Matches -m, --model-path, --size and --json; returns like cli_match. */
int cli_model_job_option(cli_args *a, cli_model_job *j);
/* Parses a memory size such as 512M, 2G, 1.5G (powers of 1024; at least
 * 1M). Returns 1 on success. */
int cli_parse_memory(const char *s, uint64_t *out);

/* ---- bitmap text (tools/cli_font.c) ------------------------------------ */

/* Glyph cell of the built-in 5x7 font, in font pixels; characters advance by
 * CLI_FONT_ADVANCE (one blank column between them). */
#define CLI_FONT_W 5
#define CLI_FONT_H 7
#define CLI_FONT_ADVANCE 6

/* Width in pixels of `text` drawn at `scale` (each font pixel a scale x
 * scale square): (chars * 6 - 1) * scale, 0 for "". */
uint32_t cli_text_width(const char *text, uint32_t scale);
/* Draws `text` with its top-left corner at (x, y) in colour rgb into an
 * 8-bit image of 3 or 4 channels (other images are left alone; alpha is not
 * touched), clipped to the image. Bytes outside printable ASCII are drawn
 * as '?'. */
void cli_draw_text(upres_image *img, int64_t x, int64_t y, const char *text, uint32_t scale,
                   const uint8_t rgb[3]);

#endif

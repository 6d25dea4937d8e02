/* Tests of upres_external_run() and its pieces (src/exec). The external
 * tools are small /bin/sh scripts written at run time into test_tmp()
 * folders; the ones that make images call the upres CLI ($UPRES_BIN). The
 * scripts learn where to record things from environment variables
 * (UPRES_T_REC, UPRES_T_PID), set by the test (each test runs in its own
 * forked process, so setenv() is harmless). */
/* realpath() is in POSIX's XSI part, which -D_POSIX_C_SOURCE alone hides. */
#define _XOPEN_SOURCE 700
#include "test.h"

#include "exec/exec_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Writes an executable /bin/sh script with `body` at path. 0 on success. */
static int write_tool(const char *path, const char *body)
{
    char buf[8192];
    int n = snprintf(buf, sizeof buf, "#!/bin/sh\n%s\n", body);
    if (n < 0 || (size_t)n >= sizeof buf) return -1;
    if (test_write_file(path, buf, (size_t)n) != 0) return -1;
    return chmod(path, 0755);
}

/* Quotes s as one template argument: '...' with ' written '\'' and % as %%. */
static void tq(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    out[o++] = '\'';
    for (; *s && o + 6 < cap; s++) {
        if (*s == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else if (*s == '%') {
            memcpy(out + o, "%%", 2);
            o += 2;
        } else {
            out[o++] = *s;
        }
    }
    out[o++] = '\'';
    out[o] = 0;
}

/* test_tmp(name) in storage that outlives test_tmp()'s 8 rotating slots
 * (16 slots of its own). */
static const char *tpath(const char *name)
{
    static char bufs[16][4096];
    static int slot;
    char *b = bufs[slot++ & 15];
    snprintf(b, sizeof bufs[0], "%s", test_tmp(name));
    return b;
}

/* A fresh folder tpath(name); NULL on failure. */
static const char *make_dir(const char *name)
{
    const char *p = tpath(name);
    if (mkdir(p, 0700) != 0 && errno != EEXIST) return NULL;
    return p;
}

/* Makes $UPRES_BIN absolute for the scripts; 0 when the CLI exists. */
static int export_bin(void)
{
    char real[4096];
    if (!realpath(test_upres_bin(), real) || access(real, X_OK) != 0) return -1;
    return setenv("UPRES_BIN", real, 1);
}

/* 1 once `pid` is gone or a zombie, polling for up to 2 s; 0 if it lives.
 * (A killed orphan stays a zombie until init reaps it, which some container
 * inits never do; kill(pid, 0) succeeds on zombies.) */
static int pid_dead(long pid)
{
    for (int i = 0; i < 200; i++) {
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return 1;
        char p[64], buf[512];
        snprintf(p, sizeof p, "/proc/%ld/stat", pid);
        FILE *f = fopen(p, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            char *rp = strrchr(buf, ')');
            if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X')) return 1;
        }
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    return 0;
}

/* Reads up to `max` pids (one per line) from path into pids; returns count. */
static int read_pids(const char *path, long *pids, int max)
{
    size_t n = 0;
    char *s = (char *)test_read_file(path, &n);
    if (!s) return 0;
    char *t = realloc(s, n + 1);
    if (!t) {
        free(s);
        return 0;
    }
    t[n] = 0;
    int k = 0;
    char *p = t;
    while (k < max && *p) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p) break;
        if (v > 0) pids[k++] = v;
        p = e;
        while (*p == '\n' || *p == ' ') p++;
    }
    free(t);
    return k;
}

static upres_external_desc ext_desc(const char *cmd, const char *parent)
{
    upres_external_desc d = upres_external_desc_defaults();
    d.command = cmd;
    d.temp_dir = parent;
    d.timeout_s = 60;
    return d;
}

/* Runs `body` as a tool with template "'<tool>' %i %o" under `parent`.
 * Returns the status; the detail is copied to detail (cap bytes). */
static int run_script(const char *toolname, const char *body, const char *parent, double timeout,
                      char *detail, size_t cap, upres_image **out)
{
    const char *tool = tpath(toolname);
    if (write_tool(tool, body) != 0) return 999;
    char q[4096], cmd[4200];
    tq(q, sizeof q, tool);
    snprintf(cmd, sizeof cmd, "%s %%i %%o", q);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *in = tu_random_image(7, 5, 3, UPRES_U8, 11);
    upres_external_desc d = ext_desc(cmd, parent);
    d.timeout_s = timeout;
    upres_image *res = NULL;
    int st = ctx && in ? upres_external_run(ctx, in, &d, &res, NULL) : 998;
    if (detail) snprintf(detail, cap, "%s", ctx ? upres_ctx_error(ctx) : "");
    if (out)
        *out = res;
    else
        upres_image_free(res);
    upres_image_free(in);
    upres_ctx_free(ctx);
    return st;
}

/* 1 when s has no byte below 0x20 and none 0x7f. */
static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

/* ---- template splitting and substitution -------------------------------- */

/* Splits tmpl and compares with the expected NULL-terminated list. Returns
 * NULL when equal, else a message (static storage). */
static const char *split_is(const char *tmpl, const char *const *want)
{
    static char msg[512];
    char **v = NULL;
    size_t n = 0;
    int st = upres__exec_split(NULL, tmpl, &v, &n);
    if (st != UPRES_OK) {
        snprintf(msg, sizeof msg, "split(%s) -> %d", tmpl, st);
        return msg;
    }
    size_t k = 0;
    while (want[k]) k++;
    const char *bad = NULL;
    if (n != k) {
        snprintf(msg, sizeof msg, "split(%s): %zu args, want %zu", tmpl, n, k);
        bad = msg;
    }
    for (size_t i = 0; !bad && i < k; i++)
        if (strcmp(v[i], want[i]) != 0) {
            snprintf(msg, sizeof msg, "split(%s)[%zu] = [%s], want [%s]", tmpl, i, v[i], want[i]);
            bad = msg;
        }
    if (!bad && v[n] != NULL) bad = "array not NULL-terminated";
    upres__exec_free_argv(v);
    return bad;
}

TEST(exec_split_words)
{
    const char *r;
    r = split_is("tool -i %i -o %o", (const char *const[]){"tool", "-i", "%i", "-o", "%o", NULL});
    CHECKF(!r, "%s", r);
    r = split_is("  \t tool\t\t a  \n b  ", (const char *const[]){"tool", "a", "b", NULL});
    CHECKF(!r, "%s", r);
    r = split_is("t 'a b' \"c d\" e\\ f", (const char *const[]){"t", "a b", "c d", "e f", NULL});
    CHECKF(!r, "%s", r);
    /* Quotes glue to neighbouring text; '' and "" are empty arguments. */
    r = split_is("t --name='a b' x\"y z\"w '' \"\"",
                 (const char *const[]){"t", "--name=a b", "xy zw", "", "", NULL});
    CHECKF(!r, "%s", r);
    /* Single quotes: everything literal, backslashes included. */
    r = split_is("t 'a\\b' '$(x) `y` \"q\" ; |'",
                 (const char *const[]){"t", "a\\b", "$(x) `y` \"q\" ; |", NULL});
    CHECKF(!r, "%s", r);
    /* Double quotes: \" and \\ are escapes, any other backslash stays. */
    r = split_is("t \"a\\\"b\" \"c\\\\d\" \"e\\nf\" \"'s'\"",
                 (const char *const[]){"t", "a\"b", "c\\d", "e\\nf", "'s'", NULL});
    CHECKF(!r, "%s", r);
    /* Outside quotes a backslash takes any next character. */
    r = split_is("t \\' \\\" \\\\ \\a", (const char *const[]){"t", "'", "\"", "\\", "a", NULL});
    CHECKF(!r, "%s", r);
    /* The shell idiom for a ' inside single quotes works. */
    r = split_is("t 'it'\\''s'", (const char *const[]){"t", "it's", NULL});
    CHECKF(!r, "%s", r);
    /* No shell syntax: ; | > $ stay plain arguments. */
    r = split_is("t a;b | c > d $HOME", (const char *const[]){"t", "a;b", "|", "c", ">", "d", "$HOME", NULL});
    CHECKF(!r, "%s", r);
}

TEST(exec_split_errors)
{
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    struct {
        const char *tmpl, *detail;
    } cases[] = {
        {"tool 'abc %i %o", "unterminated ' (single quote) at character 6"},
        {"tool \"abc %i %o", "unterminated \" (double quote) at character 6"},
        {"tool \"a\\\" %i %o", "unterminated \""},
        {"tool %i %o \\", "lone backslash"},
        {"", "empty"},
        {" \t \n ", "empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char **v = (char **)1;
        size_t n = 99;
        CHECK_EQ(upres__exec_split(ctx, cases[i].tmpl, &v, &n), UPRES_ERR_INVALID_ARG);
        CHECK(v == NULL);
        CHECK_EQ(n, 0);
        CHECKF(strstr(upres_ctx_error(ctx), cases[i].detail), "[%s]: detail '%s'", cases[i].tmpl,
               upres_ctx_error(ctx));
        upres__clear_error(ctx);
    }
    upres_ctx_free(ctx);
}

TEST(exec_subst)
{
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    char **t = NULL, **v = NULL;
    CHECK_OK(upres__exec_split(ctx, "p -x%ix %o 100%% %%i %i%o", &t, NULL));
    const char *in = "/tmp/a b/$(touch x)/%o\"'`;.png", *out = "/o %i";
    CHECK_OK(upres__exec_subst(ctx, t, in, out, &v));
    char want3[512], want6[512];
    snprintf(want3, sizeof want3, "-x%sx", in);
    snprintf(want6, sizeof want6, "%s%s", in, out);
    const char *want[] = {"p", want3, out, "100%", "%i", want6, NULL};
    for (int i = 0; want[i]; i++) CHECKF(v[i] && !strcmp(v[i], want[i]), "arg %d: [%s]", i, v[i]);
    CHECK(v[6] == NULL);
    upres__exec_free_argv(v);
    upres__exec_free_argv(t);

    struct {
        const char *tmpl, *detail;
    } bad[] = {
        {"p -i %i", "must contain %o"},
        {"p -o %o", "must contain %i"},
        {"p x", "must contain %i and %o"},
        {"p %i %o %q", "unknown %q in argument 3"},
        {"p %i %o 50%", "argument 3 ends with a lone '%'"},
        {"p%i %o", "program name may not contain %i"},
        {"'' %i %o", "program name is empty"},
        {"p %i %o %\x01", "byte 0x01"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        upres__clear_error(ctx);
        CHECK_OK(upres__exec_split(ctx, bad[i].tmpl, &t, NULL));
        v = (char **)1;
        int st = upres__exec_subst(ctx, t, "/i", "/o", &v);
        upres__exec_free_argv(t);
        CHECK_EQ(st, UPRES_ERR_INVALID_ARG);
        CHECK(v == NULL);
        CHECKF(strstr(upres_ctx_error(ctx), bad[i].detail), "[%s]: detail '%s'", bad[i].tmpl,
               upres_ctx_error(ctx));
    }
    upres_ctx_free(ctx);
}

/* ---- stderr tail and folder removal ------------------------------------- */

TEST(exec_tail_format)
{
    upres__exec_ring r;
    char out[512];
    memset(&r, 0, sizeof r);
    CHECK_EQ(upres__exec_tail(&r, out, sizeof out, 400), 0);
    CHECK_EQ(out[0], 0);

    const char *s = "  first\n\nsec\tond \r\n\x1b[31mred\x7f\n";
    upres__exec_ring_put(&r, s, strlen(s));
    upres__exec_tail(&r, out, sizeof out, 400);
    CHECKF(!strcmp(out, "first | sec ond | ?[31mred?"), "[%s]", out);

    /* UTF-8 is kept; invalid bytes and C1 controls (U+009B) are not. */
    memset(&r, 0, sizeof r);
    s = "caf\xc3\xa9 \xe2\x82\xac \xff \xc2\x9b \xc0\xaf \xed\xa0\x80 \xf0\x9f\x98\x80";
    upres__exec_ring_put(&r, s, strlen(s));
    upres__exec_tail(&r, out, sizeof out, 400);
    CHECKF(!strcmp(out, "caf\xc3\xa9 \xe2\x82\xac ? ?? ?? ??? \xf0\x9f\x98\x80"), "[%s]", out);

    /* Wrap-around: 100 lines of 60 bytes overflow the ring; the oldest
     * lines and the cut one are gone, the newest ones kept in order. */
    memset(&r, 0, sizeof r);
    for (int i = 1; i <= 100; i++) {
        char line[64];
        snprintf(line, sizeof line, "line %03d %048d\n", i, 0);
        upres__exec_ring_put(&r, line, strlen(line));
    }
    CHECK_EQ(r.total, 100 * 58);
    size_t n = upres__exec_tail(&r, out, sizeof out, 200);
    CHECK(n <= 200);
    CHECK_EQ(n, strlen(out));
    CHECKF(!strncmp(out, "...line 098 ", 12), "[%s]", out); /* cut where a line starts */
    CHECK(strstr(out, "line 100 "));
    CHECK(!strstr(out, "line 096 "));
    char big[2 * UPRES__EXEC_RING];
    n = upres__exec_tail(&r, big, sizeof big, sizeof big);
    CHECK(!strstr(big, "line 029 "));           /* beyond the ring */
    CHECK(strncmp(big, "line 030 ", 9) != 0);   /* partly overwritten: dropped */
    CHECKF(!strncmp(big, "line 031 ", 9), "[%.20s]", big);

    /* Truncation never starts inside a UTF-8 sequence. */
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 300; i++) upres__exec_ring_put(&r, "\xc3\xa9", 2);
    n = upres__exec_tail(&r, out, sizeof out, 100);
    CHECK(n <= 100 && n >= 90);
    CHECK(!strncmp(out, "...\xc3\xa9", 5));

    /* A single put larger than the ring keeps its end. */
    memset(&r, 0, sizeof r);
    char huge[UPRES__EXEC_RING + 100];
    memset(huge, 'a', sizeof huge);
    memcpy(huge + sizeof huge - 4, "\nEND", 4);
    upres__exec_ring_put(&r, huge, sizeof huge);
    CHECK_EQ(r.total, sizeof huge);
    upres__exec_tail(&r, out, sizeof out, 400);
    CHECKF(!strcmp(out, "END"), "[%s]", out);
}

TEST(exec_rmtree)
{
    const char *root = make_dir("tree");
    CHECK(root);
    const char *outside = tpath("outside");
    CHECK(mkdir(outside, 0700) == 0);
    CHECK(test_write_file(test_tmp("outside/keep"), "x", 1) == 0);
    char p[4096];
    snprintf(p, sizeof p, "%s/a", root);
    CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/a/b", root);
    CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/a/b/f", root);
    CHECK(test_write_file(p, "x", 1) == 0);
    snprintf(p, sizeof p, "%s/link_dir", root);
    CHECK(symlink(outside, p) == 0);
    snprintf(p, sizeof p, "%s/a/link_file", root);
    CHECK(symlink(test_tmp("outside/keep"), p) == 0);
    snprintf(p, sizeof p, "%s/locked", root);
    CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/locked/f", root);
    CHECK(test_write_file(p, "x", 1) == 0);
    snprintf(p, sizeof p, "%s/locked", root);
    CHECK(chmod(p, 0) == 0);
    snprintf(p, sizeof p, "%s/ro", root);
    CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/ro/f", root);
    CHECK(test_write_file(p, "x", 1) == 0);
    snprintf(p, sizeof p, "%s/ro", root);
    CHECK(chmod(p, 0500) == 0);
    /* Enough files that readdir() meets entries removed under it. */
    for (int i = 0; i < 300; i++) {
        snprintf(p, sizeof p, "%s/a/file%03d", root, i);
        CHECK(test_write_file(p, "x", 1) == 0);
    }
    CHECK_EQ(upres__exec_rmtree(root), 0);
    CHECK(!test_file_exists(root));
    CHECK(test_file_exists(test_tmp("outside/keep")));
    CHECK_EQ(test_dir_count(outside), 1);
    CHECK_EQ(upres__exec_rmtree(root), 0); /* already gone */
}

/* ---- running tools ------------------------------------------------------ */

/* The argument-recording tool: records "$0" "$@" NUL-separated, the mode of
 * its input's folder, then copies the -i file to the -o file. */
static const char *REC_TOOL =
    "printf '%s\\0' \"$0\" \"$@\" > \"$UPRES_T_REC\"\n"
    "in=; out=\n"
    "while [ $# -gt 0 ]; do\n"
    "  case \"$1\" in -i) in=$2; shift;; -o) out=$2; shift;; esac\n"
    "  shift\n"
    "done\n"
    "stat -c %a \"$(dirname \"$in\")\" > \"$UPRES_T_REC.mode\"\n"
    "cp \"$in\" \"$out\"\n";

/* 0 when no file named "pwned" or "pwned2" is in any of the folders. */
static int pwned_anywhere(const char *const *dirs)
{
    for (int i = 0; dirs[i]; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/pwned", dirs[i]);
        if (test_file_exists(p)) return 1;
        snprintf(p, sizeof p, "%s/pwned2", dirs[i]);
        if (test_file_exists(p)) return 1;
    }
    return 0;
}

TEST(exec_argv_exact)
{
    const char *tooldir = tpath("tool dir ' \" ; $(touch pwned) `touch pwned2` \\ %o x");
    CHECK(mkdir(tooldir, 0700) == 0);
    char tool[4096];
    snprintf(tool, sizeof tool, "%s/fake tool;$(touch pwned)`touch pwned2`'q\".sh", tooldir);
    CHECK(write_tool(tool, REC_TOOL) == 0);
    const char *parent = make_dir("tmp dir $(touch pwned) %o 'q' \"d\" `touch pwned2`");
    CHECK(parent);
    char rec[4096];
    snprintf(rec, sizeof rec, "%s", test_tmp("record"));
    CHECK(setenv("UPRES_T_REC", rec, 1) == 0);

    char q[4096], cmd[8192];
    tq(q, sizeof q, tool);
    snprintf(cmd, sizeof cmd,
             "%s --name='a b' \"x y\" -x%%ix -i %%i 'lit $(touch pwned) `touch pwned2`' -o %%o "
             "\\; 50%%%% \"\" \"q\\\"\\\\z\" ; touch pwned",
             q);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *in = tu_random_image(13, 9, 3, UPRES_U8, 5), *out = NULL;
    CHECK(ctx && in);
    upres_external_desc d = ext_desc(cmd, parent);
    int resized = -1;
    int st = upres_external_run(ctx, in, &d, &out, &resized);
    CHECKF(st == UPRES_OK, "%d: %s", st, upres_ctx_error(ctx));
    CHECK(out);
    CHECK_EQ(resized, 0);
    CHECK(tu_same_pixels(in, out));

    size_t n = 0;
    char *r = (char *)test_read_file(rec, &n);
    CHECK(r);
    const char *f[32];
    int nf = 0;
    for (size_t i = 0; i < n && nf < 32; i += strlen(r + i) + 1) f[nf++] = r + i;
    CHECKF(n > 0 && r[n - 1] == 0, "record not NUL-terminated");
    CHECK_EQ(nf, 16);
    char rparent[4096];
    CHECK(realpath(parent, rparent));
    const char *in_path = f[5];
    size_t pl = strlen(rparent);
    CHECKF(!strncmp(in_path, rparent, pl) && !strncmp(in_path + pl, "/upres-ext-", 11),
           "input path [%s] not under [%s]", in_path, rparent);
    const char *slash = strrchr(in_path, '/');
    CHECK(slash && !strcmp(slash, "/input.png"));
    char want_out[4096], want_x[4096];
    snprintf(want_out, sizeof want_out, "%.*s/output.png", (int)(slash - in_path), in_path);
    snprintf(want_x, sizeof want_x, "-x%sx", in_path);
    const char *want[] = {tool, "--name=a b", "x y", want_x, "-i", in_path,
                          "lit $(touch pwned) `touch pwned2`", "-o", want_out, ";", "50%", "",
                          "q\"\\z", ";", "touch", "pwned"};
    for (int i = 0; i < nf; i++) CHECKF(!strcmp(f[i], want[i]), "arg %d: [%s] want [%s]", i, f[i], want[i]);

    /* The private folder was 0700 and is gone now, with everything else. */
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s.mode", rec);
    char *mode = (char *)test_read_file(mpath, &n);
    CHECK(mode);
    CHECKF(n >= 3 && !strncmp(mode, "700\n", 4), "mode [%.*s]", (int)n, mode);
    free(mode);
    char dirp[4096];
    snprintf(dirp, sizeof dirp, "%.*s", (int)(slash - in_path), in_path);
    CHECK(!test_file_exists(dirp));
    CHECK_EQ(test_dir_count(parent), 0);
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd));
    const char *dirs[] = {cwd, test_tmpdir(), tooldir, parent, NULL};
    CHECK(!pwned_anywhere(dirs));
    free(r);
    upres_image_free(in);
    upres_image_free(out);
    upres_ctx_free(ctx);
}

TEST(exec_copy_u16_rgba)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    upres_image *in = tu_random_image(6, 4, 4, UPRES_U16, 9), *out = NULL;
    CHECK(in);
    const char *tool = tpath("copy");
    CHECK(write_tool(tool, "cp \"$1\" \"$2\"") == 0);
    char q[4096], cmd[4200];
    tq(q, sizeof q, tool);
    snprintf(cmd, sizeof cmd, "%s %%i %%o", q);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_external_desc d = ext_desc(cmd, parent);
    int st = upres_external_run(ctx, in, &d, &out, NULL);
    CHECKF(st == UPRES_OK, "%d: %s", st, upres_ctx_error(ctx));
    CHECK(tu_same_pixels(in, out));
    CHECK_EQ(test_dir_count(parent), 0);
    upres_image_free(in);
    upres_image_free(out);
    upres_ctx_free(ctx);
}

TEST(exec_resize_to_wanted)
{
    if (export_bin() != 0) SKIP("upres CLI not built");
    const char *parent = make_dir("parent");
    CHECK(parent);
    const char *tool = tpath("x2");
    CHECK(write_tool(tool, "exec \"$UPRES_BIN\" resize \"$1\" \"$2\" --scale 2") == 0);
    char q[4096], cmd[4200];
    tq(q, sizeof q, tool);
    snprintf(cmd, sizeof cmd, "%s %%i %%o", q);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *in = tu_random_image(13, 9, 3, UPRES_U8, 3), *out = NULL;
    CHECK(ctx && in);
    upres_external_desc d = ext_desc(cmd, parent);
    d.width = 39;
    d.height = 27;
    d.filter = UPRES_FILTER_BILINEAR;
    int resized = 0;
    int st = upres_external_run(ctx, in, &d, &out, &resized);
    CHECKF(st == UPRES_OK, "%d: %s", st, upres_ctx_error(ctx));
    CHECK_EQ(out->width, 39);
    CHECK_EQ(out->height, 27);
    CHECK_EQ(out->channels, 3);
    CHECK_EQ(out->depth, UPRES_U8);
    CHECK_EQ(resized, 1);
    upres_image_free(out);
    out = NULL;
    /* The tool's own size when it is what was asked for: no resize. */
    d.width = 26;
    d.height = 18;
    resized = -1;
    CHECK_OK(upres_external_run(ctx, in, &d, &out, &resized));
    CHECK_EQ(out->width, 26);
    CHECK_EQ(resized, 0);
    upres_image_free(out);
    out = NULL;
    /* Keep the tool's size. */
    d.width = d.height = 0;
    CHECK_OK(upres_external_run(ctx, in, &d, &out, NULL));
    CHECK_EQ(out->width, 26);
    CHECK_EQ(out->height, 18);
    upres_image_free(out);
    out = NULL;
    /* Only one side given is an error, found before anything runs. */
    d.width = 5;
    CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_INVALID_ARG);
    CHECK(out == NULL);
    CHECK_EQ(test_dir_count(parent), 0);
    upres_image_free(in);
    upres_ctx_free(ctx);
}

TEST(exec_output_other_format)
{
    if (export_bin() != 0) SKIP("upres CLI not built");
    const char *parent = make_dir("parent");
    CHECK(parent);
    /* A JPEG written at the .png path: decoded by its magic bytes. */
    upres_image *out = NULL;
    char detail[1024];
    int st = run_script("tojpeg",
                        "\"$UPRES_BIN\" convert \"$1\" \"$2.jpg\" >/dev/null && mv \"$2.jpg\" \"$2\"",
                        parent, 60, detail, sizeof detail, &out);
    CHECKF(st == UPRES_OK, "%d: %s", st, detail);
    CHECK_EQ(out->width, 7);
    CHECK_EQ(out->height, 5);
    CHECK_EQ(out->channels, 3);
    upres_image_free(out);
    CHECK_EQ(test_dir_count(parent), 0);
}

/* Hanging tool: two sleeps, one in the background; both pids recorded. */
static const char *HANG_TOOL = "sleep 100 & echo $! > \"$UPRES_T_PID\"\n"
                               "sleep 100 & echo $! >> \"$UPRES_T_PID\"\n"
                               "echo started >&2\n"
                               "wait\n";

TEST(exec_timeout_kills_group)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    const char *pidf = tpath("pids");
    CHECK(setenv("UPRES_T_PID", pidf, 1) == 0);
    char detail[1024];
    double t0 = now_s();
    int st = run_script("hang", HANG_TOOL, parent, 1.0, detail, sizeof detail, NULL);
    double dt = now_s() - t0;
    fprintf(stderr, "    measured: timeout 1 s -> returned after %.3f s\n", dt);
    CHECK_EQ(st, UPRES_ERR_TIMEOUT);
    CHECKF(strstr(detail, "did not finish within 1 s; killed"), "[%s]", detail);
    CHECKF(strstr(detail, "started"), "stderr tail missing: [%s]", detail);
    CHECK(dt >= 0.95 && dt < 5.0);
    long pids[4];
    CHECK_EQ(read_pids(pidf, pids, 4), 2);
    for (int i = 0; i < 2; i++) CHECKF(pid_dead(pids[i]), "pid %ld still alive", pids[i]);
    CHECK_EQ(test_dir_count(parent), 0);
}

TEST(exec_timeout_stderr_flood)
{
    /* A tool that writes to stderr without pause must not keep the call
     * from noticing its timeout. */
    const char *parent = make_dir("parent");
    CHECK(parent);
    char detail[1024];
    double t0 = now_s();
    int st = run_script("flood", "exec yes 'spam spam'  >&2", parent, 1.0, detail, sizeof detail,
                        NULL);
    double dt = now_s() - t0;
    fprintf(stderr, "    measured: stderr flood, timeout 1 s -> returned after %.3f s\n", dt);
    CHECK_EQ(st, UPRES_ERR_TIMEOUT);
    CHECK(dt < 5.0);
    CHECKF(strstr(detail, "; killed: ...spam spam | spam spam | "), "[%s]", detail);
    CHECK(strlen(detail) < 600);
    CHECK_EQ(test_dir_count(parent), 0);
}

TEST(exec_timeout_term_ignored)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    const char *pidf = tpath("pids");
    CHECK(setenv("UPRES_T_PID", pidf, 1) == 0);
    char body[1024];
    snprintf(body, sizeof body, "trap '' TERM\n%s", HANG_TOOL);
    char detail[1024];
    double t0 = now_s();
    int st = run_script("stubborn", body, parent, 0.5, detail, sizeof detail, NULL);
    double dt = now_s() - t0;
    fprintf(stderr, "    measured: timeout 0.5 s, SIGTERM ignored -> returned after %.3f s\n", dt);
    CHECK_EQ(st, UPRES_ERR_TIMEOUT);
    CHECKF(strstr(detail, "within 0.5 s; killed"), "[%s]", detail);
    /* 0.5 s, then 2 s of grace before SIGKILL. */
    CHECK(dt >= 2.4 && dt < 5.0);
    long pids[4];
    CHECK_EQ(read_pids(pidf, pids, 4), 2);
    for (int i = 0; i < 2; i++) CHECKF(pid_dead(pids[i]), "pid %ld still alive", pids[i]);
    CHECK_EQ(test_dir_count(parent), 0);
}

TEST(exec_background_child_no_hang)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    const char *pidf = tpath("pids");
    CHECK(setenv("UPRES_T_PID", pidf, 1) == 0);
    /* The tool succeeds but leaves a child holding stderr: it is killed with
     * the group and the call returns at once. */
    char detail[1024];
    upres_image *out = NULL;
    double t0 = now_s();
    int st = run_script("bg", "sleep 100 & echo $! > \"$UPRES_T_PID\"\ncp \"$1\" \"$2\"", parent,
                        60, detail, sizeof detail, &out);
    double dt = now_s() - t0;
    CHECKF(st == UPRES_OK, "%d: %s", st, detail);
    CHECK(dt < 2.0);
    long pid;
    CHECK_EQ(read_pids(pidf, &pid, 1), 1);
    CHECK(pid_dead(pid));
    upres_image_free(out);
    CHECK_EQ(test_dir_count(parent), 0);

    /* A child that left the group (setsid) cannot be killed by us, but its
     * open stderr must not stall the call either. */
    if (access("/usr/bin/setsid", X_OK) != 0 && access("/bin/setsid", X_OK) != 0)
        SKIP("no setsid program");
    t0 = now_s();
    st = run_script("escape", "setsid sleep 30 & echo $! > \"$UPRES_T_PID\"\ncp \"$1\" \"$2\"",
                    parent, 60, detail, sizeof detail, &out);
    dt = now_s() - t0;
    if (read_pids(pidf, &pid, 1) == 1) kill((pid_t)pid, SIGKILL);
    CHECKF(st == UPRES_OK, "%d: %s", st, detail);
    fprintf(stderr, "    measured: tool with escaped child holding stderr -> %.3f s\n", dt);
    CHECK(dt < 2.0);
    upres_image_free(out);
    CHECK_EQ(test_dir_count(parent), 0);
}

TEST(exec_fail_stderr_tail)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    char detail[1024];
    int st = run_script("fail",
                        "i=1\nwhile [ $i -le 50 ]; do echo \"error line $i.\" >&2; i=$((i+1)); done\n"
                        "exit 3",
                        parent, 60, detail, sizeof detail, NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECKF(strstr(detail, "' exited with status 3: "), "[%s]", detail);
    CHECKF(strstr(detail, "error line 50."), "[%s]", detail);
    CHECKF(!strstr(detail, "error line 1."), "[%s]", detail);
    CHECK(strstr(detail, "error line 49. | error line 50."));
    CHECK(printable(detail));
    CHECK(strlen(detail) < 700);
    CHECK_EQ(test_dir_count(parent), 0);

    /* Control characters from the tool never reach the detail. */
    st = run_script("esc", "printf 'a\\033[31mred\\tx\\r\\nlast\\001line\\n' >&2\nexit 1", parent,
                    60, detail, sizeof detail, NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECKF(strstr(detail, "status 1: a?[31mred x | last?line"), "[%s]", detail);
    CHECK(printable(detail));

    /* Death by signal. */
    st = run_script("sig", "echo dying >&2\nkill -USR1 $$", parent, 60, detail, sizeof detail,
                    NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECKF(strstr(detail, "was killed by signal") && strstr(detail, "(SIGUSR1): dying"), "[%s]",
           detail);
    CHECK_EQ(test_dir_count(parent), 0);
}

TEST(exec_missing_program)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *in = tu_random_image(4, 4, 1, UPRES_U8, 1), *out = (upres_image *)1;
    CHECK(ctx && in);
    upres_external_desc d = ext_desc("upres-no-such-tool-4711 -i %i -o %o", parent);
    CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_EXTERNAL);
    CHECK(out == NULL);
    CHECKF(!strcmp(upres_ctx_error(ctx),
                   "cannot run 'upres-no-such-tool-4711': No such file or directory"),
           "[%s]", upres_ctx_error(ctx));
    d.command = "/nonexistent/dir/tool %i %o";
    CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_EXTERNAL);
    CHECKF(strstr(upres_ctx_error(ctx), "cannot run '/nonexistent/dir/tool': No such file"),
           "[%s]", upres_ctx_error(ctx));
    /* Exists but is not executable. */
    const char *noexec = tpath("noexec");
    CHECK(test_write_file(noexec, "#!/bin/sh\n", 10) == 0);
    char q[4096], cmd[4200];
    tq(q, sizeof q, noexec);
    snprintf(cmd, sizeof cmd, "%s %%i %%o", q);
    d.command = cmd;
    CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_EXTERNAL);
    CHECKF(strstr(upres_ctx_error(ctx), "Permission denied"), "[%s]", upres_ctx_error(ctx));
    CHECK_EQ(test_dir_count(parent), 0);
    upres_image_free(in);
    upres_ctx_free(ctx);
}

TEST(exec_bad_output)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    char detail[1024];
    int st = run_script("none", "exit 0", parent, 60, detail, sizeof detail, NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECKF(strstr(detail, "wrote no output file") && tu_one_line(strcat(detail, "\n")), "[%s]",
           detail);
    st = run_script("none2", "echo 'model not found' >&2", parent, 60, detail, sizeof detail, NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECKF(strstr(detail, "wrote no output file: model not found"), "[%s]", detail);
    st = run_script("garbage", "echo garbage > \"$2\"", parent, 60, detail, sizeof detail, NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECKF(strstr(detail, "output is not a readable image: "), "[%s]", detail);
    st = run_script("empty", ": > \"$2\"", parent, 60, detail, sizeof detail, NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECKF(strstr(detail, "output is not a readable image"), "[%s]", detail);
    /* A truncated PNG. */
    st = run_script("cut", "head -c 60 \"$1\" > \"$2\"", parent, 60, detail, sizeof detail, NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECKF(strstr(detail, "output is not a readable image"), "[%s]", detail);
    /* A FIFO would block a plain open(); a folder is not an image either. */
    double t0 = now_s();
    st = run_script("fifo", "mkfifo \"$2\"", parent, 60, detail, sizeof detail, NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECK(now_s() - t0 < 5);
    CHECKF(strstr(detail, "output is not a regular file"), "[%s]", detail);
    st = run_script("dir", "mkdir \"$2\"", parent, 60, detail, sizeof detail, NULL);
    CHECK_EQ(st, UPRES_ERR_EXTERNAL);
    CHECK_EQ(test_dir_count(parent), 0);
}

TEST(exec_template_errors)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    const char *rec = tpath("ran");
    const char *tool = tpath("t");
    CHECK(write_tool(tool, "touch \"$UPRES_T_REC\"; cp \"$1\" \"$2\"") == 0);
    CHECK(setenv("UPRES_T_REC", rec, 1) == 0);
    char q[4096];
    tq(q, sizeof q, tool);
    struct {
        const char *suffix, *detail;
    } cases[] = {
        {" 'abc %i %o", "unterminated '"},
        {" \"abc %i %o", "unterminated \""},
        {" %i", "must contain %o"},
        {" %o", "must contain %i"},
        {" %i %o %q", "unknown %q"},
        {" %i %o \\", "lone backslash"},
    };
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *in = tu_random_image(4, 4, 3, UPRES_U8, 1), *out = NULL;
    CHECK(ctx && in);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "%s%s", q, cases[i].suffix);
        upres_external_desc d = ext_desc(cmd, parent);
        CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_INVALID_ARG);
        CHECK(out == NULL);
        CHECKF(strstr(upres_ctx_error(ctx), cases[i].detail), "[%s]: %s", cmd, upres_ctx_error(ctx));
    }
    const char *empties[] = {"", "   "};
    for (int i = 0; i < 2; i++) {
        upres_external_desc d = ext_desc(empties[i], parent);
        CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_INVALID_ARG);
        CHECKF(strstr(upres_ctx_error(ctx), "empty"), "%s", upres_ctx_error(ctx));
    }
    upres_external_desc d = ext_desc(NULL, parent);
    CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_INVALID_ARG);
    d.command = "x %i %o";
    CHECK_EQ(upres_external_run(ctx, NULL, &d, &out, NULL), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_external_run(ctx, in, NULL, &out, NULL), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_external_run(ctx, in, &d, NULL, NULL), UPRES_ERR_INVALID_ARG);
    /* Nothing ran, nothing was created. */
    CHECK(!test_file_exists(rec));
    CHECK_EQ(test_dir_count(parent), 0);
    upres_image_free(in);
    upres_ctx_free(ctx);
}

typedef struct cancel_state {
    double t0;
    int calls, bad;
    uint64_t last_done;
} cancel_state;

static int cancel_cb(void *user, const char *what, uint64_t done, uint64_t total)
{
    cancel_state *s = user;
    s->calls++;
    if (strcmp(what, "external") != 0 || total != 30000 || done < s->last_done) s->bad++;
    s->last_done = done;
    return now_s() - s->t0 >= 0.3;
}

TEST(exec_cancel)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    const char *pidf = tpath("pids");
    CHECK(setenv("UPRES_T_PID", pidf, 1) == 0);
    const char *tool = tpath("hang");
    CHECK(write_tool(tool, HANG_TOOL) == 0);
    char q[4096], cmd[4200];
    tq(q, sizeof q, tool);
    snprintf(cmd, sizeof cmd, "%s %%i %%o", q);
    cancel_state s = {now_s(), 0, 0, 0};
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.progress = cancel_cb;
    cd.progress_user = &s;
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    upres_image *in = tu_random_image(8, 8, 3, UPRES_U8, 2), *out = NULL;
    CHECK(in);
    upres_external_desc d = ext_desc(cmd, parent);
    d.timeout_s = 30;
    s.t0 = now_s();
    int st = upres_external_run(ctx, in, &d, &out, NULL);
    double dt = now_s() - s.t0;
    fprintf(stderr, "    measured: cancel at 0.3 s -> returned after %.3f s, %d progress calls\n",
            dt, s.calls);
    CHECK_EQ(st, UPRES_ERR_CANCELLED);
    CHECK(out == NULL);
    CHECK(dt >= 0.3 && dt < 1.5);
    CHECK_EQ(s.bad, 0);
    CHECK(s.calls >= 2 && s.calls <= 8); /* about ten a second */
    CHECK(s.last_done >= 250);
    long pids[4];
    CHECK_EQ(read_pids(pidf, pids, 4), 2);
    for (int i = 0; i < 2; i++) CHECKF(pid_dead(pids[i]), "pid %ld still alive", pids[i]);
    CHECK_EQ(test_dir_count(parent), 0);
    upres_image_free(in);
    upres_ctx_free(ctx);
}

TEST(exec_tmpdir_env)
{
    const char *envtmp = make_dir("env tmp");
    CHECK(envtmp);
    CHECK(setenv("TMPDIR", envtmp, 1) == 0);
    const char *rec = tpath("rec");
    CHECK(setenv("UPRES_T_REC", rec, 1) == 0);
    const char *tool = tpath("t");
    CHECK(write_tool(tool, "printf '%s' \"$1\" > \"$UPRES_T_REC\"; cp \"$1\" \"$2\"") == 0);
    char q[4096], cmd[4200];
    tq(q, sizeof q, tool);
    snprintf(cmd, sizeof cmd, "%s %%i %%o", q);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *in = tu_random_image(4, 3, 2, UPRES_U8, 4), *out = NULL;
    upres_external_desc d = ext_desc(cmd, NULL);
    CHECK_OK(upres_external_run(ctx, in, &d, &out, NULL));
    CHECK(tu_same_pixels(in, out));
    char real[4096];
    CHECK(realpath(envtmp, real));
    char *got = (char *)test_read_file(rec, NULL);
    CHECK(got);
    CHECKF(!strncmp(got, real, strlen(real)), "[%s] not under [%s]", got, real);
    free(got);
    CHECK_EQ(test_dir_count(envtmp), 0);
    /* A relative temp_dir still yields absolute paths. */
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd));
    CHECK(chdir(test_tmpdir()) == 0);
    const char *rel = "rel tmp";
    CHECK(mkdir(rel, 0700) == 0);
    d.temp_dir = rel;
    upres_image_free(out);
    out = NULL;
    int st = upres_external_run(ctx, in, &d, &out, NULL);
    CHECK(chdir(cwd) == 0);
    CHECKF(st == UPRES_OK, "%s", upres_ctx_error(ctx));
    got = (char *)test_read_file(rec, NULL);
    CHECK(got && got[0] == '/');
    free(got);
    CHECK_EQ(test_dir_count(test_tmp("rel tmp")), 0);
    upres_image_free(out);
    out = NULL;
    /* A temp_dir that does not exist: an I/O error, nothing runs. */
    d.temp_dir = test_tmp("missing/sub");
    CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_IO);
    upres_image_free(in);
    upres_image_free(out);
    upres_ctx_free(ctx);
}

typedef struct thread_job {
    const char *cmd, *parent;
    int failures;
} thread_job;

static void *thread_run(void *arg)
{
    thread_job *j = arg;
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *in = tu_random_image(9, 7, 3, UPRES_U8, 77);
    for (int i = 0; i < 4; i++) {
        upres_image *out = NULL;
        upres_external_desc d = ext_desc(j->cmd, j->parent);
        if (!ctx || !in || upres_external_run(ctx, in, &d, &out, NULL) != UPRES_OK ||
            !tu_same_pixels(in, out))
            j->failures++;
        upres_image_free(out);
    }
    upres_image_free(in);
    upres_ctx_free(ctx);
    return NULL;
}

TEST(exec_threads)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    const char *tool = tpath("copy");
    CHECK(write_tool(tool, "cp \"$1\" \"$2\"") == 0);
    char q[4096], cmd[4200];
    tq(q, sizeof q, tool);
    snprintf(cmd, sizeof cmd, "%s %%i %%o", q);
    thread_job jobs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (thread_job){cmd, parent, 0};
        CHECK(pthread_create(&th[i], NULL, thread_run, &jobs[i]) == 0);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) CHECK_EQ(jobs[i].failures, 0);
    CHECK_EQ(test_dir_count(parent), 0);
}

/* Every way a run can end, one after another under one parent folder: it is
 * empty after each. */
static int cancel_fast(void *user, const char *what, uint64_t done, uint64_t total)
{
    (void)user;
    (void)what;
    (void)total;
    return done >= 200;
}

TEST(exec_parent_empty_all_cases)
{
    const char *parent = make_dir("parent");
    CHECK(parent);
    CHECK(setenv("UPRES_T_PID", test_tmp("pids"), 1) == 0);
    /* A link the tool leaves must be removed, not followed. */
    const char *canary = make_dir("canary");
    CHECK(canary && test_write_file(test_tmp("canary/keep"), "x", 1) == 0);
    CHECK(setenv("UPRES_T_CANARY", canary, 1) == 0);
    int have_bin = export_bin() == 0;
    struct {
        const char *body;
        double timeout;
        int want;
    } cases[] = {
        {"cp \"$1\" \"$2\"", 60, UPRES_OK},
        {"cp \"$1\" \"$2\"; mkdir -p \"$(dirname \"$2\")/sub/deeper\"; "
         "ln -s \"$UPRES_T_CANARY\" \"$(dirname \"$2\")/sub/link\"; "
         "chmod 0 \"$(dirname \"$2\")/sub\"",
         60, UPRES_OK},
        {"echo oops >&2; exit 2", 60, UPRES_ERR_EXTERNAL},
        {"exit 0", 60, UPRES_ERR_EXTERNAL},
        {"echo junk > \"$2\"", 60, UPRES_ERR_EXTERNAL},
        {"kill -KILL $$", 60, UPRES_ERR_EXTERNAL},
        {HANG_TOOL, 0.3, UPRES_ERR_TIMEOUT},
        {have_bin ? "\"$UPRES_BIN\" resize \"$1\" \"$2\" --scale 2" : "cp \"$1\" \"$2\"", 60,
         UPRES_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], detail[1024];
        snprintf(name, sizeof name, "tool%zu", i);
        int st = run_script(name, cases[i].body, parent, cases[i].timeout, detail, sizeof detail,
                            NULL);
        CHECKF(st == cases[i].want, "case %zu: %d, want %d: %s", i, st, cases[i].want, detail);
        CHECKF(test_dir_count(parent) == 0, "case %zu left %d entries", i, test_dir_count(parent));
        CHECK(test_file_exists(test_tmp("canary/keep")));
    }
    /* Missing program, template error, cancel. */
    upres_image *in = tu_random_image(5, 5, 3, UPRES_U8, 1), *out = NULL;
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(in && ctx);
    upres_external_desc d = ext_desc("upres-no-such-tool-4711 %i %o", parent);
    CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_EXTERNAL);
    CHECK_EQ(test_dir_count(parent), 0);
    d.command = "cp %i %q";
    CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(test_dir_count(parent), 0);
    upres_ctx_free(ctx);
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.progress = cancel_fast;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    const char *tool = tpath("hang");
    CHECK(write_tool(tool, HANG_TOOL) == 0);
    char q[4096], cmd[4200];
    tq(q, sizeof q, tool);
    snprintf(cmd, sizeof cmd, "%s %%i %%o", q);
    d.command = cmd;
    CHECK_EQ(upres_external_run(ctx, in, &d, &out, NULL), UPRES_ERR_CANCELLED);
    CHECK_EQ(test_dir_count(parent), 0);
    upres_image_free(in);
    upres_ctx_free(ctx);
}

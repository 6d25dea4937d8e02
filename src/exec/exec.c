/* External image tools: upres_external_run() runs a user's command template
 * (e.g. "realesrgan-ncnn-vulkan -i %i -o %o -s 4") on an image without ever
 * starting a shell. The template is split once into arguments and the file
 * paths are substituted inside arguments, so a path is always exactly one
 * argument whatever characters it holds.
 *
 * The tool runs in its own process group so that it and any helpers it starts
 * can be stopped together. The library installs no signal handlers and waits
 * only for its own child: the child's exit is first observed without reaping
 * it (waitid WNOWAIT), which keeps its pid, and so the group id, reserved
 * while the rest of the group is killed; only then is it reaped. */
/* realpath() is in POSIX's XSI part, which -D_POSIX_C_SOURCE alone hides. */
#define _XOPEN_SOURCE 700
#include "exec/exec_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Bytes of the tool's stderr tail put into an error detail. */
#define TAIL_MAX 400
/* Bytes of the program name quoted in an error detail. */
#define NAME_MAX_SHOWN 100
/* Grace between SIGTERM and SIGKILL after a timeout, in seconds. */
#define TERM_GRACE_S 2.0
/* Interval of progress calls and the longest wait between checks, in ms. */
#define TICK_MS 100

upres_external_desc upres_external_desc_defaults(void)
{
    upres_external_desc d;
    memset(&d, 0, sizeof d);
    d.command = NULL;
    d.timeout_s = 600.0;
    d.temp_dir = NULL;
    d.width = d.height = 0;
    d.filter = UPRES_FILTER_LANCZOS3;
    return d;
}

/* ------------------------------------------------------------------------ */
/* Template                                                                  */

void upres__exec_free_argv(char **argv)
{
    if (!argv) return;
    for (char **p = argv; *p; p++) free(*p);
    free(argv);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Appends a copy of cur[0..len) to the growing NULL-terminated array *v of
 * *n entries (*cap slots). Returns 0, or -1 when out of memory. */
static int push_arg(char ***v, size_t *n, size_t *cap, const char *cur, size_t len)
{
    if (*n + 2 > *cap) {
        size_t ncap = *cap ? *cap * 2 : 8, bytes;
        if (!upres__mul_size(ncap, sizeof(char *), &bytes)) return -1;
        char **nv = realloc(*v, bytes);
        if (!nv) return -1;
        *v = nv;
        *cap = ncap;
    }
    char *s = malloc(len + 1);
    if (!s) return -1;
    memcpy(s, cur, len);
    s[len] = 0;
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
    return 0;
}

int upres__exec_split(upres_ctx *ctx, const char *tmpl, char ***argv_out, size_t *argc_out)
{
    if (argv_out) *argv_out = NULL;
    if (argc_out) *argc_out = 0;
    if (!tmpl || !argv_out)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "external command: no command given");
    size_t len = strlen(tmpl), cl = 0, n = 0, cap = 0, bytes;
    /* An argument is never longer than the template. */
    if (!upres__add_size(len, 1, &bytes)) return UPRES_ERR_OVERFLOW;
    char *cur = malloc(bytes);
    if (!cur) return upres__fail(ctx, UPRES_ERR_NOMEM, "external command: out of memory");
    char **v = NULL;
    int st = UPRES_OK, in_arg = 0;
    for (size_t i = 0; i < len && st == UPRES_OK;) {
        char c = tmpl[i];
        if (is_blank(c)) {
            if (in_arg && push_arg(&v, &n, &cap, cur, cl) != 0) st = UPRES_ERR_NOMEM;
            in_arg = 0;
            cl = 0;
            i++;
            continue;
        }
        in_arg = 1;
        if (c == '\'') {
            const char *end = strchr(tmpl + i + 1, '\'');
            if (!end) {
                st = upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                 "external command: unterminated ' (single quote) at "
                                 "character %zu",
                                 i + 1);
                break;
            }
            size_t k = (size_t)(end - (tmpl + i + 1));
            memcpy(cur + cl, tmpl + i + 1, k);
            cl += k;
            i += k + 2;
        } else if (c == '"') {
            size_t j = i + 1;
            while (j < len && tmpl[j] != '"') {
                if (tmpl[j] == '\\' && j + 1 < len && (tmpl[j + 1] == '"' || tmpl[j + 1] == '\\')) {
                    cur[cl++] = tmpl[j + 1];
                    j += 2;
                } else {
                    cur[cl++] = tmpl[j++];
                }
            }
            if (j >= len) {
                st = upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                 "external command: unterminated \" (double quote) at "
                                 "character %zu",
                                 i + 1);
                break;
            }
            i = j + 1;
        } else if (c == '\\') {
            if (i + 1 >= len) {
                st = upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                 "external command: ends with a lone backslash");
                break;
            }
            cur[cl++] = tmpl[i + 1];
            i += 2;
        } else {
            cur[cl++] = c;
            i++;
        }
    }
    if (st == UPRES_OK && in_arg && push_arg(&v, &n, &cap, cur, cl) != 0) st = UPRES_ERR_NOMEM;
    free(cur);
    if (st == UPRES_ERR_NOMEM) upres__fail(ctx, st, "external command: out of memory");
    if (st == UPRES_OK && n == 0)
        st = upres__fail(ctx, UPRES_ERR_INVALID_ARG, "external command: the template is empty");
    if (st != UPRES_OK) {
        upres__exec_free_argv(v);
        return st;
    }
    *argv_out = v;
    if (argc_out) *argc_out = n;
    return UPRES_OK;
}

int upres__exec_subst(upres_ctx *ctx, char *const *targv, const char *in, const char *out,
                      char ***argv_out)
{
    if (argv_out) *argv_out = NULL;
    if (!targv || !targv[0] || !in || !out || !argv_out)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "external command: no command given");
    if (!targv[0][0])
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "external command: the program name is empty");
    size_t lin = strlen(in), lout = strlen(out);
    int seen_i = 0, seen_o = 0;
    /* Validate everything first so no half-built array has to be undone for
     * a template error. */
    for (size_t a = 0; targv[a]; a++) {
        for (const char *p = targv[a]; *p; p++) {
            if (*p != '%') continue;
            unsigned char x = (unsigned char)p[1];
            if (x == 'i' || x == 'o') {
                if (a == 0)
                    return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                       "external command: the program name may not contain %%%c",
                                       x);
                if (x == 'i') seen_i = 1;
                else seen_o = 1;
            } else if (x == 0) {
                return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                   "external command: argument %zu ends with a lone '%%' "
                                   "(write %%%% for a literal '%%')",
                                   a);
            } else if (x != '%') {
                if (x > 0x20 && x < 0x7f)
                    return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                       "external command: unknown %%%c in argument %zu (only "
                                       "%%i, %%o and %%%% are known)",
                                       x, a);
                return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                   "external command: unknown '%%' followed by byte 0x%02x in "
                                   "argument %zu (only %%i, %%o and %%%% are known)",
                                   x, a);
            }
            p++;
        }
    }
    if (!seen_i || !seen_o)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "external command: the template must contain %s (%%i is the input "
                           "file, %%o the output file)",
                           !seen_i && !seen_o ? "%i and %o" : !seen_i ? "%i" : "%o");
    size_t n = 0;
    while (targv[n]) n++;
    size_t bytes;
    if (!upres__add_size(n, 1, &bytes) || !upres__mul_size(bytes, sizeof(char *), &bytes))
        return UPRES_ERR_OVERFLOW;
    char **v = calloc(1, bytes);
    if (!v) return upres__fail(ctx, UPRES_ERR_NOMEM, "external command: out of memory");
    for (size_t a = 0; a < n; a++) {
        size_t len = 0;
        int ok = 1;
        for (const char *p = targv[a]; *p && ok; p++) {
            size_t add = 1;
            if (*p == '%') {
                p++;
                add = *p == 'i' ? lin : *p == 'o' ? lout : 1;
            }
            ok = upres__add_size(len, add, &len);
        }
        if (!ok || !upres__add_size(len, 1, &len) || !(v[a] = malloc(len))) {
            upres__exec_free_argv(v);
            return upres__fail(ctx, ok ? UPRES_ERR_NOMEM : UPRES_ERR_OVERFLOW,
                               "external command: out of memory");
        }
        char *d = v[a];
        for (const char *p = targv[a]; *p; p++) {
            if (*p != '%') {
                *d++ = *p;
                continue;
            }
            p++;
            if (*p == 'i') {
                memcpy(d, in, lin);
                d += lin;
            } else if (*p == 'o') {
                memcpy(d, out, lout);
                d += lout;
            } else {
                *d++ = '%';
            }
        }
        *d = 0;
    }
    *argv_out = v;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Stderr tail                                                               */

void upres__exec_ring_put(upres__exec_ring *r, const void *data, size_t n)
{
    const unsigned char *p = data;
    if (n > UPRES__EXEC_RING) {
        /* Only the last bytes can survive; keep `total` exact. */
        r->total += n - UPRES__EXEC_RING;
        p += n - UPRES__EXEC_RING;
        n = UPRES__EXEC_RING;
    }
    for (size_t i = 0; i < n; i++) r->buf[(r->total + i) % UPRES__EXEC_RING] = p[i];
    r->total += n;
}

/* Length of the valid UTF-8 sequence at s[0..n) that encodes a printable
 * (non-C1) code point, or 0 when s does not start with one. s[0] >= 0x80. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    if (cp < 0xa0) return 0; /* C1 controls, e.g. U+009B (CSI) */
    return len;
}

/* Appends the printable form of s[0..n) to d (which has room: at most one
 * byte out per byte in) and returns the bytes written. */
static size_t sanitize(char *d, const unsigned char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x80) {
            d[o++] = c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
            i++;
            continue;
        }
        size_t k = utf8_len(s + i, n - i);
        if (k == 0) {
            d[o++] = '?';
            i++;
        } else {
            memcpy(d + o, s + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}

size_t upres__exec_tail(const upres__exec_ring *r, char *out, size_t cap, size_t max)
{
    if (!out || cap == 0) return 0;
    out[0] = 0;
    if (!r || cap < 8) return 0;
    unsigned char lin[UPRES__EXEC_RING];
    size_t n = r->total < UPRES__EXEC_RING ? (size_t)r->total : UPRES__EXEC_RING;
    size_t start = (size_t)((r->total - n) % UPRES__EXEC_RING);
    for (size_t i = 0; i < n; i++) lin[i] = r->buf[(start + i) % UPRES__EXEC_RING];
    size_t pos = 0;
    int cut = r->total > UPRES__EXEC_RING;
    if (cut) {
        /* The first line lost its beginning; drop it unless it is all there is. */
        for (size_t i = 0; i < n; i++)
            if (lin[i] == '\n' || lin[i] == '\r') {
                pos = i + 1;
                break;
            }
    }
    /* Every line of L >= 1 bytes consumed L+1 input bytes and yields at most
     * L+3 output bytes, so twice the input is enough. */
    char joined[2 * UPRES__EXEC_RING + 8];
    size_t jl = 0;
    while (pos < n) {
        size_t e = pos;
        while (e < n && lin[e] != '\n' && lin[e] != '\r') e++;
        size_t b = pos, f = e;
        while (b < f && (lin[b] == ' ' || lin[b] == '\t')) b++;
        while (f > b && (lin[f - 1] == ' ' || lin[f - 1] == '\t')) f--;
        if (f > b) {
            if (jl) {
                memcpy(joined + jl, " | ", 3);
                jl += 3;
            }
            jl += sanitize(joined + jl, lin + b, f - b);
        }
        pos = e + 1;
    }
    if (max > cap - 1) max = cap - 1;
    if (max < 4) max = 4;
    size_t from = 0;
    if (jl > max) {
        from = jl - (max - 3);
        /* Start at a line when one begins soon, else on a character, never
         * inside a UTF-8 sequence. */
        for (size_t k = from; k + 3 <= jl && k < from + 80; k++)
            if (!memcmp(joined + k, " | ", 3)) {
                from = k + 3;
                break;
            }
        while (from < jl && ((unsigned char)joined[from] & 0xc0) == 0x80) from++;
        memcpy(out, "...", 3);
        memcpy(out + 3, joined + from, jl - from);
        out[3 + jl - from] = 0;
        return 3 + jl - from;
    }
    memcpy(out, joined, jl);
    out[jl] = 0;
    return jl;
}

/* ------------------------------------------------------------------------ */
/* Folder removal                                                            */

/* Removes `name` in dirfd; see upres__exec_rmtree(). Returns 0 when gone. */
static int rm_at(int dirfd, const char *name, int depth)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? 0 : -1;
    if (depth < 128) {
        /* A tool may leave a folder it made unreadable or read-only; it is
         * ours (same user), so open it up to empty it. */
        if ((st.st_mode & 0700) != 0700) fchmodat(dirfd, name, 0700, 0);
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d && fd >= 0) close(fd);
        if (d) {
            /* Removing entries while reading may make readdir() skip some;
             * pass again until a pass removes nothing. */
            int removed;
            do {
                removed = 0;
                rewinddir(d);
                struct dirent *e;
                while ((e = readdir(d))) {
                    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                    if (rm_at(fd, e->d_name, depth + 1) == 0) removed = 1;
                }
            } while (removed);
            closedir(d);
        }
    }
    return unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

int upres__exec_rmtree(const char *path)
{
    if (!path || !*path) return -1;
    return rm_at(AT_FDCWD, path, 0);
}

/* ------------------------------------------------------------------------ */
/* Running the tool                                                          */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* "SIGKILL" etc. for the signals a tool commonly dies of; NULL otherwise.
 * (strsignal() is not thread-safe.) */
static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    default: return NULL;
    }
}

/* strerror() is not thread-safe; this is (XSI strerror_r). */
static void errno_text(int err, char *buf, size_t cap)
{
    if (strerror_r(err, buf, cap) != 0) snprintf(buf, cap, "error %d", err);
}

/* Moves fd to a descriptor >= 3 with FD_CLOEXEC set, so the dup2() file
 * actions onto 0..2 never meet a descriptor that is already in place (dup2
 * onto itself would keep its close-on-exec flag). Returns the new fd or -1;
 * fd is closed either way. */
static int high_cloexec(int fd)
{
    if (fd < 0) return -1;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3), err = errno;
    close(fd);
    errno = err;
    return nfd;
}

/* How the tool ended. */
typedef struct run_result {
    int exited;           /* 1: exit status in `code`; 0: killed by signal `code` */
    int code;
    int timed_out;        /* the timeout passed and we killed it */
    int cancelled;        /* the progress callback asked to stop */
    int lost;             /* someone else reaped it (errno in `code`) */
    upres__exec_ring err; /* its stderr tail */
} run_result;

/* Reads what the non-blocking pipe holds into the ring, at most 256 KiB per
 * call so a tool that writes without pause cannot keep us from checking the
 * clock. Returns 1 at end of file or on an error, 0 otherwise. */
static int drain(int fd, upres__exec_ring *ring)
{
    char buf[4096];
    for (int k = 0; k < 64; k++) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
            upres__exec_ring_put(ring, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return 1;
    }
    return 0;
}

/* Starts argv in a new process group with stdin/stdout on /dev/null and
 * stderr into a pipe, and supervises it until it ends (see the header for
 * timeout and cancel). `name` is the sanitised program name for details.
 * Fills *res; returns UPRES_OK when the tool ran (whatever its outcome),
 * else UPRES_ERR_EXTERNAL (could not start) or another error. */
static int run_tool(upres_ctx *ctx, char *const *argv, const char *name, double timeout_s,
                    run_result *res)
{
    memset(res, 0, sizeof *res);
    char etext[128];
    /* O_CLOEXEC at open() is atomic; the pipe needs fcntl() afterwards
     * (pipe2() is not POSIX 2008), leaving a short window in which another
     * thread's fork could inherit it. That child would hold our stderr pipe,
     * which is harmless: the end of the tool is detected by waitid(), never by
     * end of file. */
    int devnull = high_cloexec(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull < 0) {
        errno_text(errno, etext, sizeof etext);
        return upres__fail(ctx, UPRES_ERR_EXTERNAL, "cannot open /dev/null: %s", etext);
    }
    int p[2];
    if (pipe(p) != 0) {
        errno_text(errno, etext, sizeof etext);
        close(devnull);
        return upres__fail(ctx, UPRES_ERR_EXTERNAL, "cannot create a pipe: %s", etext);
    }
    int rd = high_cloexec(p[0]), wr = high_cloexec(p[1]);
    if (rd < 0 || wr < 0 || fcntl(rd, F_SETFL, fcntl(rd, F_GETFL) | O_NONBLOCK) != 0) {
        errno_text(errno, etext, sizeof etext);
        if (rd >= 0) close(rd);
        if (wr >= 0) close(wr);
        close(devnull);
        return upres__fail(ctx, UPRES_ERR_EXTERNAL, "cannot create a pipe: %s", etext);
    }

    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    int e = posix_spawnattr_init(&attr);
    if (e == 0) {
        e = posix_spawn_file_actions_init(&fa);
        if (e != 0) posix_spawnattr_destroy(&attr);
    }
    if (e != 0) {
        close(rd);
        close(wr);
        close(devnull);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "cannot prepare to run '%s'", name);
    }
    /* Dispositions the host ignores (SIGPIPE, SIGINT in a background job...)
     * would be inherited through exec; the tool starts with every signal at
     * its default and none blocked, as if run from a fresh shell. */
    sigset_t all, none;
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    sigemptyset(&none);
    if (e == 0) e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                        POSIX_SPAWN_SETSIGMASK);
    if (e == 0) e = posix_spawnattr_setpgroup(&attr, 0);
    if (e == 0) e = posix_spawnattr_setsigdefault(&attr, &all);
    if (e == 0) e = posix_spawnattr_setsigmask(&attr, &none);
    if (e == 0) e = posix_spawn_file_actions_adddup2(&fa, devnull, 0);
    if (e == 0) e = posix_spawn_file_actions_adddup2(&fa, devnull, 1);
    if (e == 0) e = posix_spawn_file_actions_adddup2(&fa, wr, 2);
    pid_t pid = -1;
    if (e == 0) {
        e = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
        if (e != 0) {
            errno_text(e, etext, sizeof etext);
            e = upres__fail(ctx, UPRES_ERR_EXTERNAL, "cannot run '%s': %s", name, etext);
        }
    } else {
        e = upres__fail(ctx, UPRES_ERR_EXTERNAL, "cannot prepare to run '%s'", name);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(wr);
    close(devnull);
    if (e != UPRES_OK) {
        close(rd);
        return e;
    }

    /* posix_spawn returns once the child has exec'ed, by which time it leads
     * its own group: kill(-pid) reaches exactly the tool and its helpers. */
    enum { RUNNING, TERMINATING, KILLED } phase = RUNNING;
    double t0 = now_s(), next_tick = t0, kill_at = 0;
    uint64_t total_ms = 0;
    if (timeout_s > 0) total_ms = timeout_s >= 1e12 ? (uint64_t)1e15 : (uint64_t)(timeout_s * 1000.0);
    int backoff_ms = 1;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
            if (errno == EINTR) continue;
            /* ECHILD: the host reaped it (SIGCHLD ignored, or a waitpid(-1)).
             * The group id may be free again, so it must not be signalled. */
            res->lost = 1;
            res->code = errno;
            break;
        }
        if (si.si_pid == pid) break;
        double t = now_s();
        if (phase == RUNNING && t >= next_tick) {
            uint64_t el = (uint64_t)((t - t0) * 1000.0);
            if (upres__progress(ctx, "external", el, total_ms) != UPRES_OK) {
                kill(-pid, SIGKILL);
                res->cancelled = 1;
                phase = KILLED;
            }
            next_tick += TICK_MS / 1000.0;
            if (next_tick <= t) next_tick = t + TICK_MS / 1000.0;
        }
        if (phase == RUNNING && timeout_s > 0 && t - t0 >= timeout_s) {
            kill(-pid, SIGTERM);
            res->timed_out = 1;
            phase = TERMINATING;
            kill_at = t + TERM_GRACE_S;
        }
        if (phase == TERMINATING && t >= kill_at) {
            kill(-pid, SIGKILL);
            phase = KILLED;
        }
        double until = phase == RUNNING ? next_tick : phase == TERMINATING ? kill_at : t + 0.1;
        if (phase == RUNNING && timeout_s > 0 && t0 + timeout_s < until) until = t0 + timeout_s;
        double wait = (until - t) * 1000.0;
        int ms = wait <= 1.0 ? 1 : wait >= TICK_MS ? TICK_MS : (int)ceil(wait);
        if (rd < 0) {
            /* After end of file the tool is usually about to exit: look
             * again soon, backing off to the normal tick. */
            if (ms > backoff_ms) ms = backoff_ms;
            if (backoff_ms < TICK_MS) backoff_ms *= 2;
            struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        } else {
            struct pollfd pfd = {rd, POLLIN, 0};
            int pr = poll(&pfd, 1, ms);
            if (pr > 0 && drain(rd, &res->err)) {
                close(rd);
                rd = -1;
                backoff_ms = 1;
            }
        }
    }
    if (!res->lost) {
        /* The tool is a zombie, so its pid (= the group id) cannot have been
         * reused: kill whatever it left running, then reap it. */
        kill(-pid, SIGKILL);
        int status = 0;
        pid_t w;
        do {
            w = waitpid(pid, &status, 0);
        } while (w < 0 && errno == EINTR);
        if (w == pid && WIFEXITED(status)) {
            res->exited = 1;
            res->code = WEXITSTATUS(status);
        } else if (w == pid && WIFSIGNALED(status)) {
            res->code = WTERMSIG(status);
        } else {
            res->lost = 1;
            res->code = w < 0 ? errno : 0;
        }
    }
    /* What is in the pipe now is all the tool wrote. A helper that escaped
     * the group may still hold the write end; the read end is non-blocking,
     * so it cannot stall us. */
    if (rd >= 0) {
        drain(rd, &res->err);
        close(rd);
    }
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* The public call                                                           */

/* Printable one-line form of s for a detail, at most `max` bytes: its end
 * (for a path, the file name tells the most), "?" when nothing is left. */
static void one_line(const char *s, char *out, size_t cap, size_t max)
{
    upres__exec_ring *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(out, cap, "?");
        return;
    }
    upres__exec_ring_put(r, s, strlen(s));
    if (upres__exec_tail(r, out, cap, max) == 0) snprintf(out, cap, "?");
    free(r);
}

/* Copies ctx's current detail (one line, at most cap-1 bytes) into buf and
 * clears it, so a wrapping detail can be recorded (upres__fail keeps only the
 * first one). */
static void take_detail(upres_ctx *ctx, char *buf, size_t cap)
{
    const char *d = ctx ? upres_ctx_error(ctx) : "";
    one_line(d && *d ? d : "no detail", buf, cap, cap - 1);
    upres__clear_error(ctx);
}

/* Records `status` with "<msg>[: <stderr tail>]" as the detail. */
static int fail_with_tail(upres_ctx *ctx, int status, const char *msg, const run_result *rr)
{
    char tail[TAIL_MAX + 8];
    size_t n = upres__exec_tail(&rr->err, tail, sizeof tail, TAIL_MAX);
    upres__clear_error(ctx);
    if (n) return upres__fail(ctx, status, "%s: %s", msg, tail);
    return upres__fail(ctx, status, "%s", msg);
}

/* Path of the folder under which the private folder is made. */
static const char *temp_parent(const upres_external_desc *desc)
{
    if (desc->temp_dir && *desc->temp_dir) return desc->temp_dir;
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* Interprets how the tool ended, then loads its output into *img.
 * Returns UPRES_OK or the failure (detail recorded). */
static int collect(upres_ctx *ctx, const run_result *rr, const char *name, double timeout_s,
                   const char *outpath, upres_image **img)
{
    char msg[640];
    if (rr->cancelled) {
        upres__clear_error(ctx);
        return upres__fail(ctx, UPRES_ERR_CANCELLED, "'%s' was stopped: cancelled", name);
    }
    if (rr->timed_out) {
        snprintf(msg, sizeof msg, "'%s' did not finish within %g s; killed", name, timeout_s);
        return fail_with_tail(ctx, UPRES_ERR_TIMEOUT, msg, rr);
    }
    if (rr->lost) {
        char e[128];
        errno_text(rr->code, e, sizeof e);
        snprintf(msg, sizeof msg,
                 "'%s' ended but its exit status was collected elsewhere (is SIGCHLD ignored?): %s",
                 name, e);
        return fail_with_tail(ctx, UPRES_ERR_EXTERNAL, msg, rr);
    }
    if (!rr->exited) {
        const char *sn = signal_name(rr->code);
        if (sn)
            snprintf(msg, sizeof msg, "'%s' was killed by signal %d (%s)", name, rr->code, sn);
        else
            snprintf(msg, sizeof msg, "'%s' was killed by signal %d", name, rr->code);
        return fail_with_tail(ctx, UPRES_ERR_EXTERNAL, msg, rr);
    }
    if (rr->code != 0) {
        snprintf(msg, sizeof msg, "'%s' exited with status %d", name, rr->code);
        return fail_with_tail(ctx, UPRES_ERR_EXTERNAL, msg, rr);
    }
    struct stat st;
    if (stat(outpath, &st) != 0) {
        snprintf(msg, sizeof msg, "'%s' wrote no output file", name);
        return fail_with_tail(ctx, UPRES_ERR_EXTERNAL, msg, rr);
    }
    /* Opening a FIFO or a device the tool left there could block forever. */
    if (!S_ISREG(st.st_mode)) {
        snprintf(msg, sizeof msg, "'%s' output is not a regular file", name);
        return fail_with_tail(ctx, UPRES_ERR_EXTERNAL, msg, rr);
    }
    int s = upres_load(ctx, outpath, NULL, img, NULL);
    if (s == UPRES_OK) return UPRES_OK;
    char why[256];
    take_detail(ctx, why, sizeof why);
    /* Our own limits refusing a valid result are not the tool's fault. */
    if (s == UPRES_ERR_LIMIT || s == UPRES_ERR_NOMEM || s == UPRES_ERR_OVERFLOW) {
        snprintf(msg, sizeof msg, "'%s' output: %s", name, why);
        return upres__fail(ctx, s, "%s", msg);
    }
    snprintf(msg, sizeof msg, "'%s' output is not a readable image: %s", name, why);
    return fail_with_tail(ctx, UPRES_ERR_EXTERNAL, msg, rr);
}

int upres_external_run(upres_ctx *ctx, const upres_image *in, const upres_external_desc *desc,
                       upres_image **out, int *resized)
{
    upres__clear_error(ctx);
    if (out) *out = NULL;
    if (resized) *resized = 0;
    if (!in || !desc || !out)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "external: missing image, desc or output");
    if (!desc->command)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "external command: no command given");
    if (isnan(desc->timeout_s))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "external: timeout is not a number");
    if ((unsigned)desc->filter >= UPRES_FILTER_COUNT_)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "external: unknown filter %d",
                           (int)desc->filter);
    if ((desc->width == 0) != (desc->height == 0))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "external: give both width and height, or neither");

    /* Template errors are reported before anything is created. */
    char **targv = NULL, **argv = NULL;
    int st = upres__exec_split(ctx, desc->command, &targv, NULL);
    if (st != UPRES_OK) return st;
    st = upres__exec_subst(ctx, targv, "/in", "/out", &argv);
    upres__exec_free_argv(argv);
    argv = NULL;
    if (st != UPRES_OK) {
        upres__exec_free_argv(targv);
        return st;
    }
    char name[NAME_MAX_SHOWN + 8];
    one_line(targv[0], name, sizeof name, NAME_MAX_SHOWN);

    const char *parent = temp_parent(desc);
    size_t plen = strlen(parent), cap;
    char etext[128];
    if (!upres__add_size(plen, sizeof "/upres-ext-XXXXXX", &cap)) {
        upres__exec_free_argv(targv);
        return UPRES_ERR_OVERFLOW;
    }
    char *tmpl = malloc(cap), *dir = NULL, *inpath = NULL, *outpath = NULL;
    if (!tmpl) {
        upres__exec_free_argv(targv);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "external: out of memory");
    }
    snprintf(tmpl, cap, "%s/upres-ext-XXXXXX", parent);
    if (!mkdtemp(tmpl)) {
        errno_text(errno, etext, sizeof etext);
        char shown[TAIL_MAX + 8];
        one_line(parent, shown, sizeof shown, TAIL_MAX);
        st = upres__fail(ctx, UPRES_ERR_IO, "external: cannot create a folder in '%s': %s", shown,
                         etext);
        free(tmpl);
        upres__exec_free_argv(targv);
        return st;
    }
    /* From here on the folder exists and every path ends at `done`. */
    upres_image *img = NULL;
    run_result *rr = NULL;
    /* mkdtemp gives 0700 already; be explicit in case of an odd libc. */
    chmod(tmpl, 0700);
    /* Absolute paths: the tool may run anywhere, and an absolute path can
     * never be mistaken for an option (it starts with '/'). */
    dir = realpath(tmpl, NULL);
    if (!dir) {
        errno_text(errno, etext, sizeof etext);
        char shown[TAIL_MAX + 8];
        one_line(tmpl, shown, sizeof shown, TAIL_MAX);
        st = upres__fail(ctx, UPRES_ERR_IO, "external: cannot resolve '%s': %s", shown, etext);
        goto done;
    }
    size_t dlen = strlen(dir);
    if (!upres__add_size(dlen, sizeof "/output.png", &cap)) {
        st = UPRES_ERR_OVERFLOW;
        goto done;
    }
    inpath = malloc(cap);
    outpath = malloc(cap);
    rr = malloc(sizeof *rr);
    if (!inpath || !outpath || !rr) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "external: out of memory");
        goto done;
    }
    snprintf(inpath, cap, "%s/input.png", dir);
    snprintf(outpath, cap, "%s/output.png", dir);

    upres_encode_desc ed = upres_encode_desc_defaults();
    ed.format = UPRES_FORMAT_PNG;
    ed.png_compression = 1; /* a scratch file: speed matters, size does not */
    ed.bit_depth = 0;       /* 16-bit stays 16-bit */
    st = upres_save(ctx, in, inpath, &ed);
    if (st != UPRES_OK) {
        char why[512];
        take_detail(ctx, why, sizeof why);
        st = upres__fail(ctx, st, "external: writing the tool's input: %s", why);
        goto done;
    }
    st = upres__exec_subst(ctx, targv, inpath, outpath, &argv);
    if (st != UPRES_OK) goto done;
    st = run_tool(ctx, argv, name, desc->timeout_s, rr);
    if (st != UPRES_OK) goto done;
    st = collect(ctx, rr, name, desc->timeout_s, outpath, &img);

done:
    /* Free the disk space before the (possibly large) resize. */
    upres__exec_rmtree(dir ? dir : tmpl);
    upres__exec_free_argv(argv);
    upres__exec_free_argv(targv);
    free(rr);
    free(outpath);
    free(inpath);
    free(dir);
    free(tmpl);
    if (st != UPRES_OK) {
        upres_image_free(img);
        return st;
    }
    if (desc->width && (img->width != desc->width || img->height != desc->height)) {
        upres_resize_desc rd = upres_resize_desc_defaults();
        rd.width = desc->width;
        rd.height = desc->height;
        rd.filter = desc->filter;
        upres_image *sized = NULL;
        st = upres_resize(ctx, img, &rd, &sized);
        upres_image_free(img);
        if (st != UPRES_OK) return st;
        img = sized;
        if (resized) *resized = 1;
    }
    *out = img;
    return UPRES_OK;
}

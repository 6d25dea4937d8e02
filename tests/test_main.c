/* Test runner: forks a child per test (crash/hang isolation), prints one line
 * per test and the closing "N passed, N failed, N skipped" line.
 * Usage: upres_tests [substring...]  (runs tests whose name contains any). */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 1024
#define TEST_TIMEOUT_S 300

static struct {
    const char *name, *file;
    test_fn fn;
} tests[MAX_TESTS];
static int ntests;
static int cur_failed, cur_skipped;
static char tmpdir[4096];
static char root_tmp[4096];

void test_register(const char *name, test_fn fn, const char *file)
{
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        tests[ntests].file = file;
        ntests++;
    }
}

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "    %s:%d: check failed: %s\n", file, line, msg);
    cur_failed = 1;
}

void test_skip(const char *reason)
{
    fprintf(stderr, "    skipped: %s\n", reason);
    cur_skipped = 1;
}

int test_failed(void) { return cur_failed; }

const char *test_tmpdir(void) { return tmpdir; }

const char *test_tmp(const char *name)
{
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

const char *test_fixture(const char *rel)
{
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ & 7];
    snprintf(b, sizeof bufs[0], "tests/fixtures/%s", rel);
    return b;
}

const char *test_shared(const char *rel)
{
    static char bufs[8][4096];
    static int slot;
    const char *base = getenv("UPRES_SHARED");
    if (!base || !*base) base = "../shared";
    char *b = bufs[slot++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
    return access(b, R_OK) == 0 ? b : NULL;
}

const char *test_upres_bin(void)
{
    const char *b = getenv("UPRES_BIN");
    return b && *b ? b : "build/upres";
}

unsigned char *test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        unsigned char *nb = realloc(buf, cap *= 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        } else
            buf = nb;
    }
    fclose(f);
    if (buf && size) *size = n;
    return buf;
}

int test_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, size, f);
    return (fclose(f) == 0 && w == size) ? 0 : -1;
}

int test_file_exists(const char *path) { return access(path, F_OK) == 0; }

int test_dir_count(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int test_run(char *const argv[], int timeout_s, char *out, size_t out_cap, char *err,
             size_t err_cap)
{
    int po[2], pe[2];
    if (pipe(po) || pipe(pe)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    int open_fds = 2, timed_out = 0;
    double deadline = now_s() + timeout_s;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    char sink[4096];
    while (open_fds > 0) {
        int ms = (int)((deadline - now_s()) * 1000);
        if (ms <= 0) {
            timed_out = 1;
            break;
        }
        if (poll(fds, 2, ms) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char *buf = i == 0 ? out : err;
            size_t cap = i == 0 ? out_cap : err_cap, *n = i == 0 ? &no : &ne;
            ssize_t r;
            if (buf && *n + 1 < cap)
                r = read(fds[i].fd, buf + *n, cap - 1 - *n);
            else
                r = read(fds[i].fd, sink, sizeof sink);
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (buf && *n + 1 < cap)
                *n += (size_t)r;
        }
    }
    if (out && out_cap) out[no] = 0;
    if (err && err_cap) err[ne] = 0;
    int status = 0;
    if (timed_out) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        for (int i = 0; i < 2; i++)
            if (fds[i].fd >= 0) close(fds[i].fd);
        return -1;
    }
    /* Pipes closed; the child may still be running (e.g. it closed stdout). */
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0) return -1;
        if (now_s() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char p[4096];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                rm_rf(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

static int matches(const char *name, int argc, char **argv)
{
    if (argc <= 1) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *base = getenv("TMPDIR");
    snprintf(root_tmp, sizeof root_tmp, "%s/upres-tests-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(root_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    int passed = 0, failed = 0, skipped = 0;
    double t0 = now_s();
    for (int i = 0; i < ntests; i++) {
        if (!matches(tests[i].name, argc, argv)) continue;
        snprintf(tmpdir, sizeof tmpdir, "%s/%s", root_tmp, tests[i].name);
        mkdir(tmpdir, 0700);
        double ts = now_s();
        fflush(stdout);
        fflush(stderr);
        int res; /* 0 pass, 1 fail, 2 skip */
        char why[128] = "";
        pid_t pid = fork();
        if (pid == 0) {
            alarm(TEST_TIMEOUT_S);
            cur_failed = cur_skipped = 0;
            tests[i].fn();
            fflush(stderr);
            /* exit(), not _exit(): LeakSanitizer checks at exit in asan builds. */
            exit(cur_failed ? 1 : cur_skipped ? 2 : 0);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid) {
            res = 1;
            snprintf(why, sizeof why, " (could not fork)");
        } else if (WIFSIGNALED(status)) {
            res = 1;
            snprintf(why, sizeof why, " (killed by signal %d%s)", WTERMSIG(status),
                     WTERMSIG(status) == SIGALRM ? ": timeout" : "");
        } else {
            int code = WEXITSTATUS(status);
            res = code == 0 ? 0 : code == 2 ? 2 : 1;
            if (code != 0 && code != 1 && code != 2) snprintf(why, sizeof why, " (exit %d)", code);
        }
        const char *tag = res == 0 ? "ok  " : res == 2 ? "skip" : "FAIL";
        printf("%s %-44s %6.2fs%s\n", tag, tests[i].name, now_s() - ts, why);
        if (res == 0)
            passed++;
        else if (res == 2)
            skipped++;
        else
            failed++;
    }
    if (!getenv("UPRES_KEEP_TMP")) rm_rf(root_tmp);
    printf("\n(%.1fs)\n%d passed, %d failed, %d skipped\n", now_s() - t0, passed, failed, skipped);
    return failed ? 1 : 0;
}

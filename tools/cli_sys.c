/* Questions about the machine asked before long jobs: free disk space,
 * available memory, and a `**`-aware file pattern expansion. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int cli_free_bytes(const char *dir, uint64_t *out)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0) return 0;
    *out = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return 1;
}

uint64_t cli_proc_kb(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    size_t kl = strlen(key);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (!strncmp(line, key, kl) && line[kl] == ':' && sscanf(line + kl + 1, "%llu", &kb) == 1) {
            v = (uint64_t)kb * 1024u;
            break;
        }
    }
    fclose(f);
    return v;
}

uint64_t cli_peak_rss(void)
{
    uint64_t v = cli_proc_kb("/proc/self/status", "VmHWM");
    if (v) return v;
    struct rusage ru;
    /* Linux and the BSDs count ru_maxrss in KiB. */
    if (getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss > 0) return (uint64_t)ru.ru_maxrss * 1024u;
    return 0;
}

int cli_peak_rss_reset(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t w = write(fd, "5", 1);
    close(fd);
    return w == 1;
}

uint64_t cli_available_memory(void)
{
    /* MemAvailable counts reclaimable cache too, which is what a big
     * allocation can actually get. */
    uint64_t v = cli_proc_kb("/proc/meminfo", "MemAvailable");
    if (v) return v;
    long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

int cli_check_disk(const char *dir, uint64_t need, const char *what)
{
    uint64_t free_b;
    if (!cli_free_bytes(dir, &free_b)) return CLI_OK; /* unknown: let the write decide */
    if (need <= free_b) return CLI_OK;
    char d[512];
    return cli_fail("not enough disk space in '%s' for %s: Need ~%.1f MB, have %.1f MB free; "
                    "free some space or choose another output folder",
                    cli_clean(dir, d, sizeof d), what, need / 1048576.0, free_b / 1048576.0);
}

void cli_check_memory(const cli_global *g, uint64_t need, const char *what)
{
    uint64_t avail = cli_available_memory();
    cli_verbose(g, "memory estimate for %s: ~%.0f MB (available %.0f MB)", what,
                need / 1048576.0, avail / 1048576.0);
    if (avail && need > avail) {
        cli_progress_clear();
        fprintf(stderr, "upres: warning: %s needs ~%.0f MB of memory but only %.0f MB are "
                        "available; it may be slow or fail\n",
                what, need / 1048576.0, avail / 1048576.0);
    }
}

/* ---- patterns ------------------------------------------------------------ */

static int has_magic(const char *s)
{
    for (; *s; s++)
        if (*s == '*' || *s == '?' || *s == '[') return 1;
    return 0;
}

int cli_paths_add(cli_paths *l, const char *path)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **p = realloc(l->v, cap * sizeof *p);
        if (!p) return 0;
        l->v = p;
        l->cap = cap;
    }
    char *s = strdup(path);
    if (!s) return 0;
    l->v[l->n++] = s;
    return 1;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Joins dir and name ("." is dropped so results read as the user typed). */
static int join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = !strcmp(dir, ".") ? snprintf(out, cap, "%s", name)
            : dir[strlen(dir) - 1] == '/' ? snprintf(out, cap, "%s%s", dir, name)
                                          : snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

/* Matches components comp[i..n) below `dir`. Depth-limited so a deep tree or
 * a loop through bind mounts cannot run away. */
static int walk(cli_paths *l, const char *dir, char **comp, int i, int n, int depth)
{
    if (depth > 64) return 1;
    char path[4096];
    if (i == n) return 1;
    const char *c = comp[i];
    const int last = i == n - 1;
    if (!strcmp(c, "**")) {
        /* Zero folders, then each non-hidden subfolder (symlinks to folders
         * are not followed: they can form cycles). */
        if (!walk(l, dir, comp, i + 1, n, depth + 1)) return 0;
        DIR *d = opendir(dir);
        if (!d) return 1;
        struct dirent *e;
        int ok = 1;
        while (ok && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            struct stat sb;
            if (!join(path, sizeof path, dir, e->d_name) || lstat(path, &sb) != 0 ||
                !S_ISDIR(sb.st_mode))
                continue;
            ok = walk(l, path, comp, i, n, depth + 1);
        }
        closedir(d);
        return ok;
    }
    if (!has_magic(c)) {
        if (!join(path, sizeof path, dir, c)) return 1;
        if (last) {
            struct stat sb;
            return stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode) ? cli_paths_add(l, path) : 1;
        }
        return is_dir(path) ? walk(l, path, comp, i + 1, n, depth + 1) : 1;
    }
    DIR *d = opendir(dir);
    if (!d) return 1;
    struct dirent *e;
    int ok = 1;
    while (ok && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (fnmatch(c, e->d_name, FNM_PERIOD) != 0) continue;
        if (!join(path, sizeof path, dir, e->d_name)) continue;
        if (last) {
            struct stat sb;
            if (stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode)) ok = cli_paths_add(l, path);
        } else if (is_dir(path)) {
            ok = walk(l, path, comp, i + 1, n, depth + 1);
        }
    }
    closedir(d);
    return ok;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cli_expand_pattern(const char *pattern, cli_paths *out, char *root_out, size_t root_cap)
{
    size_t len = strlen(pattern);
    char *copy = malloc(len + 1);
    char **comp = malloc((len / 2 + 3) * sizeof *comp);
    if (!copy || !comp) {
        free(copy);
        free(comp);
        return 0;
    }
    memcpy(copy, pattern, len + 1);
    int n = 0;
    for (char *s = strtok(copy, "/"); s; s = strtok(NULL, "/"))
        if (strcmp(s, ".") != 0) comp[n++] = s;
    /* A trailing '**' means every file below. */
    static char star[] = "*";
    if (n > 0 && !strcmp(comp[n - 1], "**")) comp[n++] = star;
    /* The literal leading folders are the root of the walk. */
    char root[4096] = ".";
    int first = 0;
    if (pattern[0] == '/') strcpy(root, "/");
    while (first < n - 1 && !has_magic(comp[first])) {
        char next[4096];
        if (!join(next, sizeof next, root, comp[first])) break;
        strcpy(root, next);
        first++;
    }
    if (root_out) snprintf(root_out, root_cap, "%s", root);
    size_t before = out->n;
    int ok = n > 0 ? walk(out, root, comp, first, n, 0) : 1;
    free(copy);
    free(comp);
    if (!ok) return 0;
    if (out->n == before) return 1;
    qsort(out->v + before, out->n - before, sizeof *out->v, cmp_str);
    /* `**` can reach a file along two routes ("**" then "**"). */
    size_t w = before;
    for (size_t r = before; r < out->n; r++) {
        if (w > before && !strcmp(out->v[w - 1], out->v[r])) {
            free(out->v[r]);
            continue;
        }
        out->v[w++] = out->v[r];
    }
    out->n = w;
    return 1;
}

void cli_paths_free(cli_paths *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

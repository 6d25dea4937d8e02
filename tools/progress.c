/* The progress bar on stderr, fed by the context's progress callback, and
 * Ctrl-C handling (cancel at the next report so no partial file is left). */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAR_CELLS 30
#define SHOW_AFTER_S 0.5  /* short jobs never flash a bar */
#define REDRAW_EVERY_S 0.1

static struct {
    int enabled;
    int no_delay;    /* UPRES_FORCE_PROGRESS=1: draw at once (for tests) */
    double start, last_draw;
    int drawn_len;   /* characters on the line now; 0 = nothing drawn */
} bar;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

int cli_interrupted(void) { return interrupted != 0; }

void cli_progress_start(int enabled)
{
    const char *force = getenv("UPRES_FORCE_PROGRESS");
    bar.no_delay = force && *force == '1';
    bar.enabled = enabled || bar.no_delay;
    bar.start = cli_now();
    bar.last_draw = 0;
    bar.drawn_len = 0;
    /* One-shot: a second Ctrl-C gets the default action (terminate). */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    /* Batch systems stop jobs with SIGTERM: clean up the same way. */
    sigaction(SIGTERM, &sa, NULL);
}

void cli_progress_clear(void)
{
    if (bar.drawn_len > 0) {
        fprintf(stderr, "\r%*s\r", bar.drawn_len, "");
        fflush(stderr);
        bar.drawn_len = 0;
    }
}

/* Draws `line` (a buffer of `cap` bytes; n is snprintf's result) over the
 * current one. A shorter line is padded over the longer previous one
 * instead of clearing: less flicker. */
static void draw(const char *line, size_t cap, int n)
{
    if (n < 0) return;
    if (n >= (int)cap) n = (int)cap - 1;
    int pad = bar.drawn_len > n ? bar.drawn_len - n : 0;
    fprintf(stderr, "\r%.*s%*s", n, line, pad, "");
    fflush(stderr);
    bar.drawn_len = n + pad;
}

void cli_progress_status(const char *text, int likely_long)
{
    if (!bar.enabled) return;
    double now = cli_now();
    if (!bar.no_delay && !likely_long && now - bar.start < SHOW_AFTER_S) return;
    char line[128], clean[100];
    int n = snprintf(line, sizeof line, "%s ...", cli_clean(text, clean, sizeof clean));
    draw(line, sizeof line, n);
    bar.last_draw = now;
}

int cli_progress_cb(void *user, const char *what, uint64_t done, uint64_t total)
{
    (void)user;
    if (interrupted) return 1;
    /* The network engine reports each layer so Ctrl-C stops a long tile
     * quickly; the bar shows the enclosing operation (tiles) instead. */
    if (!bar.enabled || total == 0 || (what && !strcmp(what, "nn"))) return 0;
    double now = cli_now();
    if (!bar.no_delay && now - bar.start < SHOW_AFTER_S) return 0;
    if (bar.drawn_len > 0 && now - bar.last_draw < REDRAW_EVERY_S && done < total) return 0;
    bar.last_draw = now;
    if (what && !strcmp(what, "external")) {
        /* An external tool reports nothing; show that it runs and its
         * time limit (done/total are elapsed/limit milliseconds). */
        char line[128];
        int n = snprintf(line, sizeof line, "external tool running  %.1fs (limit %.0fs)",
                         (double)done / 1000.0, (double)total / 1000.0);
        draw(line, sizeof line, n);
        return 0;
    }
    if (done > total) done = total;
    int cells = (int)((double)done / (double)total * BAR_CELLS + 0.5);
    char cellbuf[BAR_CELLS + 1];
    for (int i = 0; i < BAR_CELLS; i++) cellbuf[i] = i < cells ? '#' : '.';
    cellbuf[BAR_CELLS] = 0;
    char line[128];
    char name[24];
    int n = snprintf(line, sizeof line, "%-10s [%s] %3d%%  %.1fs",
                     cli_clean(what ? what : "working", name, sizeof name), cellbuf,
                     (int)((double)done * 100.0 / (double)total), now - bar.start);
    draw(line, sizeof line, n);
    return 0;
}

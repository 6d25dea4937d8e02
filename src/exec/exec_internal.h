/* Pieces of upres_external_run() (src/exec/exec.c) exposed for the unit tests
 * in tests/test_exec.c. Nothing else should call them. */
#ifndef UPRES_EXEC_INTERNAL_H
#define UPRES_EXEC_INTERNAL_H

#include "core/core_internal.h"

/*
 * Splits a command template into arguments, once, the way a POSIX shell
 * splits words but with no expansion of any kind:
 *  - arguments are separated by unquoted blanks (space, tab, CR, LF, VT, FF);
 *  - '...' is taken literally (a backslash inside is an ordinary character);
 *  - "..." groups; inside it a backslash escapes only '"' and '\' (any other
 *    backslash stays, as in the shell: "a\b" is a\b);
 *  - outside quotes a backslash takes the next character literally;
 *  - quotes may be glued to other text ("--name='a b'" is one argument
 *    --name=a b) and '' or "" alone make an empty argument.
 * '%' is not special here; upres__exec_subst() handles it afterwards, so
 * quoting does not protect a '%' (write %%).
 * On success *argv_out is a NULL-terminated array of malloc()ed strings (free
 * with upres__exec_free_argv()) and *argc_out (may be NULL) its length, >= 1.
 * An unterminated quote, a trailing lone backslash or a template without any
 * argument fail with UPRES_ERR_INVALID_ARG and a detail in ctx (may be NULL);
 * *argv_out is then NULL.
 */
int upres__exec_split(upres_ctx *ctx, const char *tmpl, char ***argv_out, size_t *argc_out);

/*
 * Substitutes inside each argument of the split template `targv`
 * (NULL-terminated): %i -> `in`, %o -> `out`, %% -> '%'. Each argument stays
 * exactly one argument whatever the paths contain, and substituted text is
 * never scanned again. Fails with UPRES_ERR_INVALID_ARG (detail in ctx, which
 * counts the program as argument 0, like $0 in the shell) when an argument
 * holds any other %x or ends in a lone '%', when %i or %o is missing, or when
 * the program (targv[0]) is empty or contains %i or %o.
 * On success *argv_out is a new NULL-terminated array as upres__exec_split()
 * gives.
 */
int upres__exec_subst(upres_ctx *ctx, char *const *targv, const char *in, const char *out,
                      char ***argv_out);

/* Frees an array from upres__exec_split() / upres__exec_subst(); NULL is fine. */
void upres__exec_free_argv(char **argv);

/* The last UPRES__EXEC_RING bytes written to a tool's stderr. Zero it to start. */
#define UPRES__EXEC_RING 4096
typedef struct upres__exec_ring {
    unsigned char buf[UPRES__EXEC_RING];
    uint64_t total; /* bytes ever put; buf holds the last min(total, size) */
} upres__exec_ring;

void upres__exec_ring_put(upres__exec_ring *r, const void *data, size_t n);

/*
 * Writes the tail of the ring as one printable line into out (cap bytes,
 * cap >= 8, always NUL-terminated): lines (split at LF and CR) trimmed, empty
 * ones dropped, joined with " | "; control characters, C1 controls and bytes
 * that are not valid UTF-8 become '?', tabs a space. When the text is longer
 * than `max` bytes (or cap-1), only its end is kept, prefixed "...", cut
 * where a line starts when one starts within 80 bytes, else at a character
 * boundary. A line cut by the ring's wrap-around is dropped.
 * Returns the length written (0 when nothing printable was written).
 */
size_t upres__exec_tail(const upres__exec_ring *r, char *out, size_t cap, size_t max);

/*
 * Removes `path` and, when it is a folder, everything under it, without
 * following symbolic links (a link is removed, not its target). Folders whose
 * permissions block removal are chmod'ed to 0700 first. Nesting deeper than
 * 128 levels is left in place. Returns 0 when `path` is gone afterwards, -1
 * otherwise.
 */
int upres__exec_rmtree(const char *path);

#endif

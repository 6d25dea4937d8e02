/* `upres convert IN OUT`: re-encode an image in the format of OUT's extension. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

const char cli_convert_help[] =
    "usage: upres convert IN OUT [OPTIONS]\n"
    "\n"
    "Reads IN (PNG, JPEG, TIFF or WebP, recognised by its content), applies its\n"
    "EXIF orientation, and writes OUT in the format named by OUT's extension.\n"
    "The ICC profile is kept unless --no-icc; alpha is flattened on white for\n"
    "JPEG. OUT is written atomically (a temporary file, then a rename).\n"
    "\n"
    "Example: upres convert scan.tif scan.webp --lossless\n"
    "\n" CLI_OUTPUT_HELP;

int cli_convert_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "convert", 0};
    cli_output o;
    cli_output_defaults(&o);
    const char *ops[2];
    int nops = 0;
    while (a.i < a.argc) {
        const char *arg = a.argv[a.i];
        if (!a.only_operands && arg[0] == '-' && arg[1]) {
            if (!strcmp(arg, "--")) {
                a.only_operands = 1;
                a.i++;
                continue;
            }
            int stop = -1, r = cli_output_option(&a, &o);
            if (r == CLI_NOMATCH) r = cli_global_option(&a, g, &stop);
            if (r == CLI_BAD) return CLI_USAGE;
            if (stop >= 0) return stop;
            if (r == CLI_NOMATCH) {
                char buf[64];
                return cli_usage_error(a.cmd, "unknown option '%s'", cli_clean(arg, buf, sizeof buf));
            }
            continue;
        }
        if (nops == 2) return cli_usage_error(a.cmd, "too many operands (want IN OUT)");
        ops[nops++] = arg;
        a.i++;
    }
    if (nops < 2)
        return cli_usage_error(a.cmd, nops ? "missing output file (want IN OUT)"
                                           : "missing input and output files (want IN OUT)");
    const char *in = ops[0], *out = ops[1];
    upres_encode_desc ed;
    int rc = cli_output_desc(a.cmd, &o, out, &ed);
    if (rc != CLI_OK) return rc;
    if ((rc = cli_check_paths(in, out, o.force)) != CLI_OK) return rc;

    double t0 = cli_now();
    upres_ctx *ctx = NULL;
    upres_image *img = NULL;
    upres_file_info info;
    if ((rc = cli_make_ctx(g, &ctx)) != CLI_OK) return rc;
    rc = cli_load(g, ctx, in, 1, &img, &info);
    if (rc == CLI_OK) rc = cli_save(g, ctx, img, out, &ed);
    if (rc == CLI_OK) {
        char p[512];
        cli_note(g, "%s: %ux%u %s -> %s", cli_clean(out, p, sizeof p), img->width, img->height,
                 upres_format_name(info.format), upres_format_name(ed.format));
        cli_verbose(g, "total %.1f ms", (cli_now() - t0) * 1e3);
    }
    cli_progress_clear();
    upres_image_free(img);
    upres_ctx_free(ctx);
    return rc;
}

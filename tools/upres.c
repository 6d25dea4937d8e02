/* upres — command-line front end: global options, the subcommand table, and
 * dispatch. Each subcommand lives in tools/cmd_*.c. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static int help_main(cli_global *g, int argc, char **argv);

static const char help_help[] =
    "usage: upres help [SUBCOMMAND]\n"
    "\n"
    "Prints the list of subcommands, or the help of one subcommand.\n";

/* The one table of subcommands: name, summary, handler, help. */
const cli_command cli_commands[] = {
    {"info", "show what an image file contains", cli_info_main, cli_info_help},
    {"resize", "resize an image (upscale or downscale)", cli_resize_main, cli_resize_help},
    {"convert", "convert an image to another format or depth", cli_convert_main,
     cli_convert_help},
    {"upscale", "upscale with an AI model (Real-ESRGAN, Real-CUGAN, waifu2x)",
     cli_upscale_main, cli_upscale_help},
    {"models", "list the AI models found in the model search path", cli_models_main,
     cli_models_help},
    {"split", "make a low-resolution proxy of an image for a model", cli_split_main,
     cli_split_help},
    {"split-with-processed", "make the proxy and the delta from a model's output",
     cli_split_processed_main, cli_split_processed_help},
    {"merge", "apply a delta to the full-resolution original", cli_merge_main,
     cli_merge_help},
    {"batch-split", "make proxies for every file matching patterns", cli_batch_split_main,
     cli_batch_split_help},
    {"metrics", "compare two images: PSNR, SSIM, CIEDE2000 colour drift", cli_metrics_main,
     cli_metrics_help},
    {"compare", "run several models on a crop and write a comparison report",
     cli_compare_main, cli_compare_help},
    {"bench", "time a model on a test image: seconds, megapixels/s, peak memory",
     cli_bench_main, cli_bench_help},
    {"hw", "describe this machine and recommend tile size and threads", cli_hw_main,
     cli_hw_help},
    {"help", "show help for a subcommand", help_main, help_help},
    {NULL, NULL, NULL, NULL},
};

const cli_command *cli_find_command(const char *name)
{
    for (const cli_command *c = cli_commands; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

/* Prints the tool's overview (stdout). */
static void main_help(void)
{
    printf("usage: upres [GLOBAL OPTIONS] SUBCOMMAND [ARGS...]\n"
           "\n"
           "Faithful image I/O, resampling and AI upscaling for PNG, JPEG, TIFF and WebP.\n"
           "\n"
           "Subcommands:\n");
    for (const cli_command *c = cli_commands; c->name; c++)
        printf("  %-21s %s\n", c->name, c->summary);
    printf("\n%s\nRun 'upres SUBCOMMAND --help' for a subcommand's options.\n"
           "Exit status: 0 success, 1 failure, 2 usage error.\n",
           cli_global_help);
}

static int help_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "help", 0};
    const char *topic = NULL;
    while (a.i < a.argc) {
        const char *arg = a.argv[a.i];
        if (arg[0] == '-' && arg[1]) {
            int stop = -1;
            int r = cli_global_option(&a, g, &stop);
            if (r == CLI_BAD) return CLI_USAGE;
            if (stop >= 0) return stop;
            if (r == CLI_NOMATCH) {
                char buf[64];
                return cli_usage_error("help", "unknown option '%s'", cli_clean(arg, buf, sizeof buf));
            }
            continue;
        }
        if (topic) return cli_usage_error("help", "too many operands");
        topic = arg;
        a.i++;
    }
    if (topic && !cli_find_command(topic)) {
        char buf[128];
        return cli_usage_error(NULL, "unknown subcommand '%s'", cli_clean(topic, buf, sizeof buf));
    }
    cli_print_help(topic);
    return CLI_OK;
}

void cli_print_help(const char *cmd)
{
    const cli_command *c = cmd ? cli_find_command(cmd) : NULL;
    if (!c) {
        main_help();
        return;
    }
    fputs(c->help, stdout);
    printf("\n%s", cli_global_help);
}

int main(int argc, char **argv)
{
    cli_global g = {0, 0, 0, 0};
    cli_args a = {argc, argv, 1, NULL, 0};
    /* Global options may precede the subcommand; the rest is the
     * subcommand's, which also accepts the global options. */
    while (a.i < a.argc) {
        const char *arg = a.argv[a.i];
        if (arg[0] != '-' || !arg[1]) break;
        if (!strcmp(arg, "--")) {
            a.i++;
            break;
        }
        int stop = -1;
        int r = cli_global_option(&a, &g, &stop);
        if (r == CLI_BAD) return CLI_USAGE;
        if (stop >= 0) return stop;
        if (r == CLI_NOMATCH) {
            char buf[64];
            return cli_usage_error(NULL, "unknown option '%s' (subcommand options go after the "
                                         "subcommand's name)", cli_clean(arg, buf, sizeof buf));
        }
    }
    if (a.i >= a.argc) return cli_usage_error(NULL, "missing subcommand (info, resize, upscale, convert, split, merge, ...)");
    const char *name = a.argv[a.i];
    const cli_command *c = cli_find_command(name);
    if (!c) {
        char buf[128];
        return cli_usage_error(NULL, "unknown subcommand '%s'", cli_clean(name, buf, sizeof buf));
    }
    return c->run(&g, a.argc - a.i - 1, a.argv + a.i + 1);
}

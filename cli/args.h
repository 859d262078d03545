/*
 * args.h - parsing a command's own arguments (after the global flags are
 * gone and the command words consumed).
 *
 * Options: "--name VALUE", "--name=VALUE", "-x VALUE", "-xVALUE", and
 * flags "--name" / "-x". A lone "--" ends the options. An argument that
 * looks like a negative number ("-5") is a positional, so that
 * `counters incr hits -5` works.
 */
#ifndef JVC_ARGS_H
#define JVC_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"

typedef struct {
    const char *long_name; /* without "--" */
    char short_name;       /* 0 if none */
    const char **value;    /* option with a value: where it goes */
    bool *flag;            /* flag: set to true when present */
} jvc_opt;

/* Parses argv[0..argc) against opts (nopts entries), stores positionals in
 * pos[] (at most maxpos) and their count in *npos. Fewer than minpos or
 * more than maxpos positionals, an unknown option or a missing value:
 * prints a usage error for cmd and returns JVC_EXIT_USAGE. Strings borrow
 * argv. */
int jvc_parse_args(const jvc_cmd *cmd, int argc, char **argv,
                   const jvc_opt *opts, size_t nopts, char **pos, int minpos,
                   int maxpos, int *npos);

/* Strict decimal integer in [min, max]. */
bool jvc_parse_int(const char *s, long long min, long long max, long long *out);

#endif

/*
 * offline.h - jarvisd's subcommands: operations on a stopped node's data
 * directory.
 *
 *   jarvisd init [DIR]                           prepare a data dir
 *   jarvisd restore FILE [--data-dir DIR]        put a backup in place
 *   jarvisd admin-key [--data-dir DIR]           a new admin API key
 *
 * jarvisctl, a pure client of the API, runs these for its `init` and
 * `restore` aliases.
 *
 * Each holds the data dir's lock while it works, so none runs beside the
 * node (or another subcommand) on the same data dir. A subcommand is the
 * first argument; anything else is the daemon's own command line.
 *
 * Blocking; call from main() before anything else runs.
 */
#ifndef JV_OFFLINE_H
#define JV_OFFLINE_H

#include <stdio.h>

/* When argv[1] names a subcommand, runs it and returns its exit status:
 * 0 done, 1 failed (the node is running, the data dir is unusable...),
 * 2 bad usage. Messages go to out and err. Returns -1 when argv[1] is not
 * a subcommand. */
int jv_offline_main(int argc, char **argv, FILE *out, FILE *err);

/* The subcommands' lines for jarvisd --help. */
void jv_offline_usage(FILE *f);

#endif

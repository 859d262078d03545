/*
 * table.h - aligned text tables for human output:
 *
 *   NAME      TOTAL
 *   requests     42
 *   errors        3
 *
 * Cells are copied and made safe for a terminal (jvc_sanitize); a column
 * may be limited to a width (longer cells are cut with "...") and
 * right-aligned (numbers). The last column is not padded.
 */
#ifndef JVC_TABLE_H
#define JVC_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <stdio.h>

typedef struct jvc_table jvc_table;

/* A table with ncols columns and these headers (copied). NULL on ENOMEM. */
jvc_table *jvc_table_new(size_t ncols, const char *const *headers);
/* Accepts NULL. */
void jvc_table_free(jvc_table *t);

void jvc_table_right(jvc_table *t, size_t col);
/* Prints only the rows: for "field  value" lists. */
void jvc_table_hide_header(jvc_table *t);
void jvc_table_max_width(jvc_table *t, size_t col, size_t chars);
/* Pads the column to at least chars: with the same max, tables printed one
 * after another (a --follow stream) line up with the first one's header. */
void jvc_table_min_width(jvc_table *t, size_t col, size_t chars);

/* Appends a row of ncols cells (copied; NULL shows as "-"). JV_ENOMEM as
 * false. */
bool jvc_table_add(jvc_table *t, const char *const *cells);
size_t jvc_table_rows(const jvc_table *t);

/* Writes the header and the rows to f. false on ENOMEM. */
bool jvc_table_print(const jvc_table *t, FILE *f);

/* The end of a list command: when rc is JVC_EXIT_OK, prints t to stdout,
 * or the line `empty` when it has no rows; then frees t (NULL is fine).
 * Returns rc, or JVC_EXIT_FAIL when printing ran out of memory. */
int jvc_table_end(jvc_table *t, int rc, const char *empty);

/* Prints a table of the JSON objects in arr (for lists whose fields the
 * CLI does not know in advance, such as peers): one column per field, in
 * order of first appearance, strings as they are, times in local time,
 * other values as compact JSON. false on ENOMEM. */
bool jvc_table_print_objects(json_t *arr, FILE *f);

#endif

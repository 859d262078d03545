#include "table.h"

#include <ctype.h>
#include <string.h>

#include "alloc.h"
#include "cli.h"
#include "types.h"
#include "output.h"

struct jvc_table {
    size_t ncols;
    size_t nrows, caprows;
    char **cells; /* (nrows + 1) * ncols, row 0 is the header */
    bool *right;
    bool hide_header;
    size_t *max;
    size_t *min;
};

jvc_table *jvc_table_new(size_t ncols, const char *const *headers)
{
    jvc_table *t = jv_calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    t->right = jv_calloc(ncols, sizeof *t->right);
    t->max = jv_calloc(ncols, sizeof *t->max);
    t->min = jv_calloc(ncols, sizeof *t->min);
    if (t->right == NULL || t->max == NULL || t->min == NULL ||
        !jvc_table_add(t, headers)) {
        jvc_table_free(t);
        return NULL;
    }
    return t;
}

void jvc_table_free(jvc_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        jv_free(t->cells[i]);
    jv_free(t->cells);
    jv_free(t->right);
    jv_free(t->max);
    jv_free(t->min);
    jv_free(t);
}

void jvc_table_right(jvc_table *t, size_t col)
{
    if (col < t->ncols)
        t->right[col] = true;
}

void jvc_table_hide_header(jvc_table *t)
{
    t->hide_header = true;
}

void jvc_table_max_width(jvc_table *t, size_t col, size_t chars)
{
    if (col < t->ncols)
        t->max[col] = chars;
}

void jvc_table_min_width(jvc_table *t, size_t col, size_t chars)
{
    if (col < t->ncols)
        t->min[col] = chars;
}

bool jvc_table_add(jvc_table *t, const char *const *cells)
{
    if (t->nrows == t->caprows) {
        size_t cap = t->caprows ? t->caprows * 2 : 16;
        char **c = jv_reallocarray(t->cells, cap * t->ncols, sizeof *c);
        if (c == NULL)
            return false;
        t->cells = c;
        t->caprows = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        /* The limit applies to data rows; t->max is set after the header. */
        row[i] = jvc_sanitize(cells[i] ? cells[i] : "-",
                              t->nrows > 0 ? t->max[i] : 0);
        if (row[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                jv_free(row[j]);
            return false;
        }
    }
    t->nrows++;
    return true;
}

size_t jvc_table_rows(const jvc_table *t)
{
    return t->nrows - 1;
}

bool jvc_table_print(const jvc_table *t, FILE *f)
{
    size_t ncols = t->ncols;
    size_t *width = jv_calloc(ncols, sizeof *width);
    if (width == NULL)
        return false;
    memcpy(width, t->min, ncols * sizeof *width);
    for (size_t r = t->hide_header ? 1 : 0; r < t->nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            size_t w = jvc_display_width(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    /* Each line is built whole so that trailing blanks (an empty last
     * cell) can be cut. */
    jv_buf line;
    jv_buf_init(&line);
    static const char spaces[] = "                                ";
    for (size_t r = t->hide_header ? 1 : 0; r < t->nrows; r++) {
        jv_buf_reset(&line);
        for (size_t c = 0; c < ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            size_t pad = width[c] - jvc_display_width(cell);
            if (c > 0)
                jv_buf_append(&line, "  ", 2);
            if (!t->right[c])
                jv_buf_append(&line, cell, strlen(cell));
            for (size_t k = pad; k > 0;) {
                size_t n = k < sizeof spaces - 1 ? k : sizeof spaces - 1;
                jv_buf_append(&line, spaces, n);
                k -= n;
            }
            if (t->right[c])
                jv_buf_append(&line, cell, strlen(cell));
        }
        while (line.len > 0 && line.data[line.len - 1] == ' ')
            line.len--;
        jv_buf_append(&line, "\n", 1);
        if (jv_buf_err(&line) != JV_OK)
            break;
        fwrite(line.data, 1, line.len, f);
    }
    bool ok = jv_buf_err(&line) == JV_OK;
    jv_buf_fini(&line);
    jv_free(width);
    return ok;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool jvc_table_print_objects(json_t *arr, FILE *f)
{
    bool ok = false;
    const char **names = NULL;
    char **cells = NULL;
    size_t ncols = 0, cap = 0, i;
    jvc_table *t = NULL;
    json_t *obj;
    const char *key;
    json_t *v;

    json_array_foreach(arr, i, obj)
    {
        json_object_foreach(obj, key, v)
        {
            size_t k = 0;
            while (k < ncols && strcmp(names[k], key) != 0)
                k++;
            if (k < ncols)
                continue;
            if (ncols == cap) {
                cap = cap ? cap * 2 : 8;
                const char **n = jv_reallocarray(names, cap, sizeof *n);
                if (n == NULL)
                    goto out;
                names = n;
            }
            names[ncols++] = key;
        }
    }
    if (ncols == 0)
        return true;
    /* Headers are the field names in capitals; cells doubles as their
     * scratch space. */
    cells = jv_calloc(ncols, sizeof *cells);
    if (cells == NULL)
        goto out;
    for (size_t k = 0; k < ncols; k++) {
        if ((cells[k] = jv_strndup(names[k], strlen(names[k]))) == NULL)
            goto out;
        for (char *p = cells[k]; *p; p++)
            *p = (char)toupper((unsigned char)*p);
    }
    t = jvc_table_new(ncols, (const char *const *)cells);
    for (size_t k = 0; k < ncols; k++) {
        jv_free(cells[k]);
        cells[k] = NULL;
    }
    if (t == NULL)
        goto out;
    json_array_foreach(arr, i, obj)
    {
        for (size_t k = 0; k < ncols; k++) {
            v = json_object_get(obj, names[k]);
            char tbuf[64];
            if (v == NULL || json_is_null(v))
                cells[k] = jv_strndup("-", 1);
            else if (json_is_string(v) && ends_with(names[k], "_at")) {
                jvc_time_human(v, tbuf, sizeof tbuf);
                cells[k] = jv_strndup(tbuf, strlen(tbuf));
            } else if (json_is_string(v))
                cells[k] =
                    jv_strndup(json_string_value(v), json_string_length(v));
            else
                cells[k] = jvc_json_compact(v);
            if (cells[k] == NULL)
                goto out;
        }
        bool added = jvc_table_add(t, (const char *const *)cells);
        for (size_t k = 0; k < ncols; k++) {
            jv_free(cells[k]);
            cells[k] = NULL;
        }
        if (!added)
            goto out;
    }
    ok = jvc_table_print(t, f);
out:
    if (cells != NULL)
        for (size_t k = 0; k < ncols; k++)
            jv_free(cells[k]);
    jv_free(cells);
    jv_free(names);
    jvc_table_free(t);
    return ok;
}

int jvc_table_end(jvc_table *t, int rc, const char *empty)
{
    if (t != NULL && rc == JVC_EXIT_OK) {
        if (jvc_table_rows(t) == 0)
            puts(empty);
        else if (!jvc_table_print(t, stdout))
            rc = jvc_oom();
    }
    jvc_table_free(t);
    return rc;
}

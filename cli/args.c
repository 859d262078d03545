#include "args.h"

#include "types.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool jvc_parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool looks_negative_number(const char *s)
{
    return s[0] == '-' && isdigit((unsigned char)s[1]);
}

static const jvc_opt *find_long(const jvc_opt *opts, size_t nopts,
                                const char *name, size_t len)
{
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].long_name != NULL && strlen(opts[i].long_name) == len &&
            memcmp(opts[i].long_name, name, len) == 0)
            return &opts[i];
    return NULL;
}

static const jvc_opt *find_short(const jvc_opt *opts, size_t nopts, char c)
{
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].short_name != 0 && opts[i].short_name == c)
            return &opts[i];
    return NULL;
}

int jvc_parse_args(const jvc_cmd *cmd, int argc, char **argv,
                   const jvc_opt *opts, size_t nopts, char **pos, int minpos,
                   int maxpos, int *npos)
{
    int n = 0;
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        /* The node takes UTF-8 only; say so here rather than as a failed
         * request. */
        if (!jv_str_valid_utf8(jv_str_c(a)))
            return jvc_usage_error(cmd, "argument %d is not valid UTF-8",
                                   i + 1);
        if (options_done || a[0] != '-' || a[1] == '\0' ||
            looks_negative_number(a)) {
            if (n >= maxpos)
                return jvc_usage_error(cmd, "unexpected argument '%s'", a);
            pos[n++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        const jvc_opt *o;
        const char *inline_val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = find_long(opts, nopts, name, len);
            if (o == NULL)
                return jvc_usage_error(cmd, "unknown option '--%.*s'", (int)len,
                                       name);
            if (eq != NULL) {
                if (o->value == NULL)
                    return jvc_usage_error(cmd, "option '--%s' takes no value",
                                           o->long_name);
                inline_val = eq + 1;
            }
        } else {
            o = find_short(opts, nopts, a[1]);
            if (o == NULL)
                return jvc_usage_error(cmd, "unknown option '-%c'", a[1]);
            if (a[2] != '\0') {
                if (o->value == NULL)
                    return jvc_usage_error(cmd, "unknown option '%s'", a);
                inline_val = a + 2;
            }
        }
        if (o->value == NULL) {
            *o->flag = true;
            continue;
        }
        if (inline_val == NULL) {
            if (i + 1 >= argc)
                return jvc_usage_error(cmd, "option '%s' needs a value", a);
            inline_val = argv[++i];
        }
        *o->value = inline_val;
    }
    if (n < minpos)
        return jvc_usage_error(cmd, "missing argument");
    /* The first argument names something (a counter, a key, an id, a
     * file): an empty one is a mistake on this side, not a missing
     * route on the node's. */
    if (n > 0 && pos[0][0] == '\0') {
        const char *w = cmd->args;
        while (*w == '[') /* skip "[--string] " */
            w += strcspn(w, "]") + (w[strcspn(w, "]")] ? 2 : 0);
        return jvc_usage_error(cmd, "%.*s is empty", (int)strcspn(w, " "), w);
    }
    *npos = n;
    return JVC_EXIT_OK;
}

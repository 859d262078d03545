#include "err.h"

const char *jv_strerror(jv_err err)
{
    switch (err) {
#define JV_ERR_TEXT(name, code, text) \
    case JV_##name:                   \
        return text;
        JV_ERR_MAP(JV_ERR_TEXT)
#undef JV_ERR_TEXT
    }
    return "unknown error";
}

const char *jv_errname(jv_err err)
{
    switch (err) {
#define JV_ERR_NAME(name, code, text) \
    case JV_##name:                   \
        return #name;
        JV_ERR_MAP(JV_ERR_NAME)
#undef JV_ERR_NAME
    }
    return "EUNKNOWN";
}

#include "bl/bl_util.h"

#include <stdio.h>
#include <string.h>

#include "bl/bl_err.h"

_Noreturn void
bl_bug(const char *file, int line, const char *what)
{
    fprintf(stderr, "BUG at %s:%d: %s\n", file, line, what);
    abort();
}

static _Noreturn void
oom(size_t n)
{
    fprintf(stderr, "out of memory allocating %zu bytes\n", n);
    abort();
}

void *
bl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        oom(n);
    }
    return p;
}

void *
bl_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL) {
        oom(n * size);
    }
    return p;
}

void *
bl_xrealloc(void *p, size_t n)
{
    void *np = realloc(p, n ? n : 1);

    if (np == NULL) {
        oom(n);
    }
    return np;
}

char *
bl_xstrdup(const char *s)
{
    char *p = strdup(s);

    if (p == NULL) {
        oom(strlen(s) + 1);
    }
    return p;
}

const char *
bl_strerror(int err)
{
    switch (err) {
#define BL_ERR_CASE(name, value, text) case name: return text;
    BL_ERRNO_MAP(BL_ERR_CASE)
#undef BL_ERR_CASE
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        return strerror(-err);  /* glibc's strerror is thread-safe for known codes */
    }
    return "unknown error";
}

#ifndef BL_UTIL_H
#define BL_UTIL_H

#include <stddef.h>
#include <stdlib.h>

/* Small helpers every module uses. */

#define BL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BL_MAX(a, b) ((a) > (b) ? (a) : (b))

#define bl_container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Frees <p> and sets it to NULL. */
#define BL_FREE(p) do { free(p); (p) = NULL; } while (0)

#define BL_LIKELY(x) __builtin_expect(!!(x), 1)
#define BL_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Debug/test-build assertion. */
#ifdef BL_DEBUG
#define BL_ASSERT(cond) do { if (!(cond)) bl_bug(__FILE__, __LINE__, #cond); } while (0)
#else
#define BL_ASSERT(cond) do { (void)sizeof(cond); } while (0)
#endif

/* Aborts in every build: state is corrupted and going on would make it worse. */
#define BL_BUG_ON(cond) do { if (BL_UNLIKELY(cond)) bl_bug(__FILE__, __LINE__, #cond); } while (0)

_Noreturn void bl_bug(const char *file, int line, const char *what);

/*
 * Allocation for startup and config code: aborts with a message on OOM. Request-path
 * code uses plain malloc and fails only the request when it returns NULL.
 */
void *bl_xmalloc(size_t n);
void *bl_xcalloc(size_t n, size_t size);
void *bl_xrealloc(void *p, size_t n);
char *bl_xstrdup(const char *s);

#endif /* BL_UTIL_H */

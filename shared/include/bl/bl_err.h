#ifndef BL_ERR_H
#define BL_ERR_H

/*
 * Error codes shared by every module. Functions that return int give 0 on success and
 * a negative value on failure: either -errno (system errors) or one of the BL_E* codes
 * below, which sit above the errno range. bl_strerror() names both.
 */

/* X(name, value, text) */
#define BL_ERRNO_MAP(X)                                                   \
    X(BL_EPARSE,     -10001, "parse error")                               \
    X(BL_ECONF,      -10002, "invalid configuration")                     \
    X(BL_ENOTFOUND,  -10003, "not found")                                 \
    X(BL_ECONFLICT,  -10004, "version conflict")                          \
    X(BL_ETOOBIG,    -10005, "too large")                                 \
    X(BL_EUNAVAIL,   -10006, "unavailable")                               \
    X(BL_EFULL,      -10007, "storage full")                              \
    X(BL_EEXIST,     -10008, "already exists")                            \
    X(BL_EINVAL,     -10009, "invalid argument")                          \
    X(BL_ENOSPACE,   -10010, "no space left")

enum bl_err {
#define BL_ERR_ENUM(name, value, text) name = value,
    BL_ERRNO_MAP(BL_ERR_ENUM)
#undef BL_ERR_ENUM
};

/* Returns a static string for <err> (a BL_E* code or a negative errno). Thread-safe. */
const char *bl_strerror(int err);

#endif /* BL_ERR_H */

/*
 * Unit tests of the JSON-lines logger: every line is parsed back with jansson (which
 * rejects invalid JSON and invalid UTF-8), escaping, level filtering, truncation, and
 * 8 threads writing through one pipe without interleaving.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bl/bl_buf.h"
#include "bl/bl_err.h"
#include "bl/bl_log.h"

static int g_fd = -1;                   /* capture file of the current test */

static int
setup(void **state)
{
    char path[] = "/tmp/test_bl_log.XXXXXX";

    (void)state;
    g_fd = mkstemp(path);
    if (g_fd < 0) {
        return -1;
    }
    unlink(path);
    bl_log_set_fd(g_fd);
    bl_log_set_level(BL_LOG_INFO);
    bl_log_init("test-comp");
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    bl_log_set_fd(2);
    close(g_fd);
    g_fd = -1;
    return 0;
}

/* Forgets what was logged so far. */
static void
reset_capture(void)
{
    assert_int_equal(ftruncate(g_fd, 0), 0);
    assert_int_equal(lseek(g_fd, 0, SEEK_SET), 0);
}

/* Everything logged so far in this test; the caller frees. */
static char *
captured(size_t *len)
{
    off_t end = lseek(g_fd, 0, SEEK_END);
    char *buf;
    ssize_t n;

    assert_true(end >= 0);
    buf = malloc((size_t)end + 1);
    assert_non_null(buf);
    n = pread(g_fd, buf, (size_t)end, 0);
    assert_int_equal(n, end);
    buf[end] = '\0';
    if (len != NULL) {
        *len = (size_t)end;
    }
    return buf;
}

/* The only line logged so far, checked to be one line ending in \n, parsed with <flags>. */
static json_t *
only_line_flags(char **raw, size_t flags)
{
    size_t len;
    char *text = captured(&len);
    json_error_t err;
    json_t *obj;

    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    assert_ptr_equal(memchr(text, '\n', len), text + len - 1);
    obj = json_loadb(text, len - 1, flags, &err);
    if (obj == NULL) {
        fail_msg("not JSON (%s at %d): %.200s", err.text, err.position, text);
    }
    assert_true(json_is_object(obj));
    if (raw != NULL) {
        *raw = text;
    } else {
        free(text);
    }
    return obj;
}

static json_t *
only_line(char **raw)
{
    return only_line_flags(raw, 0);
}

static const char *
str_of(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_string(v)) {
        fail_msg("key %s is not a string", key);
    }
    return json_string_value(v);
}

/* "2026-11-28T00:00:00.123Z", within a minute of now. */
static void
check_ts(const char *ts)
{
    struct tm tm;
    int ms = -1;
    time_t t, now = time(NULL);

    assert_int_equal(strlen(ts), 24);
    memset(&tm, 0, sizeof(tm));
    assert_int_equal(sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms), 7);
    assert_true(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' &&
                ts[16] == ':' && ts[19] == '.' && ts[23] == 'Z');
    assert_true(ms >= 0 && ms <= 999);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    t = timegm(&tm);
    assert_true(t >= now - 60 && t <= now + 60);
}

static void
test_basic_line(void **state)
{
    char *raw;
    json_t *obj;
    const char *tail = "\",\"level\":\"info\",\"component\":\"test-comp\",\"msg\":\"hello 42\"}\n";

    (void)state;
    bl_log(BL_LOG_INFO, "hello %d", 42);
    obj = only_line(&raw);
    /* exact shape and key order */
    assert_memory_equal(raw, "{\"ts\":\"", 7);
    assert_string_equal(raw + 7 + 24, tail);
    check_ts(str_of(obj, "ts"));
    assert_string_equal(str_of(obj, "level"), "info");
    assert_string_equal(str_of(obj, "component"), "test-comp");
    assert_string_equal(str_of(obj, "msg"), "hello 42");
    assert_int_equal(json_object_size(obj), 4);
    json_decref(obj);
    free(raw);
}

static void
test_levels_named(void **state)
{
    static const char *const names[] = { "debug", "info", "warn", "error" };
    size_t len;
    char *text, *line, *save = NULL;
    int i = 0;

    (void)state;
    bl_log_set_level(BL_LOG_DEBUG);
    for (int l = BL_LOG_DEBUG; l <= BL_LOG_ERROR; l++) {
        bl_log_write((enum bl_log_level)l, NULL, 0, "at %s", names[l]);
    }
    text = captured(&len);
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        json_t *obj = json_loads(line, 0, NULL);

        assert_non_null(obj);
        assert_true(i < 4);
        assert_string_equal(str_of(obj, "level"), names[i]);
        assert_string_equal(bl_log_level_name((enum bl_log_level)i), names[i]);
        json_decref(obj);
        i++;
    }
    assert_int_equal(i, 4);
    free(text);
}

static void
test_fields(void **state)
{
    char *raw;
    json_t *obj;
    struct bl_log_field f[] = {
        BL_LOG_STR("node", "n1"),
        BL_LOG_STR("nothing", NULL),
        BL_LOG_INT("neg", -1234567890123LL),
        BL_LOG_UINT("big", 18446744073709551615ULL),
        BL_LOG_DOUBLE("tenth", 0.1),
        BL_LOG_DOUBLE("three", 3.0),
        BL_LOG_DOUBLE("nan", NAN),
        BL_LOG_DOUBLE("inf", INFINITY),
        BL_LOG_DOUBLE("minf", -INFINITY),
        BL_LOG_BOOL("yes", true),
        BL_LOG_BOOL("no", false),
        { .key = NULL, .type = BL_LOG_F_STR, .v.s = "skipped" },
        BL_LOG_STR("we\"ird\nkey", "v"),
    };

    (void)state;
    bl_logf(BL_LOG_WARN, f, (int)(sizeof(f) / sizeof(f[0])), "with %s", "fields");
    /* jansson's integers are signed 64-bit: read them as doubles to accept 2^64 - 1 */
    obj = only_line_flags(&raw, JSON_DECODE_INT_AS_REAL);
    assert_string_equal(str_of(obj, "msg"), "with fields");
    assert_string_equal(str_of(obj, "node"), "n1");
    assert_true(json_is_null(json_object_get(obj, "nothing")));
    assert_true(json_number_value(json_object_get(obj, "neg")) == -1234567890123.0);
    assert_non_null(strstr(raw, ",\"neg\":-1234567890123,"));
    assert_non_null(strstr(raw, ",\"big\":18446744073709551615,"));
    assert_true(json_real_value(json_object_get(obj, "tenth")) == 0.1);
    assert_non_null(strstr(raw, ",\"tenth\":0.1,"));
    assert_non_null(strstr(raw, ",\"three\":3,"));
    assert_true(json_is_null(json_object_get(obj, "nan")));
    assert_true(json_is_null(json_object_get(obj, "inf")));
    assert_true(json_is_null(json_object_get(obj, "minf")));
    assert_true(json_is_true(json_object_get(obj, "yes")));
    assert_true(json_is_false(json_object_get(obj, "no")));
    assert_null(strstr(raw, "skipped"));
    assert_string_equal(str_of(obj, "we\"ird\nkey"), "v");
    json_decref(obj);
    free(raw);
}

static void
test_escaping(void **state)
{
    const char *nasty = "quote\" backslash\\ slash/ nl\n cr\r tab\t bell\x07 esc\x1b us\x1f "
                        "del\x7f utf8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    struct bl_log_field f[] = { BL_LOG_STR("path", nasty) };
    char *raw;
    json_t *obj;

    (void)state;
    bl_logf(BL_LOG_INFO, f, 1, "%s", nasty);
    obj = only_line(&raw);
    assert_string_equal(str_of(obj, "msg"), nasty);
    assert_string_equal(str_of(obj, "path"), nasty);
    /* control characters never appear raw */
    for (const char *p = raw; *p != '\n'; p++) {
        assert_true((unsigned char)*p >= 0x20);
    }
    assert_non_null(strstr(raw, "bell\\u0007 esc\\u001b us\\u001f"));
    json_decref(obj);
    free(raw);
}

static void
test_invalid_utf8(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "a\xff" "b", "a\xef\xbf\xbd" "b" },                       /* never valid */
        { "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },                 /* overlong '/' */
        { "\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* overlong, 3 bytes */
        { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate D800 */
        { "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* > 10FFFF */
        { "\xe2\x82x", "\xef\xbf\xbd\xef\xbf\xbdx" },               /* truncated sequence */
        { "end\xe2\x82", "end\xef\xbf\xbd\xef\xbf\xbd" },           /* truncated at the end */
        { "\x80 lone", "\xef\xbf\xbd lone" },                       /* lone continuation */
        { "ok \xf4\x8f\xbf\xbf \xef\xbf\xbd", "ok \xf4\x8f\xbf\xbf \xef\xbf\xbd" }, /* valid */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bl_log_field f[] = { BL_LOG_STR("v", cases[i].in) };
        json_t *obj;

        reset_capture();
        bl_logf(BL_LOG_INFO, f, 1, "%s", cases[i].in);
        obj = only_line(NULL);
        assert_string_equal(str_of(obj, "msg"), cases[i].out);
        assert_string_equal(str_of(obj, "v"), cases[i].out);
        json_decref(obj);
    }

    /* the component is sanitized too */
    reset_capture();
    bl_log_init("bad\xff\"name");
    bl_log(BL_LOG_INFO, "x");
    {
        json_t *obj = only_line(NULL);

        assert_string_equal(str_of(obj, "component"), "bad\xef\xbf\xbd\"name");
        json_decref(obj);
    }

    /* the helpers behind it */
    assert_int_equal(bl_log_utf8_valid_len("abc\xc3\xa9", 5), 5);
    assert_int_equal(bl_log_utf8_valid_len("ab\xc3", 3), 2);
    assert_int_equal(bl_log_utf8_valid_len("\xed\x9f\xbf\xed\xa0\x80", 6), 3);
    {
        struct bl_buf b;

        bl_buf_init(&b);
        assert_int_equal(bl_log_append_utf8(&b, "x\xfey", 3), 0);
        assert_int_equal(b.len, 5);
        assert_string_equal(b.data, "x\xef\xbf\xbdy");
        bl_buf_deinit(&b);
    }
}

static int g_side_effects;

static int
side_effect(void)
{
    g_side_effects++;
    return 7;
}

static void
test_level_filter(void **state)
{
    size_t len;
    char *text;
    json_t *obj;

    (void)state;
    bl_log_set_level(BL_LOG_WARN);
    assert_int_equal(bl_log_get_level(), BL_LOG_WARN);
    assert_false(bl_log_enabled(BL_LOG_DEBUG));
    assert_false(bl_log_enabled(BL_LOG_INFO));
    assert_true(bl_log_enabled(BL_LOG_WARN));
    assert_true(bl_log_enabled(BL_LOG_ERROR));

    g_side_effects = 0;
    bl_log(BL_LOG_INFO, "skipped %d", side_effect());
    bl_log_write(BL_LOG_DEBUG, NULL, 0, "skipped too");
    bl_debug("skipped %d", side_effect());
    assert_int_equal(g_side_effects, 0);        /* arguments not even evaluated */
    text = captured(&len);
    assert_int_equal(len, 0);
    free(text);

    bl_log(BL_LOG_WARN, "kept %d", side_effect());
    assert_int_equal(g_side_effects, 1);
    obj = only_line(NULL);
    assert_string_equal(str_of(obj, "msg"), "kept 7");
    assert_string_equal(str_of(obj, "level"), "warn");
    json_decref(obj);

    bl_log_set_level(BL_LOG_ERROR);
    bl_log(BL_LOG_WARN, "dropped");
    text = captured(&len);
    assert_int_equal(strstr(text, "dropped") == NULL, 1);
    free(text);

    /* out-of-range levels clamp instead of disabling or enabling everything */
    bl_log_set_level((enum bl_log_level)99);
    assert_int_equal(bl_log_get_level(), BL_LOG_ERROR);
    bl_log_set_level((enum bl_log_level)-5);
    assert_int_equal(bl_log_get_level(), BL_LOG_DEBUG);
}

static void
test_level_parse(void **state)
{
    enum bl_log_level l = BL_LOG_INFO;

    (void)state;
    assert_int_equal(bl_log_level_parse("debug", &l), 0);
    assert_int_equal(l, BL_LOG_DEBUG);
    assert_int_equal(bl_log_level_parse("INFO", &l), 0);
    assert_int_equal(l, BL_LOG_INFO);
    assert_int_equal(bl_log_level_parse("Warn", &l), 0);
    assert_int_equal(l, BL_LOG_WARN);
    assert_int_equal(bl_log_level_parse("warning", &l), 0);
    assert_int_equal(l, BL_LOG_WARN);
    assert_int_equal(bl_log_level_parse("error", &l), 0);
    assert_int_equal(l, BL_LOG_ERROR);
    assert_int_equal(bl_log_level_parse("fatal", &l), BL_EINVAL);
    assert_int_equal(bl_log_level_parse("", &l), BL_EINVAL);
    assert_int_equal(bl_log_level_parse("info ", &l), BL_EINVAL);
    assert_int_equal(bl_log_level_parse(NULL, &l), BL_EINVAL);
    assert_int_equal(l, BL_LOG_ERROR);          /* untouched on failure */
}

static void
test_component(void **state)
{
    char longname[200];
    json_t *obj;

    (void)state;
    bl_log_init(NULL);
    bl_log(BL_LOG_INFO, "a");
    obj = only_line(NULL);
    assert_string_equal(str_of(obj, "component"), "blogscale");
    json_decref(obj);

    reset_capture();
    memset(longname, 'c', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    bl_log_init(longname);
    bl_log(BL_LOG_INFO, "b");
    obj = only_line(NULL);
    assert_int_equal(strlen(str_of(obj, "component")), 64);
    json_decref(obj);
}

static void
test_errno_preserved(void **state)
{
    json_t *obj;

    (void)state;
    errno = ENOENT;
    bl_log(BL_LOG_INFO, "open failed: %s", strerror(errno));
    assert_int_equal(errno, ENOENT);
    obj = only_line(NULL);
    json_decref(obj);
}

static void
vlog_wrapper(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
vlog_wrapper(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    bl_log_vwrite(BL_LOG_ERROR, NULL, 0, fmt, ap);
    va_end(ap);
}

static void
test_vwrite_and_long_format(void **state)
{
    char mid[3000];
    json_t *obj;

    (void)state;
    /* longer than the stack buffer of the formatter, shorter than a line */
    memset(mid, 'm', sizeof(mid) - 1);
    mid[sizeof(mid) - 1] = '\0';
    vlog_wrapper("%s|%d", mid, 5);
    obj = only_line(NULL);
    assert_int_equal(strlen(str_of(obj, "msg")), sizeof(mid) - 1 + 2);
    assert_string_equal(str_of(obj, "msg") + sizeof(mid) - 1, "|5");
    assert_string_equal(str_of(obj, "level"), "error");
    json_decref(obj);
}

/* The single line, checked to fit and to carry the marker. */
static json_t *
truncated_line(void)
{
    size_t len;
    char *text = captured(&len);
    json_t *obj;
    json_error_t err;

    assert_true(len <= BL_LOG_LINE_MAX);
    assert_true(len > BL_LOG_LINE_MAX - 64);    /* cut, not dropped or emptied */
    assert_int_equal(text[len - 1], '\n');
    assert_ptr_equal(memchr(text, '\n', len), text + len - 1);
    assert_non_null(strstr(text, BL_LOG_TRUNC_MARK "\""));
    obj = json_loadb(text, len - 1, 0, &err);
    if (obj == NULL) {
        fail_msg("truncated line is not JSON: %s", err.text);
    }
    free(text);
    return obj;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void
test_truncation(void **state)
{
    size_t big = 100000;
    char *s = malloc(big + 1);
    json_t *obj;
    const char *msg;

    (void)state;
    assert_non_null(s);

    /* a long message */
    memset(s, 'a', big);
    s[big] = '\0';
    bl_log(BL_LOG_INFO, "%s", s);
    obj = truncated_line();
    msg = str_of(obj, "msg");
    assert_true(ends_with(msg, "a" BL_LOG_TRUNC_MARK));
    assert_int_equal(strspn(msg, "a"), strlen(msg) - strlen(BL_LOG_TRUNC_MARK));
    json_decref(obj);

    /* a long field of control characters (6 bytes each once escaped), other fields kept */
    reset_capture();
    memset(s, '\x01', big);
    {
        struct bl_log_field f[] = { BL_LOG_STR("blob", s), BL_LOG_INT("after", 5) };

        bl_logf(BL_LOG_INFO, f, 2, "short");
    }
    obj = truncated_line();
    assert_string_equal(str_of(obj, "msg"), "short");
    assert_true(ends_with(str_of(obj, "blob"), "\x01" BL_LOG_TRUNC_MARK));
    assert_int_equal(json_integer_value(json_object_get(obj, "after")), 5);
    json_decref(obj);

    /* multi-byte characters are cut on a boundary (jansson checks the UTF-8) */
    reset_capture();
    for (size_t i = 0; i + 3 <= big; i += 3) {
        memcpy(s + i, "\xe2\x82\xac", 3);       /* EURO SIGN */
        s[i + 3] = '\0';
    }
    {
        struct bl_log_field f[] = { BL_LOG_STR("euros", s) };

        bl_logf(BL_LOG_INFO, f, 1, "%s", s);
    }
    obj = truncated_line();
    assert_true(ends_with(str_of(obj, "msg"), "\xe2\x82\xac" BL_LOG_TRUNC_MARK) ||
                ends_with(str_of(obj, "euros"), "\xe2\x82\xac" BL_LOG_TRUNC_MARK));
    json_decref(obj);
    free(s);
}

/* ---- threads ----------------------------------------------------------------------- */

#define NTHREADS 8
#define NLINES 10000

struct reader {
    int fd;
    struct bl_buf data;
};

static void *
reader_main(void *arg)
{
    struct reader *r = arg;
    char chunk[65536];

    for (;;) {
        ssize_t n = read(r->fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (bl_buf_append(&r->data, chunk, (size_t)n) < 0) {
            break;
        }
    }
    return NULL;
}

static void *
writer_main(void *arg)
{
    long id = (long)(intptr_t)arg;
    char pad[6001];

    /* every 97th line is longer than PIPE_BUF, so the kernel may split its write */
    memset(pad, 'a' + (int)id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < NLINES; i++) {
        struct bl_log_field f[] = { BL_LOG_INT("thread", id), BL_LOG_INT("seq", i) };

        bl_logf(BL_LOG_INFO, f, 2, "line %d of thread %ld %s", i, id,
                i % 97 == 0 ? pad : "short");
    }
    return NULL;
}

static void
test_threads_never_interleave(void **state)
{
    int p[2];
    pthread_t writers[NTHREADS], rd;
    struct reader r;
    int next[NTHREADS] = { 0 };
    size_t nlines = 0;
    char *line, *end;

    (void)state;
    assert_int_equal(pipe(p), 0);
    r.fd = p[0];
    bl_buf_init(&r.data);
    assert_int_equal(pthread_create(&rd, NULL, reader_main, &r), 0);
    bl_log_set_fd(p[1]);
    for (long t = 0; t < NTHREADS; t++) {
        assert_int_equal(pthread_create(&writers[t], NULL, writer_main, (void *)(intptr_t)t), 0);
    }
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(writers[t], NULL);
    }
    bl_log_set_fd(g_fd);
    close(p[1]);
    pthread_join(rd, NULL);
    close(p[0]);

    assert_non_null(r.data.data);
    assert_int_equal(r.data.data[r.data.len - 1], '\n');
    for (line = r.data.data; line < r.data.data + r.data.len; line = end + 1) {
        json_error_t err;
        json_t *obj;
        long t, seq;

        end = memchr(line, '\n', (size_t)(r.data.data + r.data.len - line));
        assert_non_null(end);
        obj = json_loadb(line, (size_t)(end - line), 0, &err);
        if (obj == NULL) {
            fail_msg("line %zu is not JSON (%s): %.120s", nlines, err.text, line);
        }
        t = (long)json_integer_value(json_object_get(obj, "thread"));
        seq = (long)json_integer_value(json_object_get(obj, "seq"));
        assert_true(t >= 0 && t < NTHREADS);
        assert_int_equal(seq, next[t]);         /* each thread's lines in order, none lost */
        next[t]++;
        if (seq % 97 == 0) {
            assert_int_equal(strlen(str_of(obj, "msg")), 6000 + strlen("line  of thread 0 ") +
                             (size_t)snprintf(NULL, 0, "%ld", seq));
        }
        json_decref(obj);
        nlines++;
    }
    assert_int_equal(nlines, NTHREADS * NLINES);
    for (int t = 0; t < NTHREADS; t++) {
        assert_int_equal(next[t], NLINES);
    }
    bl_buf_deinit(&r.data);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_component, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vwrite_and_long_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_never_interleave, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

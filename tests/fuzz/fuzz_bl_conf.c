/*
 * libFuzzer target for the cluster file loader (bl_conf_load_buffer: libyaml events plus
 * the key tables and validators of bl_conf.c). The input is the YAML file, as is (not
 * NUL-terminated: ASan catches any read past its end). Seeds: tests/fuzz/corpus/conf/.
 *
 * Checks, besides ASan/UBSan and LeakSanitizer (bl_conf_destroy + free(err) must release
 * everything, on success and on every error path):
 * - exactly one of (config, error) comes back;
 * - the error is one non-empty line that starts with the name given for the file;
 * - a loaded config respects the documented bounds: node and listener counts, node names
 *   [A-Za-z0-9_.-]{1,64} and unique, every string that must be set is set, warnings are
 *   single lines;
 * - loading the same bytes again gives the same outcome and the same error text (no
 *   hidden global state).
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.yaml"

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_bl_conf: invariant failed: %s (line %d)\n", #cond, \
                    __LINE__);                                                        \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static void
check_line(const char *s)
{
    CHECK(s != NULL);
    CHECK(s[0] != '\0');
    CHECK(strchr(s, '\n') == NULL);
}

static int
valid_node_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

static void
check_conf(const struct bl_conf *c)
{
    CHECK(c->nnodes <= BL_CONF_MAX_NODES);
    CHECK(c->nnodes == 0 || c->nodes != NULL);
    for (size_t i = 0; i < c->nnodes; i++) {
        CHECK(c->nodes[i].name != NULL && valid_node_name(c->nodes[i].name));
        CHECK(c->nodes[i].addr != NULL && c->nodes[i].addr[0] != '\0');
        /* quadratic, but BL_CONF_MAX_NODES bounds it and inputs are small */
        for (size_t j = 0; j < i && i < 256; j++) {
            CHECK(strcmp(c->nodes[i].name, c->nodes[j].name) != 0);
        }
    }
    CHECK(c->lb.nlisteners <= BL_CONF_MAX_LISTENERS);
    CHECK(c->lb.nlisteners == 0 || c->lb.listeners != NULL);
    for (size_t i = 0; i < c->lb.nlisteners; i++) {
        CHECK(c->lb.listeners[i].bind != NULL && c->lb.listeners[i].bind[0] != '\0');
        CHECK(c->lb.listeners[i].tls.nsni == 0 || c->lb.listeners[i].tls.sni != NULL);
    }
    CHECK(c->lb.admin.bind != NULL);
    CHECK(c->lb.health.path != NULL && c->lb.health.path[0] == '/');
    CHECK(c->node.nasset_types == 0 || c->node.asset_types != NULL);
    for (size_t i = 0; i < c->node.nasset_types; i++) {
        CHECK(c->node.asset_types[i] != NULL);
    }
    CHECK(c->nwarnings == 0 || c->warnings != NULL);
    for (size_t i = 0; i < c->nwarnings; i++) {
        check_line(c->warnings[i]);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *err = NULL;
    char *err2 = NULL;
    struct bl_conf *c;
    struct bl_conf *c2;

    c = bl_conf_load_buffer((const char *)data, size, NAME, &err);
    CHECK((c == NULL) != (err == NULL));
    if (c == NULL) {
        check_line(err);
        CHECK(strncmp(err, NAME, strlen(NAME)) == 0 && err[strlen(NAME)] == ':');
    } else {
        check_conf(c);
    }

    c2 = bl_conf_load_buffer((const char *)data, size, NAME, &err2);
    CHECK((c2 == NULL) == (c == NULL));
    if (err != NULL) {
        CHECK(err2 != NULL && strcmp(err, err2) == 0);
    }
    if (c2 != NULL) {
        CHECK(c2->nnodes == c->nnodes && c2->lb.nlisteners == c->lb.nlisteners);
        CHECK(c2->nwarnings == c->nwarnings);
    }

    bl_conf_destroy(c2);
    free(err2);
    bl_conf_destroy(c);
    free(err);
    return 0;
}

#include "ctl_ctld.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bl/bl_err.h"
#include "bl/bl_util.h"

void
ctld_state_init(struct ctld_state *st)
{
    memset(st, 0, sizeof(*st));
}

void
ctld_state_deinit(struct ctld_state *st)
{
    free(st->v);
    memset(st, 0, sizeof(*st));
}

struct ctld_node *
ctld_state_find(struct ctld_state *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->v[i].name, name) == 0) {
            return &st->v[i];
        }
    }
    return NULL;
}

struct ctld_node *
ctld_state_put(struct ctld_state *st, const char *name, const char *addr, const char *phase,
               uint64_t since_ms)
{
    struct ctld_node *e = ctld_state_find(st, name);

    if (e == NULL) {
        if (st->n == st->cap) {
            st->cap = st->cap ? st->cap * 2 : 8;
            st->v = bl_xrealloc(st->v, st->cap * sizeof(*st->v));
        }
        e = &st->v[st->n++];
        memset(e, 0, sizeof(*e));
        snprintf(e->name, sizeof(e->name), "%s", name);
        e->since_ms = since_ms;
    }
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    snprintf(e->phase, sizeof(e->phase), "%s", phase);
    return e;
}

void
ctld_state_del(struct ctld_state *st, const char *name)
{
    struct ctld_node *e = ctld_state_find(st, name);

    if (e != NULL) {
        size_t i = (size_t)(e - st->v);

        memmove(&st->v[i], &st->v[i + 1], (st->n - i - 1) * sizeof(*st->v));
        st->n--;
    }
}

int
ctld_state_load(const char *path, struct ctld_state *st, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc, *arr, *n;
    size_t i;

    st->n = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        return 0;
    }
    doc = json_load_file(path, 0, &je);
    if (doc == NULL) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return BL_EPARSE;
    }
    arr = json_object_get(doc, "nodes");
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "%s: no \"nodes\" array", path);
        json_decref(doc);
        return BL_EPARSE;
    }
    json_array_foreach(arr, i, n) {
        const char *name = json_string_value(json_object_get(n, "name"));
        const char *addr = json_string_value(json_object_get(n, "addr"));
        const char *phase = json_string_value(json_object_get(n, "phase"));
        json_int_t since = json_integer_value(json_object_get(n, "since"));

        if (name == NULL || addr == NULL || phase == NULL || strlen(name) >= CTLD_NAME_MAX
            || strlen(addr) >= CTLD_ADDR_MAX || strlen(phase) >= CTLD_PHASE_MAX) {
            snprintf(err, errlen, "%s: nodes[%zu]: needs string name, addr and phase", path, i);
            json_decref(doc);
            st->n = 0;
            return BL_EPARSE;
        }
        ctld_state_put(st, name, addr, phase, since > 0 ? (uint64_t)since : 0);
    }
    json_decref(doc);
    return 0;
}

int
ctld_state_save(const char *path, const struct ctld_state *st, const char *cluster, char *err,
                size_t errlen)
{
    json_t *doc = json_object(), *arr = json_array();
    char tmp[4200];
    char *text;
    int fd, rc = 0;
    size_t len;

    json_object_set_new(doc, "version", json_integer(1));
    json_object_set_new(doc, "cluster", json_string(cluster != NULL ? cluster : ""));
    for (size_t i = 0; i < st->n; i++) {
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:I}", "name", st->v[i].name,
                                             "addr", st->v[i].addr, "phase", st->v[i].phase,
                                             "since", (json_int_t)st->v[i].since_ms));
    }
    json_object_set_new(doc, "nodes", arr);
    text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
        free(text);
        snprintf(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        free(text);
        return rc;
    }
    len = strlen(text);
    text[len] = '\0';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        snprintf(err, errlen, "rename %s: %s", path, strerror(errno));
        unlink(tmp);
        free(text);
        return rc;
    }
    /* the rename itself reaches the disk with the directory */
    {
        char dir[4200];
        int dfd;

        snprintf(dir, sizeof(dir), "%s", path);
        dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    free(text);
    return 0;

fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    free(text);
    return rc;
}

void
ctld_state_default_path(const struct bl_conf *conf, char *out, size_t outlen)
{
    if (conf->autoscale.state_file != NULL) {
        snprintf(out, outlen, "%s", conf->autoscale.state_file);
        return;
    }
    if (conf->node.store.driver == BL_STORE_LMDB && conf->node.store.path != NULL) {
        char copy[4096];
        size_t n;

        snprintf(copy, sizeof(copy), "%s", conf->node.store.path);
        n = strlen(copy);
        while (n > 1 && copy[n - 1] == '/') {
            copy[--n] = '\0';
        }
        snprintf(out, outlen, "%s/ctld.json", dirname(copy));
        return;
    }
    snprintf(out, outlen, "/var/lib/blogscale/ctld.json");
}

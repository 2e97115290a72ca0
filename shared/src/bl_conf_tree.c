#include "bl_conf_tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "bl/bl_err.h"
#include "bl/bl_util.h"

struct builder {
    struct bl_conf_yn *root;
    struct bl_conf_yn *stack[BL_CONF_TREE_MAX_DEPTH];   /* open mappings/sequences */
    int depth;
    size_t nnodes;
    int ndocs;
    struct bl_conf_tree_err *err;
};

void
bl_conf_tree_sanitize(char *buf, size_t size, const char *s, size_t max)
{
    size_t len = strlen(buf);
    size_t i;

    if (size == 0 || len >= size - 1) {
        return;
    }
    for (i = 0; s[i] != '\0' && i < max && len + 1 < size; i++) {
        unsigned char ch = (unsigned char)s[i];

        buf[len++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (s[i] != '\0') {
        for (int k = 0; k < 3 && len + 1 < size; k++) {
            buf[len++] = '.';
        }
    }
    buf[len] = '\0';
}

void
bl_conf_tree_free(struct bl_conf_yn *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        bl_conf_tree_free(n->kids[i]);
    }
    free(n->kids);
    free(n->value);
    free(n);
}

const struct bl_conf_yn *
bl_conf_tree_get(const struct bl_conf_yn *map, const char *key)
{
    if (map == NULL || map->type != BL_CONF_YN_MAP) {
        return NULL;
    }
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct bl_conf_yn *k = map->kids[i];

        if (k->type == BL_CONF_YN_SCALAR && strcmp(k->value, key) == 0) {
            return map->kids[i + 1];
        }
    }
    return NULL;
}

/* Appends one path component ("key" or "[i]") to <path>. */
static void
path_add_key(char *path, size_t size, const struct bl_conf_yn *key)
{
    size_t len = strlen(path);

    if (len > 0 && len + 1 < size) {
        path[len++] = '.';
        path[len] = '\0';
    }
    if (key->type == BL_CONF_YN_SCALAR) {
        bl_conf_tree_sanitize(path, size, key->value, 64);
    } else {
        bl_conf_tree_sanitize(path, size, "?", 1);
    }
}

static void
path_add_index(char *path, size_t size, size_t i)
{
    size_t len = strlen(path);

    snprintf(path + len, size - len, "[%zu]", i);
}

/* The dotted path of the innermost key being parsed, from the open containers. */
static void
builder_path(const struct builder *b, char *path, size_t size)
{
    path[0] = '\0';
    for (int i = 0; i < b->depth; i++) {
        const struct bl_conf_yn *c = b->stack[i];
        bool inner = i + 1 == b->depth;

        if (c->type == BL_CONF_YN_MAP) {
            if (c->nkids == 0) {
                break;
            }
            if (c->nkids % 2 == 1) {
                /* a key waits for its value (or is itself the open container) */
                if (!inner) {
                    break;      /* a complex key: stop at the mapping */
                }
                path_add_key(path, size, c->kids[c->nkids - 1]);
                break;
            }
            if (inner) {
                break;
            }
            path_add_key(path, size, c->kids[c->nkids - 2]);
        } else {
            if (inner || c->nkids == 0) {
                break;
            }
            path_add_index(path, size, c->nkids - 1);
        }
    }
}

static int
builder_fail(struct builder *b, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
builder_fail(struct builder *b, unsigned line, unsigned col, const char *fmt, ...)
{
    va_list ap;

    b->err->line = line;
    b->err->col = col;
    builder_path(b, b->err->path, sizeof(b->err->path));
    va_start(ap, fmt);
    vsnprintf(b->err->msg, sizeof(b->err->msg), fmt, ap);
    va_end(ap);
    return BL_EPARSE;
}

/* Attaches a new node to the innermost open container (or makes it the root). */
static int
builder_add(struct builder *b, struct bl_conf_yn *n)
{
    struct bl_conf_yn *parent;

    if (b->depth == 0) {
        BL_BUG_ON(b->root != NULL);
        b->root = n;
        return 0;
    }
    parent = b->stack[b->depth - 1];
    if (parent->nkids == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 8;
        parent->kids = bl_xrealloc(parent->kids, parent->cap * sizeof(*parent->kids));
    }
    parent->kids[parent->nkids++] = n;
    return 0;
}

static struct bl_conf_yn *
node_new(enum bl_conf_yn_type type, const yaml_event_t *ev)
{
    struct bl_conf_yn *n = bl_xcalloc(1, sizeof(*n));

    n->type = type;
    n->line = (unsigned)ev->start_mark.line + 1;
    n->col = (unsigned)ev->start_mark.column + 1;
    return n;
}

/* Rejects what the schema never needs: anchors and tags. */
static int
check_anchor_tag(struct builder *b, const yaml_event_t *ev, const yaml_char_t *anchor,
                 const yaml_char_t *tag)
{
    char shown[80] = "";
    unsigned line = (unsigned)ev->start_mark.line + 1;
    unsigned col = (unsigned)ev->start_mark.column + 1;

    if (anchor != NULL) {
        bl_conf_tree_sanitize(shown, sizeof(shown), (const char *)anchor, 40);
        return builder_fail(b, line, col,
                            "anchors (&%s) are not supported; write the value out", shown);
    }
    if (tag != NULL) {
        bl_conf_tree_sanitize(shown, sizeof(shown), (const char *)tag, 40);
        return builder_fail(b, line, col, "YAML tags (%s) are not supported", shown);
    }
    return 0;
}

static int
builder_event(struct builder *b, const yaml_event_t *ev, bool *done)
{
    struct bl_conf_yn *n;
    unsigned line = (unsigned)ev->start_mark.line + 1;
    unsigned col = (unsigned)ev->start_mark.column + 1;
    int rc;

    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (b->ndocs++ > 0) {
            return builder_fail(b, line, col,
                                "a second YAML document; the cluster file holds exactly one");
        }
        return 0;
    case YAML_ALIAS_EVENT: {
        char shown[80] = "";

        bl_conf_tree_sanitize(shown, sizeof(shown), (const char *)ev->data.alias.anchor, 40);
        return builder_fail(b, line, col,
                            "aliases (*%s) are not supported; write the value out", shown);
    }
    case YAML_SCALAR_EVENT:
        rc = check_anchor_tag(b, ev, ev->data.scalar.anchor, ev->data.scalar.tag);
        if (rc < 0) {
            return rc;
        }
        if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) != NULL) {
            return builder_fail(b, line, col, "strings must not contain NUL characters");
        }
        if (++b->nnodes > BL_CONF_TREE_MAX_NODES) {
            return builder_fail(b, line, col, "more than %d YAML nodes",
                                BL_CONF_TREE_MAX_NODES);
        }
        n = node_new(BL_CONF_YN_SCALAR, ev);
        n->len = ev->data.scalar.length;
        n->value = bl_xmalloc(n->len + 1);
        memcpy(n->value, ev->data.scalar.value, n->len);
        n->value[n->len] = '\0';
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return builder_add(b, n);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (ev->type == YAML_SEQUENCE_START_EVENT) {
            rc = check_anchor_tag(b, ev, ev->data.sequence_start.anchor,
                                  ev->data.sequence_start.tag);
        } else {
            rc = check_anchor_tag(b, ev, ev->data.mapping_start.anchor,
                                  ev->data.mapping_start.tag);
        }
        if (rc < 0) {
            return rc;
        }
        if (b->depth >= BL_CONF_TREE_MAX_DEPTH) {
            return builder_fail(b, line, col, "nesting deeper than %d levels",
                                BL_CONF_TREE_MAX_DEPTH);
        }
        if (++b->nnodes > BL_CONF_TREE_MAX_NODES) {
            return builder_fail(b, line, col, "more than %d YAML nodes",
                                BL_CONF_TREE_MAX_NODES);
        }
        n = node_new(ev->type == YAML_SEQUENCE_START_EVENT ? BL_CONF_YN_SEQ : BL_CONF_YN_MAP,
                     ev);
        builder_add(b, n);
        b->stack[b->depth++] = n;
        return 0;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        BL_BUG_ON(b->depth == 0);
        b->depth--;
        return 0;
    }
    return 0;
}

/* 1-based line:column of byte <offset> in <buf> (for reader errors, which have no mark). */
static void
offset_to_linecol(const char *buf, size_t len, size_t offset, unsigned *line, unsigned *col)
{
    unsigned l = 1;
    unsigned c = 1;

    for (size_t i = 0; i < offset && i < len; i++) {
        if (buf[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int
syntax_error(struct builder *b, const yaml_parser_t *p, const char *buf, size_t len)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    unsigned line;
    unsigned col;

    if (p->error == YAML_READER_ERROR) {
        int rc;

        /* The reader decodes ahead of the parser: the open keys say nothing here. */
        offset_to_linecol(buf, len, p->problem_offset, &line, &col);
        if (p->problem_value != -1) {
            rc = builder_fail(b, line, col, "invalid text: %s (byte 0x%02x)", problem,
                              (unsigned)p->problem_value & 0xff);
        } else {
            rc = builder_fail(b, line, col, "invalid text: %s", problem);
        }
        snprintf(b->err->path, sizeof(b->err->path), "(file)");
        return rc;
    }
    if (p->error == YAML_MEMORY_ERROR) {
        return builder_fail(b, 1, 1, "out of memory while parsing YAML");
    }
    line = (unsigned)p->problem_mark.line + 1;
    col = (unsigned)p->problem_mark.column + 1;
    if (p->context != NULL) {
        return builder_fail(b, line, col, "YAML syntax error: %s (%s at %u:%u)", problem,
                            p->context, (unsigned)p->context_mark.line + 1,
                            (unsigned)p->context_mark.column + 1);
    }
    return builder_fail(b, line, col, "YAML syntax error: %s", problem);
}

int
bl_conf_tree_parse(const char *buf, size_t len, struct bl_conf_yn **root,
                   struct bl_conf_tree_err *err)
{
    yaml_parser_t parser;
    struct builder b;
    bool done = false;
    int rc = 0;

    memset(&b, 0, sizeof(b));
    memset(err, 0, sizeof(*err));
    b.err = err;
    *root = NULL;
    if (!yaml_parser_initialize(&parser)) {
        return builder_fail(&b, 1, 1, "out of memory while parsing YAML");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(buf ? buf : ""),
                                 buf ? len : 0);
    while (!done) {
        yaml_event_t ev;

        if (!yaml_parser_parse(&parser, &ev)) {
            rc = syntax_error(&b, &parser, buf ? buf : "", buf ? len : 0);
            goto fail;
        }
        rc = builder_event(&b, &ev, &done);
        yaml_event_delete(&ev);
        if (rc < 0) {
            goto fail;
        }
    }
    yaml_parser_delete(&parser);
    *root = b.root;
    return 0;

fail:
    yaml_parser_delete(&parser);
    bl_conf_tree_free(b.root);
    return rc;
}

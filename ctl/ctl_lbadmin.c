#include "ctl_lbadmin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_util.h"
#include "ctl_cmd.h"
#include "ctl_http.h"

void
ctl_admin_resp_init(struct ctl_admin_resp *r)
{
    memset(r, 0, sizeof(*r));
    bl_buf_init(&r->body);
}

void
ctl_admin_resp_deinit(struct ctl_admin_resp *r)
{
    json_decref(r->json);
    r->json = NULL;
    bl_buf_deinit(&r->body);
}

int
ctl_admin_call(const char *addr, const char *token, const char *method, const char *path,
               json_t *body, int timeout_ms, struct ctl_admin_resp *r, char *err,
               size_t errlen)
{
    char hp[300];
    struct ctl_http_client c;
    struct ctl_http_resp resp;
    struct bl_buf auth;
    const char *hdrs[3] = { NULL, NULL, NULL };
    char *payload = NULL;
    size_t nh = 0;
    int rc;

    json_decref(r->json);
    r->json = NULL;
    r->status = 0;
    bl_buf_reset(&r->body);
    ctl_connect_addr(addr, hp, sizeof(hp));
    bl_buf_init(&auth);
    if (token != NULL) {
        bl_buf_printf(&auth, "Authorization: Bearer %s", token);
        hdrs[nh++] = auth.data;
    }
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        hdrs[nh++] = "Content-Type: application/json";
    }
    ctl_http_client_init(&c, hp, timeout_ms);
    ctl_http_resp_init(&resp);
    rc = ctl_http_request(&c, method, path, hdrs, payload, payload != NULL ? strlen(payload) : 0,
                          &resp);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", hp, c.error);
    } else {
        r->status = resp.status;
        if (resp.body.len > 0) {
            bl_buf_append(&r->body, resp.body.data, resp.body.len);
            r->json = json_loadb(resp.body.data, resp.body.len, 0, NULL);
        }
    }
    ctl_http_resp_deinit(&resp);
    ctl_http_client_deinit(&c);
    bl_buf_deinit(&auth);
    free(payload);
    return rc;
}

const char *
ctl_admin_code(const struct ctl_admin_resp *r)
{
    const char *code = json_string_value(json_object_get(json_object_get(r->json, "error"),
                                                         "code"));

    return code != NULL ? code : "";
}

void
ctl_admin_describe(const struct ctl_admin_resp *r, char *out, size_t outlen)
{
    json_t *e = json_object_get(r->json, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));

    if (r->status == 401 || r->status == 403) {
        snprintf(out, outlen, "%d: the LB refused the admin token: set BLOGSCALE_ADMIN_TOKEN "
                 "(or --admin-token) to the token whose SHA-256 is lb.admin.token_sha256",
                 r->status);
    } else if (code != NULL) {
        snprintf(out, outlen, "%d %s%s%s", r->status, code, msg != NULL ? ": " : "",
                 msg != NULL ? msg : "");
    } else {
        snprintf(out, outlen, "%d %.*s", r->status,
                 (int)BL_MIN(r->body.len, (size_t)200), r->body.data != NULL ? r->body.data : "");
    }
}

json_t *
ctl_admin_find_node(json_t *nodes_doc, const char *name)
{
    json_t *arr = json_object_get(nodes_doc, "nodes"), *n;
    size_t i;

    json_array_foreach(arr, i, n) {
        const char *nm = json_string_value(json_object_get(n, "name"));

        if (nm != NULL && strcmp(nm, name) == 0) {
            return n;
        }
    }
    return NULL;
}

/*
 * blogctl: the admin CLI. Global options may come anywhere before "--":
 *   -c FILE, --config FILE, --config=FILE, --json, -h/--help, -V/--version,
 *   --lb-admin HOST:PORT (repeatable), --admin-token TOKEN
 * Exit codes: 0 ok, 1 operational failure, 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_conf.h"
#include "bl/bl_util.h"
#include "ctl_cmd.h"

static void
main_usage(FILE *f)
{
    fprintf(f,
            "usage: blogctl [-c FILE] [--json] COMMAND [ARGS...]\n"
            "\n"
            "The admin CLI of blogscale.\n"
            "\n"
            "Commands:\n");
    for (const struct ctl_cmd *c = ctl_cmds; c->name != NULL; c++) {
        fprintf(f, "  %-8s %s\n", c->name, c->summary);
    }
    fprintf(f,
            "\n"
            "Options:\n"
            "  -c, --config FILE  cluster file (default: $BLOGSCALE_CONFIG, else %s)\n"
            "  --json             machine-readable output (one JSON document on stdout)\n"
            "  --lb-admin ADDR    an LB admin address to use instead of lb.admin.bind\n"
            "                     (repeat for several LBs: nodes, ring verify, route)\n"
            "  --admin-token TOK  the LB admin token (default: $BLOGSCALE_ADMIN_TOKEN, or the\n"
            "                     demo admin token when the file holds its digest)\n"
            "  -h, --help         this help; `blogctl COMMAND --help` for a command\n"
            "  -V, --version      print the version\n"
            "\n"
            "Exit codes: 0 success, 1 operational failure, 2 usage error.\n"
            "Start here: blogctl -c examples/local.yaml up\n",
            BL_CONF_DEFAULT_PATH);
}

static const struct ctl_cmd *
find_cmd(const char *name)
{
    for (const struct ctl_cmd *c = ctl_cmds; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

static int
unknown_cmd(const char *name)
{
    const struct ctl_cmd *best = NULL;
    int best_d = 100;

    for (const struct ctl_cmd *c = ctl_cmds; c->name != NULL; c++) {
        int d = ctl_edit_distance(name, c->name);

        if (strncmp(c->name, name, strlen(name)) == 0 && strlen(name) >= 2) {
            d = 1;                                  /* a prefix: "stat" -> "status" */
        }
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    fprintf(stderr, "blogctl: unknown command '%s'", name);
    if (best != NULL && best_d <= 2) {
        fprintf(stderr, "; did you mean '%s'?", best->name);
    }
    fputs("\n\n", stderr);
    main_usage(stderr);
    return CTL_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
    struct ctl_ctx ctx;
    char **rest = bl_xcalloc((size_t)argc + 1, sizeof(*rest));
    const char **lbs = bl_xcalloc((size_t)argc + 1, sizeof(*lbs));
    int nrest = 0, rc;
    bool help = false, version = false, dashdash = false;
    const struct ctl_cmd *cmd;

    memset(&ctx, 0, sizeof(ctx));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (dashdash) {
            rest[nrest++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = true;
            rest[nrest++] = argv[i];
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "blogctl: %s needs a FILE\n", a);
                free(rest);
                free(lbs);
                return CTL_EXIT_USAGE;
            }
            ctx.conf_path = argv[++i];
            ctx.conf_given = true;
        } else if (strncmp(a, "--config=", 9) == 0) {
            ctx.conf_path = a + 9;
            ctx.conf_given = true;
        } else if (strcmp(a, "--json") == 0) {
            ctx.json = true;
        } else if (strcmp(a, "--lb-admin") == 0 || strcmp(a, "--admin-token") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "blogctl: %s needs a value\n", a);
                free(rest);
                free(lbs);
                return CTL_EXIT_USAGE;
            }
            if (strcmp(a, "--lb-admin") == 0) {
                lbs[ctx.nlbs++] = argv[++i];
            } else {
                setenv("BLOGSCALE_ADMIN_TOKEN", argv[++i], 1);
            }
        } else if ((strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) && nrest == 0) {
            help = true;
        } else if ((strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) && nrest == 0) {
            version = true;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (version) {
        printf("blogctl %s\n", BLOG_VERSION);
        free(rest);
        free(lbs);
        return CTL_EXIT_OK;
    }
    if (help) {
        if (nrest > 0 && find_cmd(rest[0]) != NULL) {
            rc = ctl_usage(rest[0], true);
        } else {
            main_usage(stdout);
            rc = CTL_EXIT_OK;
        }
        free(rest);
        free(lbs);
        return rc;
    }
    if (nrest == 0) {
        main_usage(stderr);
        free(rest);
        free(lbs);
        return CTL_EXIT_USAGE;
    }
    if (rest[0][0] == '-') {
        fprintf(stderr, "blogctl: unknown option '%s'\n\n", rest[0]);
        main_usage(stderr);
        free(rest);
        free(lbs);
        return CTL_EXIT_USAGE;
    }
    cmd = find_cmd(rest[0]);
    if (cmd == NULL) {
        rc = unknown_cmd(rest[0]);
        free(rest);
        free(lbs);
        return rc;
    }
    if (ctx.conf_path == NULL) {
        ctx.conf_path = bl_conf_default_path();
    }
    ctx.lbs = lbs;
    ctx.argc = nrest - 1;
    ctx.argv = rest + 1;
    rc = cmd->run(&ctx);
    fflush(stdout);
    free(rest);
    free(lbs);
    return rc;
}

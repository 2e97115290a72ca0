/*
 * blog-ctld --config FILE [--lb-admin HOST:PORT]... [--admin-token TOKEN]
 *           [--check-config] [--version] [--help]
 * The autoscaling daemon (ctl_ctld.h, docs/SCALING-CTLD.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl/bl_conf.h"
#include "bl/bl_net.h"
#include "bl/bl_util.h"
#include "ctl_ctld.h"

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: blog-ctld [--config FILE] [--lb-admin HOST:PORT]... [--admin-token TOKEN]\n"
            "                 [--check-config] [--version] [--help]\n"
            "\n"
            "The autoscaling daemon of blogscale: every autoscale.interval it reads the LBs'\n"
            "request counters, computes the desired node count and (when it leads) runs the\n"
            "autoscale.scale_up / scale_down hooks and changes the LBs' node sets through their\n"
            "admin API. Without both hooks it only reports what it would do.\n"
            "\n"
            "  -c, --config FILE    cluster file (default: $BLOGSCALE_CONFIG, else %s)\n"
            "      --lb-admin ADDR  an LB admin address (repeat for several LBs; default:\n"
            "                       the file's lb.admin.bind)\n"
            "      --admin-token T  the LB admin token (default: $BLOGSCALE_ADMIN_TOKEN, or the\n"
            "                       demo token when the file holds its digest)\n"
            "      --check-config   validate the file and exit 0/1\n"
            "  -V, --version        print the version\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop (the step under way is abandoned where the state\n"
            "file records it and finished at the next start), SIGHUP reloads the autoscale\n"
            "parameters. A file without autoscale: makes it exit 0 at once.\n"
            "Reference: docs/SCALING-CTLD.md.\n",
            BL_CONF_DEFAULT_PATH);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "lb-admin", required_argument, NULL, 'l' },
        { "admin-token", required_argument, NULL, 't' },
        { "check-config", no_argument, NULL, 'C' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct ctld_opts o;
    const char **lbs = bl_xcalloc((size_t)argc + 1, sizeof(*lbs));
    bool check = false;
    int c, rc;

    memset(&o, 0, sizeof(o));
    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o.conf_path = optarg;
            break;
        case 'l': {
            struct sockaddr_storage ss;
            socklen_t sl;

            if (bl_net_parse_addr(optarg, &ss, &sl) != 0) {
                fprintf(stderr, "blog-ctld: --lb-admin %s: expected HOST:PORT\n", optarg);
                free(lbs);
                return 2;
            }
            lbs[o.nlbs++] = optarg;
            break;
        }
        case 't':
            o.admin_token = optarg;
            break;
        case 'C':
            check = true;
            break;
        case 'V':
            printf("blog-ctld %s\n", BLOG_VERSION);
            free(lbs);
            return 0;
        case 'h':
            usage(stdout);
            free(lbs);
            return 0;
        default:
            usage(stderr);
            free(lbs);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "blog-ctld: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        free(lbs);
        return 2;
    }
    if (o.conf_path == NULL) {
        o.conf_path = bl_conf_default_path();
    }
    o.lbs = o.nlbs > 0 ? lbs : NULL;
    if (check) {
        char *err = NULL;
        struct bl_conf *conf = bl_conf_load(o.conf_path, &err);

        if (conf == NULL) {
            fprintf(stderr, "%s\n", err != NULL ? err : "blog-ctld: cannot load the config");
            free(err);
            free(lbs);
            return 1;
        }
        if (!conf->autoscale.enabled) {
            printf("%s: OK (no autoscale: section: blog-ctld would have nothing to do)\n",
                   conf->file != NULL ? conf->file : o.conf_path);
        } else {
            printf("%s: OK for blog-ctld (min %u, max %u, %s)\n",
                   conf->file != NULL ? conf->file : o.conf_path, conf->autoscale.min,
                   conf->autoscale.max,
                   conf->autoscale.scale_up != NULL && conf->autoscale.scale_down != NULL
                       ? "hooks set" : "report-only: no scale_up/scale_down hooks");
        }
        bl_conf_destroy(conf);
        free(lbs);
        return 0;
    }
    rc = ctld_run(&o);
    free(lbs);
    return rc;
}

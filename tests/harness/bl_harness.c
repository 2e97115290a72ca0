#include "bl_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define MAX_CHILDREN 256
#define MAX_TEMPDIRS 64

static pid_t children[MAX_CHILDREN];
static size_t nchildren;
static char *tempdirs[MAX_TEMPDIRS];
static size_t ntempdirs;
static int registered;

static void
register_cleanup(void)
{
    if (!registered) {
        registered = 1;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        signal(SIGPIPE, SIG_IGN);
        atexit(bl_h_cleanup);
    }
}

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int
bl_h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int port;

    if (fd < 0) {
        abort();
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        abort();
    }
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

char *
bl_h_tempdir(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    char path[512];

    register_cleanup();
    snprintf(path, sizeof(path), "%s/%s.XXXXXX", base ? base : "/tmp", prefix);
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        abort();
    }
    if (ntempdirs < MAX_TEMPDIRS) {
        tempdirs[ntempdirs++] = strdup(path);
    }
    return strdup(path);
}

const char *
bl_h_bin(const char *env_name)
{
    const char *v = getenv(env_name);

    if (v == NULL || access(v, X_OK) != 0) {
        fprintf(stderr, "harness: %s is not set to an executable (run through ctest)\n",
                env_name);
        abort();
    }
    return v;
}

void
bl_h_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

pid_t
bl_h_spawn(char *const argv[], const char *log_path)
{
    pid_t pid;

    register_cleanup();
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        abort();
    }
    if (pid == 0) {
        setpgid(0, 0);
        if (log_path != NULL) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    if (nchildren < MAX_CHILDREN) {
        children[nchildren++] = pid;
    }
    return pid;
}

static void
forget_child(pid_t pid)
{
    for (size_t i = 0; i < nchildren; i++) {
        if (children[i] == pid) {
            children[i] = children[--nchildren];
            return;
        }
    }
}

int
bl_h_stop(pid_t pid, int sig, int timeout_ms)
{
    int status;

    if (kill(pid, sig) < 0 && errno == ESRCH) {
        /* already gone: reap it if it is ours */
    }
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            forget_child(pid);
            return status;
        }
        if (r < 0) {
            forget_child(pid);
            return -1;
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    if (waitpid(pid, &status, 0) == pid) {
        forget_child(pid);
        return status;
    }
    forget_child(pid);
    return -1;
}

bool
bl_h_alive(pid_t pid, int *status)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);

    if (r == 0) {
        return true;
    }
    if (r == pid) {
        forget_child(pid);
        if (status != NULL) {
            *status = st;
        }
    }
    return false;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
bl_h_cleanup(void)
{
    while (nchildren > 0) {
        pid_t pid = children[nchildren - 1];
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        nchildren--;
    }
    if (getenv("BLOG_KEEP_TMP") == NULL) {
        for (size_t i = 0; i < ntempdirs; i++) {
            nftw(tempdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            free(tempdirs[i]);
        }
    }
    ntempdirs = 0;
}

bool
bl_h_wait_http(const char *url, long status, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        struct bl_h_resp *r = bl_h_http("GET", url, NULL, NULL, 0);
        bool ok = r->status == status;
        bl_h_resp_free(r);
        if (ok) {
            return true;
        }
        sleep_ms(50);
    }
    return false;
}

struct growbuf {
    char *p;
    size_t len;
};

static size_t
collect(char *data, size_t size, size_t nmemb, void *arg)
{
    struct growbuf *g = arg;
    size_t n = size * nmemb;
    char *np = realloc(g->p, g->len + n + 1);

    if (np == NULL) {
        return 0;
    }
    g->p = np;
    memcpy(g->p + g->len, data, n);
    g->len += n;
    g->p[g->len] = '\0';
    return n;
}

/* Keeps only the last header block (after 100-continue or redirects). */
static size_t
collect_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct growbuf *g = arg;
    size_t n = size * nmemb;

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        g->len = 0;
    }
    return collect(data, size, nmemb, arg);
}

struct bl_h_resp *
bl_h_http(const char *method, const char *url, const char *const *headers,
          const void *body, size_t body_len)
{
    struct bl_h_resp *r = calloc(1, sizeof(*r));
    struct growbuf b = { 0 }, h = { 0 };
    struct curl_slist *hl = NULL;
    CURL *c;
    CURLcode rc;

    register_cleanup();
    c = curl_easy_init();
    if (r == NULL || c == NULL) {
        abort();
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->error);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    hl = curl_slist_append(hl, "Expect:");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, headers[i]);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    } else if (r->error[0] == '\0') {
        snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(rc));
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r->body = b.p ? b.p : strdup("");
    r->body_len = b.len;
    r->headers = h.p ? h.p : strdup("");
    return r;
}

void
bl_h_resp_free(struct bl_h_resp *r)
{
    if (r == NULL) {
        return;
    }
    free(r->body);
    free(r->headers);
    free(r);
}

char *
bl_h_header(const struct bl_h_resp *r, const char *name)
{
    size_t nlen = strlen(name);
    const char *line = r->headers;

    while (line != NULL && *line != '\0') {
        const char *eol = strstr(line, "\r\n");
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            const char *end = line + llen;
            while (v < end && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (end > v && (end[-1] == ' ' || end[-1] == '\t')) {
                end--;
            }
            return strndup(v, (size_t)(end - v));
        }
        line = eol ? eol + 2 : NULL;
    }
    return NULL;
}

char *
bl_h_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct growbuf g = { 0 };
    char chunk[65536];
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        collect(chunk, 1, n, &g);
    }
    fclose(f);
    if (g.p == NULL) {
        g.p = strdup("");
    }
    if (len != NULL) {
        *len = g.len;
    }
    return g.p;
}

#ifndef BL_HARNESS_H
#define BL_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Helpers for integration tests: free ports, temp dirs, child processes reaped by PID,
 * and a small libcurl client. Every call is bounded in time. Children started with
 * bl_h_spawn() are killed (SIGKILL) by bl_h_cleanup(), which is also registered with
 * atexit() on first use, so a failing test leaves nothing running.
 */

/* A free TCP port on 127.0.0.1 (bound then released; race-free enough on loopback). */
int bl_h_free_port(void);

/* mkdtemp under $TMPDIR or /tmp; the returned path is malloc'ed. rm -rf on cleanup. */
char *bl_h_tempdir(const char *prefix);

/* Path of a built binary from the environment (e.g. "BLOG_NODE_BIN"); aborts if unset. */
const char *bl_h_bin(const char *env_name);

/* Writes <text> to <path>. Aborts on failure. */
void bl_h_write_file(const char *path, const char *text);

/*
 * Starts argv[0] with argv, stdout+stderr appended to <log_path> (NULL = inherit).
 * Returns the pid. The child gets its own process group.
 */
pid_t bl_h_spawn(char *const argv[], const char *log_path);

/* Sends <sig> to <pid> and waits up to <timeout_ms> for it to exit; SIGKILL after that.
 * Returns the wait status, or -1 if it was not our child. */
int bl_h_stop(pid_t pid, int sig, int timeout_ms);

/* True while <pid> runs (reaps it if it exited, storing its status in *status if set). */
bool bl_h_alive(pid_t pid, int *status);

/* Kills every child still running and removes temp dirs. Idempotent. */
void bl_h_cleanup(void);

/* Polls GET <url> until it answers <status> or <timeout_ms> passes. true on success. */
bool bl_h_wait_http(const char *url, long status, int timeout_ms);

struct bl_h_resp {
    long status;                /* 0 when the request failed (see error) */
    char *body;                 /* NUL-terminated */
    size_t body_len;
    char *headers;              /* raw header block of the final response, NUL-terminated */
    char error[256];            /* curl's error text when status == 0 */
};

/*
 * One HTTP request with a 10 s overall timeout. <headers> is a NULL-terminated list of
 * "Name: value" lines (NULL for none); <body> may be NULL. Returns the response, which the
 * caller releases with bl_h_resp_free().
 */
struct bl_h_resp *bl_h_http(const char *method, const char *url, const char *const *headers,
                            const void *body, size_t body_len);
void bl_h_resp_free(struct bl_h_resp *r);

/* The value of header <name> (case-insensitive) in <r>, malloc'ed, or NULL. */
char *bl_h_header(const struct bl_h_resp *r, const char *name);

/* Reads a whole file into a malloc'ed NUL-terminated buffer, or NULL. */
char *bl_h_read_file(const char *path, size_t *len);

#endif /* BL_HARNESS_H */

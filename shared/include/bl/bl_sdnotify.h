#ifndef BL_SDNOTIFY_H
#define BL_SDNOTIFY_H

/*
 * systemd's service notification protocol (sd_notify(3)) without libsystemd: one datagram
 * of "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET, a path or "@name"
 * for the abstract namespace. A unit with Type=notify is "started" when the daemon sends
 * "READY=1"; "RELOADING=1" ... "READY=1" brackets a reload and "STOPPING=1" announces a
 * shutdown. packaging/systemd/ and docs/OPERATIONS.md ("Readiness") say who sends what.
 */

/*
 * Sends <state> (e.g. "READY=1", or several lines joined by '\n') to $NOTIFY_SOCKET.
 * Returns 0 when sent or when NOTIFY_SOCKET is unset or empty (not started by systemd
 * with Type=notify: nothing to do), else a negative errno: -EINVAL for a NULL or empty
 * <state>, -EAFNOSUPPORT for an address that is neither a path nor "@name" (vsock is not
 * supported), -ENAMETOOLONG, or the socket()/sendto() error. Never blocks for long (a
 * datagram to a local socket), allocates nothing, safe from any thread. The caller logs
 * a failure; the daemon keeps running (systemd then times the start out).
 */
int bl_sdnotify(const char *state);

#endif /* BL_SDNOTIFY_H */

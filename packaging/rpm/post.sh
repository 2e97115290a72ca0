# blogscale %post ($1: 1 = install, 2 = upgrade). rpm runs this with /bin/sh.
# System user and state directories from the sysusers.d/tmpfiles.d files of the package;
# the cluster file readable by the daemons' group only. Units are not enabled or started.
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers blogscale.conf || :
elif ! getent passwd blogscale >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/blogscale --no-create-home \
            --shell /usr/sbin/nologin --comment "blogscale daemons" blogscale || :
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
    systemd-tmpfiles --create blogscale.conf || :
else
    install -d -m 0750 -o blogscale -g blogscale /var/lib/blogscale /var/lib/blogscale/data || :
fi
conf=/etc/blogscale/cluster.yaml
if [ -f "$conf" ] && [ "$(stat -c %U:%G:%a "$conf")" = "root:root:644" ]; then
    chgrp blogscale "$conf" && chmod 0640 "$conf"
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
exit 0

# blogscale %postun ($1: 0 = erased, 1 = upgraded). Upgrade: restart the daemons that were
# running, nodes one at a time first. Erase: empty state directories go; the LMDB data and
# the blogscale user stay (delete them by hand).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -ge 1 ]; then
        active=$(systemctl list-units --plain --no-legend --state=active \
                 'blog-node@*.service' blog-lb.service blog-ctld.service 2>/dev/null | awk '{print $1}')
        for u in $(echo "$active" | grep '^blog-node@') $(echo "$active" | grep -v '^blog-node@' | sort); do
            systemctl try-restart "$u" || :
        done
    fi
fi
if [ "$1" -eq 0 ]; then
    rmdir --ignore-fail-on-non-empty /var/lib/blogscale/data /var/lib/blogscale 2>/dev/null || :
    rmdir --ignore-fail-on-non-empty /etc/blogscale 2>/dev/null || :
fi
exit 0

# blogscale %preun ($1: 0 = erase, 1 = upgrade): stop the daemons on erase.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    for u in $(systemctl list-units --plain --no-legend --all \
               'blog-node@*.service' blog-lb.service blog-ctld.service 2>/dev/null | awk '{print $1}'); do
        systemctl --no-reload disable "$u" >/dev/null 2>&1 || :
        systemctl stop "$u" || :
    done
fi
exit 0

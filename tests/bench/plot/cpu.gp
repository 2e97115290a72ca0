# CPU µs per request of the proxy process per scenario (medians); data: report.py proxies.dat
load plotdir."/common.gp"
set title "Proxy CPU per request (utime+stime / requests, median; lower is better)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "CPU µs per request"
set key outside right top vertical
set yrange [0:*]
plot datafile using 5:xtic(1) title "blog-lb" lc rgb "#1f77b4", \
     '' using 6 title "HAProxy 2.6" lc rgb "#ff7f0e", \
     '' using 7 title "nginx 1.22" lc rgb "#2ca02c"

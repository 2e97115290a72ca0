# requests/s per scenario, blog-lb vs HAProxy vs nginx (medians); data: report.py proxies.dat
load plotdir."/common.gp"
set title "Requests/s through one proxy worker (median; all on 2 shared cores)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "requests/s"
set key outside right top vertical
set yrange [0:*]
set format y "%.0s%c"
plot datafile using 2:xtic(1) title "blog-lb" lc rgb "#1f77b4", \
     '' using 3 title "HAProxy 2.6" lc rgb "#ff7f0e", \
     '' using 4 title "nginx 1.22" lc rgb "#2ca02c"

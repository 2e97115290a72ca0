# open loop: p99 latency vs offered rate; data: report.py openloop.dat (index 0 blog-lb, 1 HAProxy)
load plotdir."/common.gp"
set title "p99 latency vs offered load (open loop, from each request's due time)"
set xlabel "offered requests/s"
set ylabel "p99 latency (ms, log scale)"
set logscale y
set key top left
set format x "%.0s%c"
plot datafile index 0 using 1:2 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "blog-lb (maglev)", \
     datafile index 1 using 1:2 with linespoints lw 2 pt 5 lc rgb "#ff7f0e" title "HAProxy (balance uri)"

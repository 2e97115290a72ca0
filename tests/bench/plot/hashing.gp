# cache effect of hashing: hit ratio and store reads, maglev vs p2c; data: report.py hashing.dat
load plotdir."/common.gp"
stats datafile using 3 nooutput
set title "3 nodes, each cache = 1/3 of the posts: Zipf(0.99) + 5% PUT through blog-lb"
set style fill solid 0.85 border -1
set boxwidth 0.6
set yrange [0:105]
set ylabel "cluster cache hit ratio (%)"
set y2label "store reads per 1,000 requests"
set y2range [0:STATS_max * 1.2]
set y2tics
set xrange [-0.6:3.6]
set xtics ("hit ratio maglev" 0, "hit ratio p2c" 1, "store reads maglev" 2.4, "store reads p2c" 3.4)
set key off
plot datafile every ::0::0 using (0):2 with boxes lc rgb "#1f77b4" axes x1y1, \
     datafile every ::1::1 using (1):2 with boxes lc rgb "#ff7f0e" axes x1y1, \
     datafile every ::0::0 using (2.4):3 with boxes lc rgb "#1f77b4" fs pattern 4 axes x1y2, \
     datafile every ::1::1 using (3.4):3 with boxes lc rgb "#ff7f0e" fs pattern 4 axes x1y2, \
     datafile every ::0::0 using (0):2:(sprintf("%.1f%%", $2)) with labels offset 0,1 axes x1y1, \
     datafile every ::1::1 using (1):2:(sprintf("%.1f%%", $2)) with labels offset 0,1 axes x1y1, \
     datafile every ::0::0 using (2.4):3:(sprintf("%.1f", $3)) with labels offset 0,1 axes x1y2, \
     datafile every ::1::1 using (3.4):3:(sprintf("%.1f", $3)) with labels offset 0,1 axes x1y2

# shared look of the run-all plots (loaded by the others); datafile, outfile and plotdir
# come from gnuplot -e (tests/bench/report.py)
set terminal pngcairo size 760,400 font "DejaVu Sans,10" noenhanced
set output outfile
set key top right
set grid ytics lc rgb "#dddddd"
set border 3
set tics nomirror

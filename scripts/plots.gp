# SPDX-License-Identifier: MIT
# Plots of docs/results.md from the CSV files written by examples/fashion_mnist.cpp.
# Run by scripts/experiments: gnuplot -e "dir='docs/results'" scripts/plots.gp  (writes docs/*.png)
if (!exists("dir")) dir = 'docs/results'
set terminal pngcairo size 1200,900 font ",10" noenhanced
set datafile separator ","
set grid
set key bottom right

methods = "random CRAIG CRAIG-PB GRAD-MATCH GRAD-MATCH-PB AdaCore"
# rows of one method (and budget) from train.csv, seed 0: wall time, test accuracy %
sel(m, b) = sprintf("< awk -F, '$1==\"%s\" && $2==%s && $3==0 {print $9\",\"100*$10}' %s/train.csv", m, b, dir)
full = sprintf("< awk -F, '$1==\"full\" && $3==0 {print $9\",\"100*$10}' %s/train.csv", dir)
crest = sprintf("< awk -F, '$1==\"CREST\" && $3==0 {print $9\",\"100*$10}' %s/train.csv", dir)

set output 'docs/accuracy_vs_time.png'
set multiplot layout 2,2 title "Fashion-MNIST, 784-100-10 MLP: test accuracy vs wall time (selection + training), seed 0"
set xlabel "wall time [s]"
set ylabel "test accuracy [%]"
do for [b in "0.01 0.05 0.1 0.3"] {
    set title sprintf("subsets of %g%%", 100 * b)
    plot full using 1:2 with linespoints lw 2 lc rgb "black" title "full", \
         for [m in methods] sel(m, b) using 1:2 with linespoints title m, \
         (b eq "0.1" ? crest : "< true") using 1:2 with linespoints lc rgb "brown" title (b eq "0.1" ? "CREST (10% of steps)" : "")
}
unset multiplot

set output 'docs/gradient_error.png'
set terminal pngcairo size 900,600 font ",10" noenhanced
set datafile separator whitespace
set title "Relative error of the weighted subset gradient, ||sum_S w g - sum_V g|| / ||sum_V g|| (last-layer gradients)"
set xlabel "subset size [% of the 60 000 training images]"
set ylabel "relative gradient error"
set logscale xy
set key top right
set xtics (1, 5, 10, 30)
plot for [i=2:7] dir.'/gradient_error.dat' using 1:i with linespoints lw 2 title columnhead(i)
unset logscale

set output 'docs/convex_loss.png'
set datafile separator ","
set title "Softmax regression (L2 1e-4): full-data training objective vs wall time, 10 epochs each"
set xlabel "wall time [s] (CRAIG: selection included)"
set ylabel "training objective on all 60 000 images"
set key top right
set logscale x
conv(m) = sprintf("< awk -F, '$1==\"%s\" {print $5\",\"$6}' %s/convex.csv", m, dir)
plot for [m in "full CRAIG random"] conv(m) using 1:2 with linespoints lw 2 title m

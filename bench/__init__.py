"""The scaling ladder: todoscale's speed measured on the reference workload, as ratios."""

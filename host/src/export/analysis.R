# eviStream: the meta-analysis of a METAFOR_CSV export, with metafor.
# Usage: Rscript analysis.R [file]   (default: the export's file name)
# Recomputes every effect with escalc() from the arm data (a check on the
# yi and vi in the file), then pools each outcome and measure with rma()
# (DerSimonian-Laird). Derived numbers are named in the `derived` column.
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
f <- if (length(args) > 0) args[1] else "{{file}}"
dat <- read.csv(f, na.strings = "", stringsAsFactors = FALSE)
dat <- dat[!is.na(dat$measure) & dat$measure != "", ]
for (o in unique(dat$outcome)) {
  for (m in unique(dat$measure[dat$outcome == o])) {
    s <- dat[dat$outcome == o & dat$measure == m, ]
    e <- if (m %in% c("RR", "OR", "RD")) {
      escalc(m, ai = ai, bi = bi, ci = ci, di = di, data = s, drop00 = m %in% c("RR", "OR"))
    } else {
      escalc(m, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = s)
    }
    ok <- !is.na(e$yi)
    cat(sprintf("\n== %s (%s): %d of %d comparisons\n", o, m, sum(ok), nrow(s)))
    if (any(abs(e$yi[ok] - s$yi[ok]) > 1e-6, na.rm = TRUE)) warning("escalc disagrees with the file's yi for ", o)
    if (sum(ok) >= 1) print(rma(yi, vi, data = e[ok, ], method = "DL", slab = s$study[ok]))
  }
}

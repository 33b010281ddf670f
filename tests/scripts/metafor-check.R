# The reference side of tests/tests/it/analysis.rs: metafor's escalc() on
# eviStream's METAFOR_CSV files, and the Cochrane Handbook §6.5.2 and
# conv.fivenum derivations written again here, independently, in R.
# Usage: Rscript metafor-check.R derive-cases.csv metafor-1.csv [metafor-2.csv ...]
# Prints "escalc,<file>,<row>,<yi>,<vi>" and "derive,<case>,<m1>,<sd1>,<m2>,<sd2>".
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
g <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

# Debian's metafor 3.8 has no conv.fivenum: its default method (Luo 2018
# means, Wan 2014 / Shi 2020 SDs), transcribed from the papers.
xi <- function(n) 2 * qnorm((n - 0.375) / (n + 0.25))
eta <- function(n) 2 * qnorm((0.75 * n - 0.125) / (n + 0.25))
fivenum_mean_sd <- function(a, q1, m, q3, b, n) {
  hasr <- !is.na(a) && !is.na(b); hasq <- !is.na(q1) && !is.na(q3)
  if (!hasr && !hasq) return(c(NA, NA))
  if (hasr && hasq) {
    w <- 1 / (1 + 0.07 * n^0.6); sd <- w * (b - a) / xi(n) + (1 - w) * (q3 - q1) / eta(n)
    w1 <- 2.2 / (2.2 + n^0.75); w2 <- 0.7 - 0.72 / n^0.55
    mean <- w1 * (a + b) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * m
  } else if (hasr) {
    sd <- (b - a) / xi(n); w <- 4 / (4 + n^0.75); mean <- w * (a + b) / 2 + (1 - w) * m
  } else {
    sd <- (q3 - q1) / eta(n); w <- 0.7 + 0.39 / n; mean <- w * (q1 + q3) / 2 + (1 - w) * m
  }
  c(mean, sd)
}
lev <- function(l) if (is.na(l)) 0.95 else if (l >= 50) l / 100 else l
crit <- function(l, df) { p <- 1 - (1 - lev(l)) / 2; if (is.na(df)) qnorm(p) else qt(p, df) }
arm <- function(r, s) {
  v <- function(k) r[[paste0(s, "_", k)]]
  n <- v("n"); m <- v("mean"); sd <- v("sd")
  if (is.na(sd) && !is.na(v("se"))) sd <- v("se") * sqrt(n)
  if (is.na(sd) && !is.na(v("cil"))) sd <- sqrt(n) * (v("ciu") - v("cil")) / (2 * crit(v("level"), if (n >= 60) NA else n - 1))
  if (is.na(sd) || is.na(m)) {
    f <- fivenum_mean_sd(v("min"), v("q1"), v("median"), v("q3"), v("max"), n)
    if (is.na(m)) m <- f[1]
    if (is.na(sd)) sd <- f[2]
  }
  c(m, sd)
}
cases <- read.csv(args[1], na.strings = "", stringsAsFactors = FALSE)
for (i in seq_len(nrow(cases))) {
  r <- cases[i, ]
  x <- arm(r, "i"); y <- arm(r, "c")
  if (is.na(x[2]) && is.na(y[2])) {
    n1 <- r$i_n; n2 <- r$c_n; df <- n1 + n2 - 2; md <- x[1] - y[1]
    se <- if (!is.na(r$d_cil)) (r$d_ciu - r$d_cil) / (2 * crit(NA, if (min(n1, n2) < 60) df else NA))
          else if (!is.na(r$t)) abs(md) / abs(r$t)
          else if (!is.na(r$p)) abs(md) / qt(1 - r$p / 2, df) else NA
    x[2] <- y[2] <- se / sqrt(1 / n1 + 1 / n2)
  }
  cat(sprintf("derive,%s,%s,%s,%s,%s\n", r$case, g(x[1]), g(x[2]), g(y[1]), g(y[2])))
}
for (f in args[-1]) {
  d <- read.csv(f, na.strings = "", stringsAsFactors = FALSE)
  for (i in seq_len(nrow(d))) {
    r <- d[i, ]
    if (is.na(r$measure) || r$measure == "") next
    e <- if (r$measure %in% c("RR", "OR", "RD")) {
      if (is.na(r$ai) || is.na(r$ci)) next
      escalc(r$measure, ai = r$ai, bi = r$bi, ci = r$ci, di = r$di, drop00 = r$measure %in% c("RR", "OR"))
    } else {
      if (is.na(r$sd1i) || is.na(r$sd2i) || is.na(r$m1i) || is.na(r$m2i)) next
      escalc(r$measure, m1i = r$m1i, sd1i = r$sd1i, n1i = r$n1i, m2i = r$m2i, sd2i = r$sd2i, n2i = r$n2i)
    }
    cat(sprintf("escalc,%s,%d,%s,%s\n", basename(f), i, g(e$yi), g(e$vi)))
  }
}

# lme4 side of benchmarks/bench_mixed.py: times lmer() on the rows the Python benchmark wrote.
#
# Usage: Rscript benchmarks/lme4_bench.R rows.csv level1,level2,...
# The CSV holds score, day, modality, baseline, episode_id. Time enters lme4 in units of 30 days (day30;
# lme4 warns about a badly scaled model on raw days); the fit is
#   lmer(score ~ day30 * modality + baseline + (day30 | episode_id), REML = TRUE)
# with lme4's default control (nloptwrap / BOBYQA). Only the lmer() call is timed (the CSV read is not).
# Prints key=value lines that bench_mixed.py parses: wall and CPU seconds, REML criterion, theta, sigma, fixed effects
# and standard errors (per 30 days for the time terms) and every convergence message lme4 gives.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(score = "numeric", day = "numeric", modality = "character",
                                      baseline = "numeric", episode_id = "character"))
d$modality <- factor(d$modality, levels = strsplit(args[2], ",")[[1]])
d$day30 <- d$day / 30
d$episode_id <- factor(d$episode_id)
timing <- system.time(
  m <- lmer(score ~ day30 * modality + baseline + (day30 | episode_id), data = d, REML = TRUE)
)
cat(sprintf("seconds=%.6f\n", timing[["elapsed"]]))
cat(sprintf("cpu_seconds=%.6f\n", timing[["user.self"]] + timing[["sys.self"]]))
cat(sprintf("lme4_version=%s\n", as.character(packageVersion("lme4"))))
cat(sprintf("r_version=%s\n", R.version.string))
cat(sprintf("reml_criterion=%.10f\n", REMLcrit(m)))
cat(sprintf("theta=%s\n", paste(sprintf("%.12g", getME(m, "theta")), collapse = ",")))
cat(sprintf("sigma=%.12g\n", sigma(m)))
fe <- fixef(m)
se <- sqrt(diag(as.matrix(vcov(m))))
cat(sprintf("fe_names=%s\n", paste(names(fe), collapse = ",")))
cat(sprintf("fe=%s\n", paste(sprintf("%.12g", fe), collapse = ",")))
cat(sprintf("se=%s\n", paste(sprintf("%.12g", se), collapse = ",")))
msgs <- c(m@optinfo$conv$lme4$messages, m@optinfo$warnings)
cat(sprintf("messages=%s\n", paste(gsub("\n", " ", unlist(msgs)), collapse = " | ")))

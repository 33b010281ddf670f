//! `evistream plugin check`: a component run under the host's real
//! runtime and limits, exactly as the server would run it, and checked
//! against its contract: first the static checks `installPlugin` runs
//! ([`admission`](super::admission)), then its kind's behaviour on bundled
//! inputs (and the caller's PDFs). Every check has a name, a verdict and a
//! reason; a plugin that loops or allocates without end fails with
//! TIMEOUT or OUT_OF_MEMORY under its own limits instead of hanging.

mod adapter;
mod converter;
mod extractor;
pub mod samples;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::PluginHost;
use super::admission::{self, StaticCheck};
use super::error::PluginError;
use super::manifest::{Manifest, PluginKind};

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// The component does what the contract asks.
    Pass,
    /// It does not; the reason says what it did.
    Fail,
    /// Not run (an earlier check failed, or it does not apply).
    Skip,
}

impl Verdict {
    /// As reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable name (`imports`, `convert two-pages.pdf`, `rate-limited`).
    pub name: String,
    /// Outcome.
    pub verdict: Verdict,
    /// What was found.
    pub reason: String,
    /// Time the check took, in milliseconds.
    pub ms: u64,
}

/// Everything a check run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `id@version` from the manifest, when it parsed.
    pub plugin: Option<String>,
    /// The manifest's kind, when it parsed.
    pub kind: Option<PluginKind>,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// Whether no check failed.
    pub passed: bool,
}

impl Report {
    fn new() -> Self {
        Self {
            plugin: None,
            kind: None,
            checks: Vec::new(),
            passed: true,
        }
    }

    /// Records a check that started at `started`.
    pub(crate) fn record(
        &mut self,
        name: impl Into<String>,
        verdict: Verdict,
        reason: impl Into<String>,
        started: Instant,
    ) {
        if verdict == Verdict::Fail {
            self.passed = false;
        }
        self.checks.push(Check {
            name: name.into(),
            verdict,
            reason: reason.into(),
            ms: started.elapsed().as_millis() as u64,
        });
    }

    /// Records a check that did not run.
    pub(crate) fn skip(&mut self, name: impl Into<String>, reason: impl Into<String>) {
        self.record(name, Verdict::Skip, reason, Instant::now());
    }

    /// The check named `name`, if it ran or was skipped.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// One line per check (`PASS name — reason (12 ms)`), then a summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(p) = &self.plugin {
            out.push_str(&format!(
                "{p} ({})\n",
                self.kind.map(PluginKind::world).unwrap_or("?")
            ));
        }
        for c in &self.checks {
            out.push_str(&format!(
                "{} {} — {} ({} ms)\n",
                c.verdict.as_str(),
                c.name,
                c.reason,
                c.ms
            ));
        }
        let count = |v: Verdict| self.checks.iter().filter(|c| c.verdict == v).count();
        out.push_str(&format!(
            "{}: {} passed, {} failed, {} skipped\n",
            if self.passed {
                "conformant"
            } else {
                "NOT conformant"
            },
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Skip)
        ));
        out
    }
}

/// A PDF to convert, with the name reports give it.
#[derive(Debug, Clone)]
pub struct NamedPdf {
    /// File name.
    pub name: String,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// Checks `wasm` against `manifest_text`: the static checks, then (when
/// they pass) its kind's behaviour; `pdfs` are converted besides the
/// bundled ones (converters only).
pub async fn check(
    host: &PluginHost,
    manifest_text: &str,
    wasm: Vec<u8>,
    pdfs: &[NamedPdf],
) -> Report {
    let mut report = Report::new();
    let wasm = Arc::new(wasm);
    let started = Instant::now();
    let admitted = match admission::parse(manifest_text) {
        Ok(m) => {
            report.plugin = Some(format!("{}@{}", m.id, m.version));
            report.kind = Some(m.kind);
            admission::admit(host, &m, wasm.clone()).await.map(|()| m)
        }
        Err(refused) => Err(refused),
    };
    let manifest = match admitted {
        Ok(m) => {
            for c in StaticCheck::ALL {
                report.record(c.name(), Verdict::Pass, c.passed(), started);
            }
            m
        }
        Err(refused) => {
            let mut seen = false;
            for c in StaticCheck::ALL {
                if c == refused.check {
                    report.record(c.name(), Verdict::Fail, refused.to_string(), started);
                    seen = true;
                } else if seen {
                    report.skip(c.name(), "an earlier static check failed");
                } else {
                    report.record(c.name(), Verdict::Pass, c.passed(), started);
                }
            }
            report.skip(
                "behaviour",
                "the component is refused at install, so it is not run",
            );
            return report;
        }
    };
    let sha = super::sha256_hex(&wasm);
    match manifest.kind {
        PluginKind::PdfConverter => {
            converter::run(host, &manifest, &sha, wasm, pdfs, &mut report).await
        }
        PluginKind::FormExtractor => extractor::run(host, &manifest, &sha, wasm, &mut report).await,
        PluginKind::LlmAdapter => adapter::run(host, &manifest, &sha, wasm, &mut report).await,
    }
    report
}

/// A plugin loaded as its kind, or the `load` check failed (recorded).
async fn loaded<T>(
    load: impl Future<Output = Result<T, PluginError>>,
    m: &Manifest,
    report: &mut Report,
) -> Option<T> {
    let started = Instant::now();
    match load.await {
        Ok(t) => Some(t),
        Err(e) => {
            report.record("load", Verdict::Fail, plugin_reason(&e, m), started);
            None
        }
    }
}

/// A plugin error as a check's reason: what happened, and for the limits
/// which setting bounded it.
fn plugin_reason(e: &PluginError, m: &Manifest) -> String {
    match e {
        PluginError::Timeout { limit_ms } => format!(
            "TIMEOUT: the plugin did not return within {limit_ms} ms (limits.timeout_ms = {} \
             in the manifest, capped by the server); it loops or is too slow",
            m.limits.timeout_ms
        ),
        PluginError::OutOfMemory { limit_bytes } => format!(
            "OUT_OF_MEMORY: the plugin asked for more than {} MiB (limits.memory_mb = {} in \
             the manifest, capped by the server)",
            limit_bytes >> 20,
            m.limits.memory_mb
        ),
        other => format!("{}: {other}", other.kind()),
    }
}

/// Whether a failure ends the run of further behaviour checks: a plugin
/// that ran out of time or memory would only do it again.
fn exhausted(e: &PluginError) -> bool {
    matches!(
        e,
        PluginError::Timeout { .. } | PluginError::OutOfMemory { .. }
    )
}

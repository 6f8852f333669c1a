//! Rendering helpers: sizes, durations, live progress.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use cairn_engine::{AssetOutcome, AssetResult, Progress, RunEvent};

/// Standard output for a command's result, buffered: a locked stdout on
/// its own writes at every newline, a system call per line of a
/// 100,000-line plan. Flush it at the end, so that a failed write is
/// reported.
pub fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock())
}

/// This process's peak resident memory (`VmHWM` in /proc/self/status),
/// or `None` where there is no such file.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A size given in whole units, as it was most likely written: `512 MB`
/// (powers of 1000), `16 MiB` (powers of 1024), whichever unit is the
/// larger exact one; otherwise as [`bytes`].
pub fn size_as_written(n: u64) -> String {
    const DECIMAL: [(&str, u64); 4] = [
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
    ];
    const BINARY: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    let exact = |units: &[(&'static str, u64)]| {
        units
            .iter()
            .copied()
            .find(|&(_, unit)| n >= unit && n.is_multiple_of(unit))
    };
    // Both may divide it (512 MB is also 500,000 KiB): the larger unit.
    match [exact(&DECIMAL), exact(&BINARY)]
        .into_iter()
        .flatten()
        .max_by_key(|&(_, unit)| unit)
    {
        Some((name, unit)) => format!("{} {name}", n / unit),
        None => bytes(n),
    }
}

/// `35 ms`, `2.4 s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// One line describing an asset's result.
pub fn result_line(result: &AssetResult) -> String {
    let what = match &result.outcome {
        AssetOutcome::Materialized(m) => {
            let change = if m.data_changed {
                ""
            } else {
                ", data unchanged"
            };
            format!(
                "materialized  {} rows, {}, {}{change}",
                m.rows,
                bytes(m.bytes_written),
                duration(m.wall)
            )
        }
        AssetOutcome::Fresh { early_cutoff: true } => {
            "fresh         upstream data unchanged".to_owned()
        }
        AssetOutcome::Fresh {
            early_cutoff: false,
        } => "fresh".to_owned(),
        AssetOutcome::Failed { error, .. } => format!("FAILED        {error}"),
        AssetOutcome::Skipped { upstream } => format!("skipped       upstream {upstream} failed"),
    };
    let name = if result.partition.is_empty() {
        result.asset.clone()
    } else {
        format!("{} [{}]", result.asset, result.partition)
    };
    format!("  {name:<28} {what}")
}

/// Live progress for `materialize`: on a terminal a spinner on stderr plus
/// one line per finished asset; elsewhere (CI, pipes) plain lines only.
/// Quiet when the output is JSON.
pub struct RunProgress {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
    state: Mutex<(usize, usize, Vec<String>)>,
}

impl RunProgress {
    /// A progress display; `quiet` for JSON output.
    pub fn new(quiet: bool) -> Self {
        RunProgress {
            quiet,
            bar: Mutex::new(None),
            state: Mutex::new((0, 0, Vec::new())),
        }
    }

    fn println(&self, line: &str) {
        let bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match bar.as_ref() {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for RunProgress {
    fn event(&self, event: RunEvent<'_>) {
        if self.quiet {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            RunEvent::RunStarted { run_id, planned } => {
                state.1 = planned.len();
                let assets: std::collections::BTreeSet<&str> =
                    planned.iter().map(|u| u.0.as_str()).collect();
                let partitioned = planned.iter().any(|u| !u.1.is_empty());
                self.println(&if partitioned {
                    format!(
                        "run {run_id}: {} partition(s) of {} asset(s) to check",
                        planned.len(),
                        assets.len()
                    )
                } else {
                    format!("run {run_id}: {} asset(s) to check", planned.len())
                });
                if std::io::stderr().is_terminal() {
                    let bar = ProgressBar::new(planned.len() as u64);
                    if let Ok(style) = ProgressStyle::with_template(
                        "{spinner} [{pos}/{len}] {elapsed} eta {eta} {wide_msg}",
                    ) {
                        bar.set_style(style);
                    }
                    bar.enable_steady_tick(Duration::from_millis(120));
                    *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
                }
            }
            RunEvent::AssetStarted { asset, partition } => {
                state.2.push(if partition.is_empty() {
                    asset.to_owned()
                } else {
                    format!("{asset}[{partition}]")
                });
                if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                    bar.set_message(format!("running: {}", state.2.join(", ")));
                }
            }
            RunEvent::AssetRetrying {
                asset,
                partition,
                message,
            } => {
                let name = if partition.is_empty() {
                    asset.to_owned()
                } else {
                    format!("{asset} [{partition}]")
                };
                self.println(&format!("  {name:<28} retry         {message}"));
            }
            RunEvent::AssetFinished { result } => {
                state.0 += 1;
                let label = if result.partition.is_empty() {
                    result.asset.clone()
                } else {
                    format!("{}[{}]", result.asset, result.partition)
                };
                state.2.retain(|a| a != &label);
                self.println(&result_line(result));
                if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                    bar.set_position(state.0 as u64);
                    bar.set_message(format!("running: {}", state.2.join(", ")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_as_written;

    #[test]
    fn sizes_print_in_the_unit_they_were_most_likely_written_in() {
        for (n, shown) in [
            (512_000_000, "512 MB"),
            (64_000_000, "64 MB"),
            (16 << 20, "16 MiB"),
            (3 << 30, "3 GiB"),
            (1_000_000_000_000, "1 TB"),
            (1024, "1 KiB"),
            (5_000, "5 KB"),
            (1_500_000, "1500 KB"),
            (16_777_217, "16.0 MiB"),
        ] {
            assert_eq!(size_as_written(n), shown, "{n}");
        }
    }
}

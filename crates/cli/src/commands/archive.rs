//! `stele archive verify`: the retention archive checked offline, against its manifest.

/// `stele archive verify DIR`: a summary, then OK (exit 0) or every problem found, the first
/// one first (exit 1).
pub(crate) fn verify_archive(dir: &std::path::Path) -> anyhow::Result<()> {
    let report = stele_archive::verify(dir)?;
    println!(
        "archive {}: {} segments, {} entries",
        dir.display(),
        report.segments,
        report.entries
    );
    for (org, s) in &report.orgs {
        println!(
            "  {org}: {} segments, {} entries, seq {}..={}",
            s.segments, s.entries, s.first_seq, s.last_seq
        );
    }
    let Some(first) = report.problems.first() else {
        println!("OK");
        return Ok(());
    };
    let count = report.problems.len() as u64 + report.problems_not_listed;
    println!("FAILED: {first}");
    for p in &report.problems[1..] {
        println!("  also: {p}");
    }
    if report.problems_not_listed > 0 {
        println!("  and {} more", report.problems_not_listed);
    }
    println!("{count} problem{}", if count == 1 { "" } else { "s" });
    std::process::exit(1);
}

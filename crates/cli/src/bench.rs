//! `stele bench` (being written).
#[derive(clap::Args)]
pub struct BenchArgs {}
pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}

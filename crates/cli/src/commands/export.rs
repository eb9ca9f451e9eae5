//! `stele export`: the same export as `GET /v1/export`, into standard output.

use stele_core::time::now_millis;

use super::open::{find_org, open_existing};
use crate::ExportArgs;

/// Writes export chunks to standard output; a closed pipe (`| head`) ends the export early.
pub(crate) struct StdoutSink(std::io::Stdout);

impl stele_service::export::Sink for StdoutSink {
    async fn send(&mut self, chunk: Vec<u8>) -> bool {
        use std::io::Write;
        // Blocking writes are fine here: this process does nothing else meanwhile.
        self.0
            .write_all(&chunk)
            .and_then(|()| self.0.flush())
            .is_ok()
    }
}

pub(crate) async fn export(args: ExportArgs) -> anyhow::Result<()> {
    use stele_core::event::{Actor, ActorType, Context};
    use stele_service::clock::SystemClock;
    use stele_service::export::{Export, ExportRequest, Exporter};
    let request = ExportRequest::from_params(args.params())
        .map_err(|e| anyhow::anyhow!("--{}: {}", e.field.replace('_', "-"), e.message))?;
    let store = open_existing(&args.data).await?;
    let org = find_org(store.as_ref(), &args.org).await?;
    let format = request.format;
    let export = Export::start(store.as_ref(), org.key, request, now_millis()).await?;
    // The operator is not identified to Stele (no API key), so the export is Stele's own
    // action, like an erasure from the command line: a System actor with source `cli`.
    let by = Exporter {
        actor: Actor {
            kind: ActorType::System,
            id: None,
            name: Some("stele export".into()),
            email: None,
            href: None,
            metadata: Default::default(),
            original_type: None,
        },
        context: Context {
            source: Some("cli".into()),
            ..Context::default()
        },
    };
    let mut sink = StdoutSink(std::io::stdout());
    let done = export
        .run(store.as_ref(), &mut sink, by, &SystemClock)
        .await;
    let (summary, receipt) = (done.summary, done.recorded?);
    if let Some(e) = summary.error {
        return Err(anyhow::Error::from(e).context(format!(
            "the export stopped after {} entries (recorded as entry seq {})",
            summary.entries, receipt.seq
        )));
    }
    anyhow::ensure!(
        summary.complete,
        "standard output was closed after {} entries; recorded as an incomplete export (seq {})",
        summary.entries,
        receipt.seq
    );
    eprintln!(
        "exported {} entries of {} as {}; recorded as entry seq {}",
        summary.entries,
        org.name,
        format.as_str(),
        receipt.seq
    );
    Ok(())
}

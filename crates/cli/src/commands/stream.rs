//! `stele stream`: an organization's log streams from the command line: list, show, create,
//! edit, pause, resume, rotate the secret, delete. Each calls `stele_service::streams`, as the API
//! does, and is recorded in the organization's trail (and the platform's: the operator's doing).
//! The running servers deliver what these commands configure. `--platform` instead of `--org`
//! is about the platform's own streams, which are platform-wide (every organization's trail).

use std::time::Duration;

use serde_json::{Value, json};
use stele_core::time::now_millis;
use stele_service::streams::target_guard::TargetGuard;
use stele_service::streams::{self, StreamError, StreamFields, StreamSecrets};
use stele_service::trail::{By, activity};

use super::open::{find_org, open_existing};
use crate::{DataDir, KeyFile, StreamCommand, StreamOwner, StreamSettings, StreamTarget};

/// The organization whose streams the command is about: `--org`'s, or the platform's own.
async fn owner_org(
    store: &dyn stele_store::Store,
    owner: &StreamOwner,
) -> anyhow::Result<stele_store::Organization> {
    match &owner.org {
        Some(org) => find_org(store, org).await,
        None => Ok(store.platform_org().await?),
    }
}

fn by(command: &str) -> By {
    By::platform(activity::system_actor(command), activity::cli_context())
}

fn stream_error(e: StreamError) -> anyhow::Error {
    match e {
        StreamError::Invalid(problem) => {
            anyhow::anyhow!("{}: {}", flag_of(&problem.field), problem.message)
        }
        StreamError::NotFound => anyhow::anyhow!("the organization has no such stream"),
        StreamError::Store(e) => e.into(),
    }
}

/// The flag that sets a field of a stream request, for an error about it.
fn flag_of(field: &str) -> String {
    let flag = match field {
        "transport.url" => "--webhook",
        "transport.host" | "transport.port" => "--syslog",
        "transport.tls" => "--syslog-tls",
        f if f.starts_with("transport.headers") => "--header",
        "format" => "--format",
        "transport" => "--webhook, --syslog or --nats",
        f if f.starts_with("filter.channels") => "--channels",
        f if f.starts_with("filter.actions") => "--actions",
        f if f.starts_with("filter.actor_types") => "--actor-types",
        "from_seq" => "--from-seq",
        "name" => "--name",
        "max_entries" => "--max-entries",
        other => return other.to_string(),
    };
    flag.to_string()
}

/// The signing secrets' source: the servers' key file.
fn secrets(key_file: &KeyFile, data: &DataDir) -> anyhow::Result<StreamSecrets> {
    let path = key_file.path(data);
    let key = stele_service::secrets::load_signing_key(&path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no signing key at {}: start `stele serve` on this data directory once, or give the \
             servers' key with --signing-key-file",
            path.display()
        )
    })?;
    Ok(StreamSecrets::new(stele_service::secrets::streams_secret(
        &key,
    )))
}

/// The request fields the command line's flags give (`None` where a flag is absent: an edit
/// leaves that field as it is).
fn fields(settings: StreamSettings) -> anyhow::Result<StreamFields> {
    let StreamSettings {
        name,
        target,
        syslog_tls,
        format,
        headers,
        filter,
        from_seq,
        max_entries,
        allow_private_targets: _,
    } = settings;
    let transport = match target {
        StreamTarget {
            webhook: Some(url), ..
        } => {
            let mut webhook = json!({"type": "webhook", "url": url});
            if !headers.is_empty() {
                let mut named = serde_json::Map::new();
                for header in &headers {
                    let (name, value) = header.split_once(':').ok_or_else(|| {
                        anyhow::anyhow!("--header: give \"Name: value\" (a colon after the name)")
                    })?;
                    named.insert(name.trim().to_string(), json!(value.trim()));
                }
                webhook["headers"] = Value::Object(named);
            }
            Some(webhook)
        }
        StreamTarget { nats: true, .. } => Some(json!({"type": "nats"})),
        StreamTarget {
            syslog: Some(address),
            ..
        } => {
            let (host, port) = address
                .rsplit_once(':')
                .ok_or_else(|| anyhow::anyhow!("--syslog: give HOST:PORT"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| anyhow::anyhow!("--syslog: `{port}` is not a port"))?;
            Some(json!({"type": "syslog", "host": host, "port": port, "tls": syslog_tls}))
        }
        _ => None,
    };
    Ok(StreamFields {
        name: name.map(Value::String),
        transport,
        format: format.map(Value::String),
        filter: streams::filter_value(&filter.channels, &filter.actions, &filter.actor_types),
        max_entries: max_entries.map(|n| json!(n)),
        from_seq: from_seq.map(|n| json!(n)),
        ..StreamFields::default()
    })
}

/// The guard a command checks targets with. Whether the servers publish to NATS is theirs to
/// say; a `nats` stream on servers without it shows as failing, with the reason.
fn guard(allow_private_targets: bool) -> TargetGuard {
    TargetGuard {
        allow_private: allow_private_targets,
        nats: true,
    }
}

pub async fn run(command: StreamCommand) -> anyhow::Result<()> {
    match command {
        StreamCommand::List { org, data } => {
            let store = open_existing(&data).await?;
            let org = owner_org(store.as_ref(), &org).await?;
            for view in streams::list(store.as_ref(), org.key, now_millis())
                .await
                .map_err(stream_error)?
            {
                println!(
                    "{}\t{}\t{} {}\t{} behind\t{}",
                    view.stream.id,
                    streams::health(&view.stream),
                    view.spec.transport.kind(),
                    view.spec.transport.target(),
                    view.lag_entries,
                    view.stream.name
                );
            }
            Ok(())
        }
        StreamCommand::Show { id, org, data } => {
            let store = open_existing(&data).await?;
            let org = owner_org(store.as_ref(), &org).await?;
            let view = streams::show(store.as_ref(), org.key, &id, now_millis())
                .await
                .map_err(stream_error)?;
            println!("{}", serde_json::to_string_pretty(&view.to_json())?);
            Ok(())
        }
        StreamCommand::Create {
            org,
            settings,
            key,
            data,
        } => {
            let secrets = secrets(&key, &data)?;
            let store = open_existing(&data).await?;
            let org = owner_org(store.as_ref(), &org).await?;
            let guard = guard(settings.allow_private_targets);
            let fields = fields(settings)?;
            let created = streams::create(
                store.as_ref(),
                &secrets,
                guard,
                org.key,
                fields,
                &by("stele stream create"),
                now_millis(),
            )
            .await
            .map_err(stream_error)?;
            match created.secret {
                Some(secret) => {
                    eprintln!(
                        "created stream {} for {}; its webhook secret is shown once:",
                        created.view.stream.id, org.name
                    );
                    println!("{secret}");
                }
                None => println!("created stream {} for {}", created.view.stream.id, org.name),
            }
            Ok(())
        }
        StreamCommand::Edit {
            id,
            org,
            settings,
            all_entries,
            key,
            data,
        } => {
            let secrets = secrets(&key, &data)?;
            let store = open_existing(&data).await?;
            let org = owner_org(store.as_ref(), &org).await?;
            let guard = guard(settings.allow_private_targets);
            let mut fields = fields(settings)?;
            if all_entries {
                fields.filter = Some(Value::Null);
            }
            let view = streams::edit(
                store.as_ref(),
                &secrets,
                guard,
                org.key,
                &id,
                fields,
                &by("stele stream edit"),
                now_millis(),
            )
            .await
            .map_err(stream_error)?;
            println!("{}", serde_json::to_string_pretty(&view.to_json())?);
            Ok(())
        }
        StreamCommand::Pause {
            id,
            org,
            reason,
            data,
        } => {
            let store = open_existing(&data).await?;
            let org = owner_org(store.as_ref(), &org).await?;
            let view = streams::pause(
                store.as_ref(),
                org.key,
                &id,
                reason,
                &by("stele stream pause"),
                now_millis(),
            )
            .await
            .map_err(stream_error)?;
            println!("{} is {}", view.stream.id, streams::health(&view.stream));
            Ok(())
        }
        StreamCommand::Resume { id, org, data } => {
            let store = open_existing(&data).await?;
            let org = owner_org(store.as_ref(), &org).await?;
            let view = streams::resume(
                store.as_ref(),
                org.key,
                &id,
                &by("stele stream resume"),
                now_millis(),
            )
            .await
            .map_err(stream_error)?;
            println!("{} is {}", view.stream.id, streams::health(&view.stream));
            Ok(())
        }
        StreamCommand::RotateSecret {
            id,
            org,
            overlap_hours,
            key,
            data,
        } => {
            let secrets = secrets(&key, &data)?;
            let store = open_existing(&data).await?;
            let org = owner_org(store.as_ref(), &org).await?;
            let rotated = streams::rotate_secret(
                store.as_ref(),
                &secrets,
                org.key,
                &id,
                Duration::from_secs(overlap_hours * 3600),
                &by("stele stream rotate-secret"),
                now_millis(),
            )
            .await
            .map_err(stream_error)?;
            eprintln!(
                "{} signs with secret version {} from now (the previous one too for {overlap_hours} h); shown once:",
                rotated.view.stream.id, rotated.view.stream.secret_version
            );
            println!("{}", rotated.secret.unwrap_or_default());
            Ok(())
        }
        StreamCommand::Delete { id, org, data } => {
            let store = open_existing(&data).await?;
            let org = owner_org(store.as_ref(), &org).await?;
            streams::delete(
                store.as_ref(),
                org.key,
                &id,
                &by("stele stream delete"),
                now_millis(),
            )
            .await
            .map_err(stream_error)?;
            println!("deleted {id}");
            Ok(())
        }
    }
}

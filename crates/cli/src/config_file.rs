//! `stele.toml`: the server's settings in a file, beneath the environment and the flags.
//!
//! Precedence, lowest first: the defaults, the file, `STELE_*` variables, flags. Clap already
//! ranks the last three; the file slots in under them by becoming flags for the settings that
//! neither a flag nor a variable set (`value_source` is the default's). So a key of the file is
//! the long flag of `stele serve` in snake case (`sqlite_mmap_mib = 2048` is
//! `--sqlite-mmap-mib 2048`), checked and parsed exactly as the flag is: a bad value is the flag's
//! error, an unknown key an error naming it.
//!
//! Which file: `--config PATH` or `STELE_CONFIG`, and otherwise `stele.toml` in the working
//! directory if there is one (none is fine: zero configuration stays the default).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::ArgMatches;
use clap::parser::ValueSource;

/// The file read when neither `--config` nor `STELE_CONFIG` names one, if it exists.
pub const DEFAULT_FILE: &str = "stele.toml";

/// Arguments of `stele serve` that a file cannot set: the file's own name, and clap's.
const NOT_IN_FILE: &[&str] = &["config", "help", "version"];

/// The settings' file for a command's matches (see [`file`]).
pub fn chosen(matches: &ArgMatches) -> Option<PathBuf> {
    file(matches.get_one::<PathBuf>("config").map(PathBuf::as_path))
}

/// The settings' file: the one named, or `./stele.toml` if present.
pub fn file(named: Option<&Path>) -> Option<PathBuf> {
    match named {
        Some(path) => Some(path.to_path_buf()),
        None => Path::new(DEFAULT_FILE)
            .is_file()
            .then(|| PathBuf::from(DEFAULT_FILE)),
    }
}

/// The arguments of `command` a file may set: its long flags, but for the file's own and clap's.
fn settings(command: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    command
        .get_arguments()
        .filter(|a| a.get_long().is_some() && !NOT_IN_FILE.contains(&a.get_id().as_str()))
}

/// Whether the argument takes a list (given once per value).
fn is_list(arg: &clap::Arg) -> bool {
    matches!(arg.get_action(), clap::ArgAction::Append)
}

/// Values as a TOML list.
fn toml_list(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| toml_text(v)).collect();
    format!("[{}]", items.join(", "))
}

/// The flags that the file at `path` adds for `command` (the `serve` or `config print`
/// subcommand's definition), given what its matches already hold: one `--flag value` (or
/// `--flag` for a true switch, repeated for a list) per key that no flag or variable set.
/// Returns those flags and the keys they came from.
pub fn flags(
    path: &Path,
    command: &clap::Command,
    matches: &ArgMatches,
) -> anyhow::Result<(Vec<OsString>, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let (mut out, mut used) = (Vec::new(), Vec::new());
    for (key, value) in &table {
        let Some(arg) = settings(command).find(|a| a.get_id() == key.as_str()) else {
            bail!(
                "{}: unknown key `{key}`; the keys are {}",
                path.display(),
                keys(command).join(", ")
            );
        };
        if !matches!(
            matches.value_source(key),
            None | Some(ValueSource::DefaultValue)
        ) {
            continue; // A flag or a variable set it: they rank above the file.
        }
        used.push(key.clone());
        let flag = format!("--{}", arg.get_long().expect("filtered on it"));
        let takes_value = arg.get_action().takes_values();
        match value {
            toml::Value::Boolean(on) if !takes_value => {
                if *on {
                    out.push(flag.into());
                }
            }
            toml::Value::Array(items) if takes_value => {
                for item in items {
                    out.push(flag.clone().into());
                    out.push(scalar(path, key, item)?.into());
                }
            }
            other if takes_value => {
                out.push(flag.into());
                out.push(scalar(path, key, other)?.into());
            }
            _ => bail!("{}: `{key}` is a switch: true or false", path.display()),
        }
    }
    Ok((out, used))
}

/// A TOML value as the text a flag takes.
fn scalar(path: &Path, key: &str, value: &toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => bail!(
            "{}: `{key}` must be a string, a number or a list of them",
            path.display()
        ),
    })
}

/// The keys a file may hold: the long flags of `command`, in snake case.
pub fn keys(command: &clap::Command) -> Vec<String> {
    settings(command).map(|a| a.get_id().to_string()).collect()
}

/// `stele config example`: every key of `command`, commented out at its default, under its help.
pub fn example(command: &clap::Command) -> String {
    let mut out = String::from(
        "# stele.toml: the settings of `stele serve`. Each key is a long flag in snake case;\n\
         # a STELE_* variable or a flag overrides the file. Uncomment what you change.\n",
    );
    for arg in settings(command) {
        out.push('\n');
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        for line in help.lines() {
            out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
        }
        if let Some(env) = arg.get_env() {
            out.push_str(&format!("# (environment: {})\n", env.to_string_lossy()));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let value = if !arg.get_action().takes_values() {
            "false".to_string()
        } else if is_list(arg) {
            toml_list(&defaults)
        } else {
            match defaults.first() {
                Some(d) => toml_text(d),
                // No default: unset unless given.
                None => "\"…\"".to_string(),
            }
        };
        out.push_str(&format!("# {} = {value}\n", arg.get_id()));
    }
    out
}

/// A default's text as a TOML value: a number stays a number, anything else is a string.
fn toml_text(text: &str) -> String {
    if text.parse::<i64>().is_ok() || text == "true" || text == "false" {
        text.to_string()
    } else {
        toml::Value::String(text.to_string()).to_string()
    }
}

/// `stele config print`: the effective value of every key and where it came from, with the
/// secrets a value may hold (a database URL's password) redacted.
pub fn effective(
    command: &clap::Command,
    matches: &ArgMatches,
    file: Option<&Path>,
    from_file: &[String],
) -> String {
    let mut out = match file {
        Some(path) => format!("# configuration file: {}\n", path.display()),
        None => "# no configuration file\n".to_string(),
    };
    for arg in settings(command) {
        let id = arg.get_id().as_str();
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = if from_file.iter().any(|k| k == id) {
            "file"
        } else {
            match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                Some(ValueSource::DefaultValue) => "default",
                _ => "unset",
            }
        };
        let values: Vec<String> = values.iter().map(|v| redact(id, v)).collect();
        let value = if !arg.get_action().takes_values() {
            matches.get_flag(id).to_string()
        } else if is_list(arg) {
            toml_list(&values)
        } else {
            match values.first() {
                Some(v) => toml_text(v),
                None => {
                    out.push_str(&format!("# {id} is not set\n"));
                    continue;
                }
            }
        };
        out.push_str(&format!("{id} = {value}  # {source}\n"));
    }
    out
}

/// A value as it may be shown: a database URL without its password.
fn redact(id: &str, value: &str) -> String {
    if id == "database_url" {
        stele_server::app::backend::DatabaseUrl::parse(value)
            .map(|url| url.to_string())
            .unwrap_or_else(|_| "(unreadable URL, not shown)".to_string())
    } else {
        value.to_string()
    }
}

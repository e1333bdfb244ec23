//! Settings given once instead of on every command line: a YAML file
//! (`/etc/ig/config.yaml`, then `~/.config/ig/config.yaml` over it, or
//! `--config FILE` alone) and `IG_<FLAG_NAME>` environment variables.
//!
//! Keys are the long flag names. At the top: the global flags, and any flag
//! as a default for every command that has it (`output: json`). Under a
//! command's name, nested as on the command line (`trace: {exec: {cwd:
//! true}}`, `list-containers: {...}`): that command's flags. A flag on the
//! command line wins over the environment, which wins over the file, which
//! wins over the built-in default: what is not on the command line is
//! added to it before clap parses it, each value checked by the flag's own
//! parser first so that a bad one names its file, line and key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

pub const SYSTEM_FILE: &str = "/etc/ig/config.yaml";
/// Under $HOME.
pub const USER_FILE: &str = ".config/ig/config.yaml";
/// Environment variables: this, then the flag's long name in capitals, `-` as `_`.
pub const ENV_PREFIX: &str = "IG_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}:{line}: {key}: {message}")]
    Key { path: PathBuf, line: usize, key: String, message: String },
    #[error("{var}: {message}")]
    Env { var: String, message: String },
}

/// One file's settings: key path (e.g. `trace.exec.cwd`) to its values.
#[derive(Clone, Debug, Default)]
struct FileSettings {
    path: PathBuf,
    text: String,
    values: BTreeMap<Vec<String>, Vec<String>>,
}

/// Where the settings come from, for `config view` and errors.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    files: Vec<FileSettings>,
}

impl Settings {
    /// The files that apply: `--config FILE` (which must exist) alone, or
    /// the system file then the user's, each where it exists.
    pub fn load(explicit: Option<&Path>, home: Option<&Path>) -> Result<Self, ConfigError> {
        let paths: Vec<(PathBuf, bool)> = match explicit {
            Some(p) => vec![(p.to_path_buf(), true)],
            None => {
                let mut v = vec![(PathBuf::from(SYSTEM_FILE), false)];
                if let Some(h) = home {
                    v.push((h.join(USER_FILE), false));
                }
                v
            }
        };
        let mut files = Vec::new();
        for (path, must_exist) in paths {
            match std::fs::read_to_string(&path) {
                Ok(text) => files.push(parse_file(&path, text)?),
                // Not there, or not for this user (a HOME it cannot enter: `setpriv`
                // keeps root's): only a file given with --config must be read.
                Err(e)
                    if !must_exist
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                        ) => {}
                Err(source) => return Err(ConfigError::Read { path, source }),
            }
        }
        Ok(Self { files })
    }

    /// The last file's value for `key` (later files win), with where it is.
    fn lookup(&self, key: &[String]) -> Option<(&FileSettings, &Vec<String>)> {
        self.files.iter().rev().find_map(|f| f.values.get(key).map(|v| (f, v)))
    }

    /// No configuration file applies.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }
}

fn parse_file(path: &Path, text: String) -> Result<FileSettings, ConfigError> {
    let syntax = |message: String| ConfigError::Syntax { path: path.to_path_buf(), message };
    let doc: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| syntax(e.to_string()))?;
    let mut values = BTreeMap::new();
    match doc {
        serde_norway::Value::Null => {}
        serde_norway::Value::Mapping(m) => flatten(path, &text, &m, &mut Vec::new(), &mut values)?,
        _ => return Err(syntax("the top level must be a mapping of flag names".into())),
    }
    Ok(FileSettings { path: path.to_path_buf(), text, values })
}

/// Keys down to their scalar or list values; a mapping is a command's section.
fn flatten(
    path: &Path,
    text: &str,
    m: &serde_norway::Mapping,
    prefix: &mut Vec<String>,
    out: &mut BTreeMap<Vec<String>, Vec<String>>,
) -> Result<(), ConfigError> {
    for (k, v) in m {
        let Some(key) = k.as_str() else {
            // Within the section it is in, which is as close as a non-string key can be placed.
            return Err(key_error(path, text, prefix, &format!("{k:?} is not a flag or command name")));
        };
        prefix.push(key.to_string());
        let scalar = |v: &serde_norway::Value| match v {
            serde_norway::Value::Bool(b) => Some(b.to_string()),
            serde_norway::Value::Number(n) => Some(n.to_string()),
            serde_norway::Value::String(s) => Some(s.clone()),
            _ => None,
        };
        match v {
            serde_norway::Value::Mapping(inner) => flatten(path, text, inner, prefix, out)?,
            serde_norway::Value::Sequence(items) => {
                let values: Option<Vec<String>> = items.iter().map(scalar).collect();
                let values = values.ok_or_else(|| key_error(path, text, prefix, "a list of plain values"))?;
                out.insert(prefix.clone(), values);
            }
            // `key:` alone: nothing set.
            serde_norway::Value::Null => {}
            other => {
                let value =
                    scalar(other).ok_or_else(|| key_error(path, text, prefix, "an unexpected value"))?;
                out.insert(prefix.clone(), vec![value]);
            }
        }
        prefix.pop();
    }
    Ok(())
}

fn key_error(path: &Path, text: &str, key: &[String], message: &str) -> ConfigError {
    ConfigError::Key {
        path: path.to_path_buf(),
        line: line_of(text, key),
        key: key.join("."),
        message: message.into(),
    }
}

/// The line where `key` (a path of nested keys) is written: each part's
/// line, searched from the line of the part before.
fn line_of(text: &str, key: &[String]) -> usize {
    let mut from = 0;
    for part in key {
        let found = text.lines().enumerate().skip(from).find(|(_, l)| {
            let t = l.trim_start();
            let t = t.strip_prefix(part.as_str()).or_else(|| {
                t.strip_prefix(&format!("\"{part}\"")).or_else(|| t.strip_prefix(&format!("'{part}'")))
            });
            t.is_some_and(|rest| rest.trim_start().starts_with(':'))
        });
        match found {
            Some((i, _)) => from = i,
            None => break,
        }
    }
    from + 1
}

/// The subcommand names of a parse, outermost first (e.g. trace, exec).
fn command_path(matches: &ArgMatches) -> Vec<String> {
    let mut path = Vec::new();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_string());
        m = sub;
    }
    path
}

fn leaf<'a>(matches: &'a ArgMatches, path: &[String]) -> &'a ArgMatches {
    let mut m = matches;
    for name in path {
        m = m.subcommand_matches(name).expect("a path taken from the same matches");
    }
    m
}

fn subcommand<'a>(cmd: &'a Command, path: &[String]) -> &'a Command {
    let mut c = cmd;
    for name in path {
        c = c.find_subcommand(name).expect("a path taken from the same command");
    }
    c
}

/// Every long flag name of `cmd` and its subcommands, and every command path.
fn known(
    cmd: &Command,
    path: &mut Vec<String>,
    flags: &mut Vec<(Vec<String>, String)>,
    commands: &mut Vec<Vec<String>>,
) {
    commands.push(path.clone());
    for a in cmd.get_arguments() {
        if let Some(long) = a.get_long() {
            flags.push((path.clone(), long.to_string()));
        }
    }
    for sub in cmd.get_subcommands() {
        path.push(sub.get_name().to_string());
        known(sub, path, flags, commands);
        path.pop();
    }
}

/// Every key of the files is a flag (at the top: of any command; in a
/// section: of that command) or a command's section.
fn check_keys(settings: &Settings, cmd: &Command) -> Result<(), ConfigError> {
    let (mut flags, mut commands) = (Vec::new(), Vec::new());
    known(cmd, &mut Vec::new(), &mut flags, &mut commands);
    for f in &settings.files {
        for key in f.values.keys() {
            let (section, name) = key.split_at(key.len() - 1);
            let ok = if section.is_empty() {
                flags.iter().any(|(_, l)| *l == name[0])
            } else {
                commands.iter().any(|c| c == section)
                    && flags.iter().any(|(p, l)| p == section && *l == name[0])
            };
            if !ok {
                let what = if commands.iter().any(|c| c == section) || section.is_empty() {
                    "no such flag (see `ig config default`)".to_string()
                } else {
                    format!("no command `{}`", section.join(" "))
                };
                return Err(key_error(&f.path, &f.text, key, &what));
            }
        }
    }
    Ok(())
}

/// The values to add for `arg` of the command at `path`, and where they come from.
fn wanted<'a>(
    settings: &'a Settings,
    env: &dyn Fn(&str) -> Option<String>,
    path: &[String],
    long: &str,
) -> Option<(Vec<String>, Source<'a>)> {
    let var = format!("{ENV_PREFIX}{}", long.to_ascii_uppercase().replace('-', "_"));
    if let Some(v) = env(&var) {
        return Some((vec![v], Source::Env(var)));
    }
    // The command's own section, then each enclosing one, then the top.
    for depth in (0..=path.len()).rev() {
        let mut key: Vec<String> = path[..depth].to_vec();
        key.push(long.to_string());
        if let Some((file, values)) = settings.lookup(&key) {
            return Some((values.clone(), Source::File(file, key)));
        }
    }
    None
}

enum Source<'a> {
    Env(String),
    File(&'a FileSettings, Vec<String>),
}

impl Source<'_> {
    fn error(&self, message: String) -> ConfigError {
        match self {
            Source::Env(var) => ConfigError::Env { var: var.clone(), message },
            Source::File(f, key) => key_error(&f.path, &f.text, key, &message),
        }
    }
}

/// The command line with what the environment and the files set added,
/// for every flag of the command it runs that it does not give itself.
/// `cmd` is the clap command that will parse it; a command line clap
/// refuses is returned as it is, for clap to say why.
pub fn complete_args(
    cmd: &Command,
    args: Vec<OsString>,
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<OsString>, ConfigError> {
    check_keys(settings, cmd)?;
    let Ok(matches) = cmd.clone().try_get_matches_from(&args) else { return Ok(args) };
    let mut built = cmd.clone();
    built.build();
    let path = command_path(&matches);
    let (leaf_cmd, leaf_matches) = (subcommand(&built, &path), leaf(&matches, &path));
    let mut extra: Vec<OsString> = Vec::new();
    for arg in leaf_cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(leaf_matches.value_source(arg.get_id().as_str()), Some(ValueSource::CommandLine)) {
            continue;
        }
        if matches!(arg.get_action(), ArgAction::Help | ArgAction::Version) {
            continue;
        }
        let Some((values, source)) = wanted(settings, env, &path, long) else { continue };
        extra.extend(tokens(cmd, &path, arg, long, &values).map_err(|m| source.error(m))?);
    }
    if extra.is_empty() {
        return Ok(args);
    }
    // Before a `--`, if there is one; flags of the leaf go after its name anyway.
    let mut args = args;
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.splice(at..at, extra);
    Ok(args)
}

/// The command-line tokens for `values` of `arg` (of the command at
/// `path`), checked by its own parser: the command line with only them.
fn tokens(
    cmd: &Command,
    path: &[String],
    arg: &Arg,
    long: &str,
    values: &[String],
) -> Result<Vec<OsString>, String> {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return match values {
            [v] if v == "true" => Ok(vec![format!("--{long}").into()]),
            [v] if v == "false" => Ok(Vec::new()),
            _ => Err("true or false".into()),
        };
    }
    let tokens: Vec<OsString> = match arg.get_action() {
        ArgAction::Append => values.iter().map(|v| format!("--{long}={v}").into()).collect(),
        _ => vec![format!("--{long}={}", values.join(",")).into()],
    };
    let alone = std::iter::once(OsString::from(cmd.get_name()))
        .chain(path.iter().map(OsString::from))
        .chain(tokens.iter().cloned());
    cmd.clone().try_get_matches_from(alone).map_err(|e| {
        let text = e.to_string();
        text.lines().next().unwrap_or(&text).trim_start_matches("error: ").to_string()
    })?;
    Ok(tokens)
}

/// `ig config default`: every flag, commented out at its default: the
/// global ones and those every gadget takes once at the top, each
/// command's own under its name.
pub fn default_file(cmd: &Command) -> String {
    let mut out = String::from(
        "# ig's configuration: /etc/ig/config.yaml, then ~/.config/ig/config.yaml, or --config FILE.\n\
         # Keys are the long flag names. A flag on the command line wins over IG_<FLAG_NAME> in the\n\
         # environment, which wins over this file. At the top: global flags, and any flag as a\n\
         # default for every command that has it; under a command's name: its own flags.\n",
    );
    let mut built = cmd.clone();
    built.build();
    let globals: Vec<&Arg> = built.get_arguments().filter(|a| a.is_global_set() && shown(a)).collect();
    out.push_str("\n# Global flags.\n");
    for a in &globals {
        entry(&mut out, a, 0);
    }
    // The flags every gadget has (trace, top and snapshot ones alike).
    let gadgets: Vec<&Command> = built
        .get_subcommands()
        .filter(|c| crate::gadgets::CATEGORIES.contains(&c.get_name()))
        .flat_map(|c| c.get_subcommands())
        // clap's own `help` subcommand is no gadget.
        .filter(|g| g.get_name() != "help")
        .collect();
    let global_names: Vec<&str> = globals.iter().filter_map(|a| a.get_long()).collect();
    let common: Vec<&Arg> = gadgets.first().map_or(Vec::new(), |first| {
        first
            .get_arguments()
            .filter(|a| shown(a) && !global_names.contains(&a.get_long().unwrap_or("")))
            .filter(|a| gadgets.iter().all(|g| g.get_arguments().any(|b| b.get_long() == a.get_long())))
            .collect()
    });
    out.push_str("\n# Flags every gadget takes: set here, they apply to all of them.\n");
    for a in &common {
        entry(&mut out, a, 0);
    }
    let mut skip = global_names;
    skip.extend(common.iter().filter_map(|a| a.get_long()));
    out.push_str("\n# Each command's own flags.\n");
    section(&mut out, &built, 0, &skip);
    out
}

fn shown(a: &Arg) -> bool {
    a.get_long().is_some_and(|l| l != "help" && l != "version" && l != "config") && !a.is_hide_set()
}

fn section(out: &mut String, cmd: &Command, indent: usize, skip: &[&str]) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let own: Vec<&Arg> =
            sub.get_arguments().filter(|a| shown(a) && !skip.contains(&a.get_long().unwrap_or(""))).collect();
        let mut inner = String::new();
        section(&mut inner, sub, indent + 2, skip);
        if own.is_empty() && inner.is_empty() {
            continue;
        }
        out.push_str(&format!("#{:indent$}{}:\n", "", sub.get_name(), indent = indent));
        for a in own {
            entry(out, a, indent + 2);
        }
        out.push_str(&inner);
    }
}

fn entry(out: &mut String, a: &Arg, indent: usize) {
    let long = a.get_long().unwrap_or_default();
    let default = match a.get_action() {
        ArgAction::SetTrue => "false".to_string(),
        _ => a.get_default_values().iter().map(|v| v.to_string_lossy()).collect::<Vec<_>>().join(","),
    };
    let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
    let line = format!("#{:indent$}{long}: {default}", "", indent = indent);
    match help.lines().next() {
        Some(h) if !h.is_empty() => out.push_str(&format!("{}    # {h}\n", line.trim_end())),
        _ => out.push_str(&format!("{}\n", line.trim_end())),
    }
}

/// `ig config view`: what the files and the environment set, merged.
pub fn view(settings: &Settings, cmd: &Command, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let paths = settings.paths();
    out.push_str(&match paths.is_empty() {
        true => "# no configuration file\n".to_string(),
        false => format!(
            "# from {}\n",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", then ")
        ),
    });
    let mut merged: BTreeMap<Vec<String>, (Vec<String>, String)> = BTreeMap::new();
    for f in &settings.files {
        for (k, v) in &f.values {
            merged.insert(k.clone(), (v.clone(), f.path.display().to_string()));
        }
    }
    let (mut flags, mut commands) = (Vec::new(), Vec::new());
    known(cmd, &mut Vec::new(), &mut flags, &mut commands);
    let mut names: Vec<&String> = flags.iter().map(|(_, l)| l).collect();
    names.sort();
    names.dedup();
    for long in names {
        let var = format!("{ENV_PREFIX}{}", long.to_ascii_uppercase().replace('-', "_"));
        if let Some(v) = env(&var) {
            merged.insert(vec![long.clone()], (vec![v], var));
        }
    }
    for (key, (values, from)) in merged {
        let value = if values.len() == 1 { values[0].clone() } else { format!("[{}]", values.join(", ")) };
        out.push_str(&format!("{}: {value}    # {from}\n", key.join(".")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn settings(text: &str) -> Result<Settings, ConfigError> {
        let f = parse_file(Path::new("/test/config.yaml"), text.to_string())?;
        Ok(Settings { files: vec![f] })
    }

    fn complete(text: &str, env: &[(&str, &str)], args: &[&str]) -> Result<Vec<String>, ConfigError> {
        let s = settings(text)?;
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let out = complete_args(&crate::cli::Cli::command(), args, &s, &|k| env.get(k).cloned())?;
        Ok(out.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn the_file_fills_in_what_the_command_line_leaves_out() {
        let text =
            "output: json\nauto-mount-filesystems: true\ntrace:\n  exec:\n    cwd: true\n    output: yaml\n";
        let args = complete(text, &[], &["ig", "trace", "exec"]).unwrap();
        assert!(args.contains(&"--output=yaml".into()), "the gadget's section wins over the top: {args:?}");
        assert!(args.contains(&"--cwd".into()) && args.contains(&"--auto-mount-filesystems".into()));
        let args = complete(text, &[], &["ig", "trace", "open"]).unwrap();
        assert!(args.contains(&"--output=json".into()), "the top applies to every gadget: {args:?}");
        assert!(!args.iter().any(|a| a == "--cwd"), "exec's section is exec's: {args:?}");
    }

    #[test]
    fn flag_beats_environment_beats_file() {
        let text = "output: json\n";
        let args = complete(text, &[("IG_OUTPUT", "yaml")], &["ig", "trace", "exec"]).unwrap();
        assert!(
            args.contains(&"--output=yaml".into()) && !args.contains(&"--output=json".into()),
            "{args:?}"
        );
        let args =
            complete(text, &[("IG_OUTPUT", "yaml")], &["ig", "trace", "exec", "-o", "columns"]).unwrap();
        assert_eq!(args, ["ig", "trace", "exec", "-o", "columns"], "nothing added");
        let args =
            complete("", &[("IG_CONTAINERD_SOCKETPATH", "/x.sock")], &["ig", "list-containers"]).unwrap();
        assert!(args.contains(&"--containerd-socketpath=/x.sock".into()), "{args:?}");
    }

    #[test]
    fn lists_and_repeated_flags() {
        let text =
            "trace:\n  open:\n    prefixes: [/etc, /var]\n    filter:\n      - comm:cat\n      - pid:>1\n";
        let args = complete(text, &[], &["ig", "trace", "open"]).unwrap();
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(&args).unwrap();
        let crate::cli::Command::Gadget(crate::cli::GadgetCommand::Trace {
            gadget: crate::gadgets::TraceCommand::Open(open),
        }) = cli.command
        else {
            panic!("not trace open: {args:?}");
        };
        assert_eq!(open.prefixes, ["/etc", "/var"]);
        assert_eq!(open.common.filter, ["comm:cat", "pid:>1"]);
    }

    #[test]
    fn a_bad_file_names_its_line_and_key() {
        let bad_value = "# comment\ntrace:\n  exec:\n    output: xml\n";
        let e = complete(bad_value, &[], &["ig", "trace", "exec"]).unwrap_err().to_string();
        assert!(e.starts_with("/test/config.yaml:4: trace.exec.output: "), "{e}");
        assert!(e.contains("xml"), "{e}");
        let unknown = "trace:\n  exec:\n    cwd: true\n    colour: red\n";
        let e = complete(unknown, &[], &["ig", "trace", "exec"]).unwrap_err().to_string();
        assert!(e.starts_with("/test/config.yaml:4: trace.exec.colour: no such flag"), "{e}");
        let e = complete("trace:\n  nosuch:\n    cwd: true\n", &[], &["ig", "trace", "exec"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no command `trace nosuch`"), "{e}");
        let e = complete("host: maybe\n", &[], &["ig", "trace", "exec"]).unwrap_err().to_string();
        assert!(e.starts_with("/test/config.yaml:1: host: true or false"), "{e}");
        assert!(settings("a: [b\n").unwrap_err().to_string().starts_with("/test/config.yaml: "));
        let e = complete("", &[("IG_OUTPUT", "xml")], &["ig", "trace", "exec"]).unwrap_err().to_string();
        assert!(e.starts_with("IG_OUTPUT: "), "{e}");
    }

    #[test]
    fn the_default_file_is_valid_and_lists_every_gadget() {
        let cmd = crate::cli::Cli::command();
        let text = default_file(&cmd);
        assert!(text.contains("#  exec:\n") && text.contains("#    cwd: false"), "{text}");
        assert_eq!(text.matches("#k8s-selector:").count(), 1, "the common flags once: {text}");
        assert!(text.contains("#containerd-socketpath: /run/containerd/containerd.sock"), "{text}");
        // Uncommented, it is a file ig accepts as it is.
        let uncommented: String = text
            .lines()
            .filter(|l| !l.starts_with("# "))
            .map(|l| l.strip_prefix('#').unwrap_or(l).split("    #").next().unwrap().to_string() + "\n")
            .collect();
        let s = settings(&uncommented).unwrap();
        check_keys(&s, &cmd).unwrap();
        for section in
            ["#  open:\n#    full-path: false", "#  file:\n#    interval: 1", "#  process:\n#    threads"]
        {
            assert!(text.contains(section), "{section:?} in {text}");
        }
    }
}

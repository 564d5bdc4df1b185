//! The options of `ringnfs serve`, each defined once, in the table below (the
//! `serve_options!` call): its config key (the field name), flag, placeholder, default,
//! range and help. From that table come
//! - the command line: the clap arguments of `serve` ([`ServeOptions`] implements
//!   `clap::Args`), with the help text, the range and the default shown;
//! - the config file: `serve --config FILE` deserializes into the same [`ServeOptions`]
//!   (one key per option, unknown keys refused);
//! - the checks: one parser per value type for both, and integer ranges checked by
//!   [`Range::check`], the check `PATCH /api/v1/settings` uses for the live settings
//!   (their ranges and defaults are the constants of [`crate::state::settings`]).
//!
//! A [`ServeOptions`] holds what was given (`None`: not given); [`StartOptions`] puts the
//! command line over the config file over the defaults, and tells where each value came
//! from (a live setting given explicitly wins over one persisted by `ctl settings set`).

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, ValueEnum};
use ipnet::IpNet;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use crate::cluster::{self, ClusterArg, ClusterOptions};
use crate::control::ControlAddr;
use crate::nfs4::export::{DEFAULT_ANON_ID, ExportOptions};
use crate::server::{self, BackendKind, IoMode, Limits, ServerConfig};
use crate::state::settings::{self, OverLimit, SettingSources, Source};
pub use crate::state::settings::{Range, RangeError};
use crate::transport::{self, TransportTuning};

/// How an option is given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `--flag VALUE` (repeatable for a list); `key = value` in the config file.
    Value,
    /// `--flag` sets it; `key = true|false` in the config file.
    Switch,
    /// `--no-flag` clears it; `key = true|false` in the config file.
    NoSwitch,
}

/// Everything about one option but its value type and default value: what `--help`
/// shows and what the parsers check.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The config key (the field name of [`ServeOptions`]).
    pub key: &'static str,
    /// The long flag, without `--`: the key with dashes (`no-` before it for a
    /// [`Form::NoSwitch`]) unless set.
    pub flag: String,
    pub form: Form,
    /// The placeholder: N, SECS, MS, BYTES, KIB, FILE, DIR, ADDR:PORT, CIDR; empty for a
    /// choice (its values joined by `|`).
    pub value_name: &'static str,
    /// The help text, `{range}` replaced by the range and `{NAME}` by what
    /// [`Spec::fill`] gives for NAME.
    pub help: String,
    /// The default as `--help` shows it.
    pub default: Option<String>,
    pub range: Option<Range>,
    /// Other values the help text names, as (NAME, text) for `{NAME}`.
    fills: Vec<(&'static str, String)>,
}

impl Spec {
    /// `--flag VALUE`.
    pub fn value(value_name: &'static str) -> Spec {
        Spec {
            key: "",
            flag: String::new(),
            form: Form::Value,
            value_name,
            help: String::new(),
            default: None,
            range: None,
            fills: Vec::new(),
        }
    }

    /// `--flag VALUE`, VALUE one of the type's choices.
    pub fn choice() -> Spec {
        Spec::value("")
    }

    /// `--flag` alone.
    pub fn switch() -> Spec {
        Spec {
            form: Form::Switch,
            ..Spec::value("")
        }
    }

    /// `--no-flag` alone.
    pub fn no_switch() -> Spec {
        Spec {
            form: Form::NoSwitch,
            ..Spec::value("")
        }
    }

    pub fn range(self, range: Range) -> Spec {
        Spec {
            range: Some(range),
            ..self
        }
    }

    /// The default as `--help` words it, when it is not the value itself.
    pub fn shown(self, default: &str) -> Spec {
        Spec {
            default: Some(default.to_string()),
            ..self
        }
    }

    /// `{name}` in the help text is `text` (a limit defined elsewhere, so the help
    /// never repeats its number by hand).
    pub fn fill(mut self, name: &'static str, text: String) -> Spec {
        self.fills.push((name, text));
        self
    }

    /// A flag that is not the key with dashes.
    pub fn flag(self, flag: &str) -> Spec {
        Spec {
            flag: flag.to_string(),
            ..self
        }
    }

    /// Fill in what the table's row gives: key, help lines, shown default.
    fn finish(mut self, key: &'static str, doc: &[&str], default: Option<String>) -> Spec {
        self.key = key;
        if self.flag.is_empty() {
            let dashed = key.replace('_', "-");
            self.flag = match self.form {
                Form::NoSwitch => format!("no-{dashed}"),
                _ => dashed,
            };
        }
        // One paragraph without its final period, as clap's derive words help.
        let help = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        let help = help.strip_suffix('.').unwrap_or(&help).to_string();
        let mut help = match self.range {
            Some(r) => help.replace("{range}", &r.to_string()),
            None => help,
        };
        for (name, text) in &self.fills {
            help = help.replace(&format!("{{{name}}}"), text);
        }
        self.help = help;
        if self.form == Form::Value {
            self.default = self.default.or(default);
        }
        self
    }

    /// The clap argument.
    fn arg<T: OptionValue>(&self) -> Arg {
        let help = match &self.default {
            Some(d) => format!("{} [default: {d}]", self.help),
            None => self.help.clone(),
        };
        T::configure(Arg::new(self.key).long(self.flag.clone()).help(help), self)
    }
}

/// A value refused by an option's parser.
#[derive(Debug, Clone, PartialEq)]
pub enum Invalid {
    Range(RangeError),
    Other(String),
}

impl Invalid {
    /// For the command line (clap names the flag and the value before it).
    fn for_cli(self) -> String {
        match self {
            Invalid::Range(e) => e.range.requirement(),
            Invalid::Other(s) => s,
        }
    }

    /// For the config file: the key first.
    fn for_config(self, key: &str) -> String {
        match self {
            Invalid::Range(e) => e.to_string(),
            Invalid::Other(s) => format!("{key}: {s}"),
        }
    }
}

/// A value one command-line word gives (also one config-file value, or one element of
/// a list).
pub trait Word: Clone + Send + Sync + 'static {
    /// Parse a command-line word, or a string in the config file.
    fn parse(s: &str, spec: &Spec) -> Result<Self, Invalid>;

    /// From a config-file value: a string, parsed like the command line.
    fn from_toml(v: toml::Value, spec: &Spec) -> Result<Self, Invalid> {
        match v {
            toml::Value::String(s) => Self::parse(&s, spec),
            other => Err(Invalid::Other(format!(
                "expected a string, got {}",
                other.type_str()
            ))),
        }
    }

    /// How `--help` shows it as a default.
    fn show(&self) -> String;

    /// The values of a choice.
    fn choices() -> Vec<PossibleValue> {
        Vec::new()
    }
}

/// The type of an option: one [`Word`], a list of them, or a `bool` switch.
pub trait OptionValue: Sized + Clone {
    /// Set the action and parser of the option's argument.
    fn configure(arg: Arg, spec: &Spec) -> Arg;
    /// The value given on the command line.
    fn from_matches(m: &ArgMatches, id: &str) -> Option<Self>;
    /// The value of the option's key in the config file.
    fn from_toml(v: toml::Value, spec: &Spec) -> Result<Self, Invalid>;
    fn show(&self) -> String;
}

/// The clap parser of one word.
struct WordParser<T> {
    spec: Spec,
    word: PhantomData<fn() -> T>,
}

impl<T> Clone for WordParser<T> {
    fn clone(&self) -> Self {
        WordParser {
            spec: self.spec.clone(),
            word: PhantomData,
        }
    }
}

impl<T: Word> TypedValueParser for WordParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let spec = self.spec.clone();
        // The closure parser words the error as clap does for its own parsers.
        (move |s: &str| T::parse(s, &spec).map_err(Invalid::for_cli)).parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        let c = T::choices();
        (!c.is_empty()).then(|| Box::new(c.into_iter()) as Box<dyn Iterator<Item = _>>)
    }
}

fn with_parser<T: Word>(arg: Arg, spec: &Spec) -> Arg {
    let choices = T::choices();
    let name = if spec.value_name.is_empty() {
        let names: Vec<&str> = choices.iter().map(|c| c.get_name()).collect();
        names.join("|")
    } else {
        spec.value_name.to_string()
    };
    arg.value_name(name).value_parser(WordParser::<T> {
        spec: spec.clone(),
        word: PhantomData,
    })
}

impl<T: Word> OptionValue for T {
    fn configure(arg: Arg, spec: &Spec) -> Arg {
        with_parser::<T>(arg.action(ArgAction::Set), spec)
    }

    fn from_matches(m: &ArgMatches, id: &str) -> Option<Self> {
        m.get_one::<T>(id).cloned()
    }

    fn from_toml(v: toml::Value, spec: &Spec) -> Result<Self, Invalid> {
        <T as Word>::from_toml(v, spec)
    }

    fn show(&self) -> String {
        Word::show(self)
    }
}

/// A repeatable option; in the config file an array (or one value).
impl<T: Word> OptionValue for Vec<T> {
    fn configure(arg: Arg, spec: &Spec) -> Arg {
        with_parser::<T>(arg.action(ArgAction::Append), spec)
    }

    fn from_matches(m: &ArgMatches, id: &str) -> Option<Self> {
        m.get_many::<T>(id).map(|v| v.cloned().collect())
    }

    fn from_toml(v: toml::Value, spec: &Spec) -> Result<Self, Invalid> {
        match v {
            toml::Value::Array(items) => items.into_iter().map(|v| T::from_toml(v, spec)).collect(),
            one => Ok(vec![T::from_toml(one, spec)?]),
        }
    }

    fn show(&self) -> String {
        let v: Vec<String> = self.iter().map(Word::show).collect();
        v.join(", ")
    }
}

/// A switch (`--flag` or `--no-flag`).
impl OptionValue for bool {
    fn configure(arg: Arg, spec: &Spec) -> Arg {
        arg.action(match spec.form {
            Form::NoSwitch => ArgAction::SetFalse,
            _ => ArgAction::SetTrue,
        })
    }

    fn from_matches(m: &ArgMatches, id: &str) -> Option<Self> {
        (m.value_source(id) == Some(ValueSource::CommandLine)).then(|| m.get_flag(id))
    }

    fn from_toml(v: toml::Value, _: &Spec) -> Result<Self, Invalid> {
        match v {
            toml::Value::Boolean(b) => Ok(b),
            other => Err(Invalid::Other(format!(
                "expected true or false, got {}",
                other.type_str()
            ))),
        }
    }

    fn show(&self) -> String {
        self.to_string()
    }
}

/// An integer in the option's range (without one: the type's).
fn number<T: TryFrom<u64>>(n: i128, spec: &Spec, type_max: u64) -> Result<T, Invalid> {
    let range = spec.range.unwrap_or(Range::new(0, type_max));
    let range = Range {
        max: range.max.min(type_max),
        ..range
    };
    let v = range.check(spec.key, n).map_err(Invalid::Range)?;
    T::try_from(v).map_err(|_| Invalid::Other(format!("{v} is too large")))
}

macro_rules! integer_words {
    ($($t:ty),*) => {$(
        impl Word for $t {
            fn parse(s: &str, spec: &Spec) -> Result<Self, Invalid> {
                let n: i128 = s.trim().parse().map_err(|_| {
                    Invalid::Other(format!("{s:?} is not a whole number"))
                })?;
                number(n, spec, <$t>::MAX as u64)
            }

            fn from_toml(v: toml::Value, spec: &Spec) -> Result<Self, Invalid> {
                match v {
                    toml::Value::Integer(n) => number(n.into(), spec, <$t>::MAX as u64),
                    other => Err(Invalid::Other(format!(
                        "expected a whole number, got {}",
                        other.type_str()
                    ))),
                }
            }

            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

integer_words!(u16, u32, u64, usize);

impl Word for String {
    fn parse(s: &str, _: &Spec) -> Result<Self, Invalid> {
        Ok(s.to_string())
    }

    fn show(&self) -> String {
        self.clone()
    }
}

impl Word for PathBuf {
    fn parse(s: &str, _: &Spec) -> Result<Self, Invalid> {
        Ok(PathBuf::from(s))
    }

    fn show(&self) -> String {
        self.display().to_string()
    }
}

/// `ADDR:PORT` or `HOST:PORT` (the first address it resolves to, like `bench --server`).
impl Word for SocketAddr {
    fn parse(s: &str, _: &Spec) -> Result<Self, Invalid> {
        crate::config::resolve_addr(s).map_err(Invalid::Other)
    }

    fn show(&self) -> String {
        self.to_string()
    }
}

impl Word for IpNet {
    fn parse(s: &str, _: &Spec) -> Result<Self, Invalid> {
        s.trim()
            .parse()
            .map_err(|_| Invalid::Other(format!("{s:?} is not a network (e.g. 10.0.0.0/8)")))
    }

    fn show(&self) -> String {
        self.to_string()
    }
}

/// What `export` names: one directory (`--export DIR`, `export = "DIR"`), or the
/// exports of `[[export]]` tables (config file only).
#[derive(Debug, Clone, PartialEq)]
pub enum ExportArg {
    Dir(PathBuf),
    Tables(Vec<crate::control::exports::ExportSpec>),
}

impl Word for ExportArg {
    fn parse(s: &str, _: &Spec) -> Result<Self, Invalid> {
        Ok(ExportArg::Dir(PathBuf::from(s)))
    }

    fn from_toml(v: toml::Value, spec: &Spec) -> Result<Self, Invalid> {
        match v {
            toml::Value::String(s) => Self::parse(&s, spec),
            toml::Value::Array(tables) => {
                let mut out = Vec::new();
                for (i, t) in tables.into_iter().enumerate() {
                    let e: crate::control::exports::ExportSpec = t
                        .try_into()
                        .map_err(|e| Invalid::Other(format!("[[export]] number {}: {e}", i + 1)))?;
                    out.push(e);
                }
                if out.is_empty() {
                    return Err(Invalid::Other("no [[export]] tables".into()));
                }
                Ok(ExportArg::Tables(out))
            }
            other => Err(Invalid::Other(format!(
                "expected a directory or [[export]] tables, got {}",
                other.type_str()
            ))),
        }
    }

    fn show(&self) -> String {
        match self {
            ExportArg::Dir(d) => d.display().to_string(),
            ExportArg::Tables(t) => format!("{} exports", t.len()),
        }
    }
}

/// `etcd=URL[,URL...]`.
impl Word for ClusterArg {
    fn parse(s: &str, _: &Spec) -> Result<Self, Invalid> {
        s.parse().map_err(Invalid::Other)
    }

    fn show(&self) -> String {
        self.to_string()
    }
}

/// `ADDR:PORT` or `off`.
impl Word for ControlAddr {
    fn parse(s: &str, _: &Spec) -> Result<Self, Invalid> {
        s.parse().map_err(Invalid::Other)
    }

    fn show(&self) -> String {
        self.0.map_or_else(|| "off".to_string(), |a| a.to_string())
    }
}

macro_rules! choice_words {
    ($($t:ty),*) => {$(
        impl Word for $t {
            fn parse(s: &str, _: &Spec) -> Result<Self, Invalid> {
                <$t as ValueEnum>::from_str(s.trim(), true).map_err(|_| {
                    let names: Vec<String> =
                        Self::choices().iter().map(|c| c.get_name().to_string()).collect();
                    Invalid::Other(format!("{s:?} is not one of {}", names.join(", ")))
                })
            }

            fn show(&self) -> String {
                self.to_possible_value()
                    .map_or_else(String::new, |v| v.get_name().to_string())
            }

            fn choices() -> Vec<PossibleValue> {
                <$t>::value_variants()
                    .iter()
                    .filter_map(ValueEnum::to_possible_value)
                    .collect()
            }
        }
    )*};
}

choice_words!(OverLimit, BackendKind, IoMode);

/// A config-file value of an option of type `T`, read and checked like the command
/// line's.
struct ConfigValue<'a, T>(&'a Spec, PhantomData<T>);

impl<'de, T: OptionValue> DeserializeSeed<'de> for ConfigValue<'_, T> {
    type Value = T;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        let v = <toml::Value as de::Deserialize>::deserialize(d)?;
        T::from_toml(v, self.0).map_err(|e| de::Error::custom(e.for_config(self.0.key)))
    }
}

/// What an unknown config key may have meant: the key of an option whose flag it is
/// (`no_pin`: `pin = false`), or a key a letter or two away.
fn hint(key: &str) -> String {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    let dashed = key.replace('_', "-");
    if let Some(s) = ServeOptions::specs().into_iter().find(|s| s.flag == dashed) {
        return match s.form {
            Form::NoSwitch => format!(" (--{} is `{} = false`)", s.flag, s.key),
            _ => format!(" (--{} is `{}`)", s.flag, s.key),
        };
    }
    let normal = dashed.replace('-', "_");
    ServeOptions::KEYS
        .iter()
        .map(|k| (distance(&normal, k), *k))
        .filter(|(d, _)| d * 3 <= normal.len())
        .min()
        .map_or_else(String::new, |(_, k)| format!(" (did you mean `{k}`?)"))
}

fn unknown_key<E: de::Error>(key: &str) -> E {
    E::custom(format!(
        "unknown field `{key}`{}; the keys are the options of `ringnfs serve --help` with \
         underscores",
        hint(key)
    ))
}

/// A config key, refused (with the key's position) when it is not an option's.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let key = <String as de::Deserialize>::deserialize(d)?;
        match ServeOptions::KEYS.contains(&key.as_str()) {
            true => Ok(key),
            false => Err(unknown_key(&key)),
        }
    }
}

/// The table: one row per option. The field name is the config key; the doc comment
/// is the help (`{range}` where the range goes); `= DEFAULT` unless there is none; then
/// the [`Spec`]: form, placeholder, range, a shown default, a flag that is not the key.
macro_rules! serve_options {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident : $ty:ty $(= $default:expr)? => $spec:expr;
    )+) => {
        /// The options of `ringnfs serve` that were given (on the command line, or in
        /// the config file); `None`: not given. The getter of the same name gives the
        /// value or the default.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct ServeOptions {
            $( $(#[doc = $doc])+ pub $key: Option<$ty>, )+
        }

        impl ServeOptions {
            /// Every option's config key, in `--help` order.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($key)),+];

            /// The description of the option `key`.
            pub fn spec(key: &str) -> Option<Spec> {
                match key {
                    $( stringify!($key) => Some({
                        let spec: Spec = $spec;
                        spec.finish(stringify!($key), &[$($doc),+], shown_default!($ty $(, $default)?))
                    }), )+
                    _ => None,
                }
            }

            fn args() -> Vec<Arg> {
                vec![$( spec_of(stringify!($key)).arg::<$ty>() ),+]
            }

            fn from_matches(m: &ArgMatches) -> Self {
                Self { $( $key: <$ty as OptionValue>::from_matches(m, stringify!($key)), )+ }
            }

            /// Read the config-file value of `key` from `map`.
            fn read_value<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
                match key {
                    $( stringify!($key) => {
                        let spec = spec_of(stringify!($key));
                        self.$key = Some(map.next_value_seed(ConfigValue::<$ty>(&spec, PhantomData))?);
                    } )+
                    other => return Err(unknown_key(other)),
                }
                Ok(())
            }

            /// The options of `self`, and those of `other` that `self` lacks.
            pub fn or(self, other: ServeOptions) -> ServeOptions {
                ServeOptions { $( $key: self.$key.or(other.$key), )+ }
            }

            $( getter!($key: $ty $(= $default)?); )+
        }
    };
}

macro_rules! shown_default {
    ($ty:ty, $default:expr) => {{
        let d: $ty = $default;
        Some(OptionValue::show(&d))
    }};
    ($ty:ty) => {
        None
    };
}

macro_rules! getter {
    ($key:ident : $ty:ty = $default:expr) => {
        #[doc = concat!("`", stringify!($key), "` as given, or its default.")]
        pub fn $key(&self) -> $ty {
            self.$key.clone().unwrap_or_else(|| $default)
        }
    };
    ($key:ident : $ty:ty) => {
        #[doc = concat!("`", stringify!($key), "` as given (it has no default).")]
        pub fn $key(&self) -> Option<$ty> {
            self.$key.clone()
        }
    };
}

fn spec_of(key: &str) -> Spec {
    ServeOptions::spec(key).expect("a key of the option table")
}

/// A range of the transport's as a [`Range`].
fn span<T: Copy + Into<u64>>(r: std::ops::RangeInclusive<T>) -> Range {
    Range::new((*r.start()).into(), (*r.end()).into())
}

// Placeholders: N (a count), SECS, MS, BYTES, KIB, FILE, DIR, ADDR:PORT, CIDR, REALM, NAME,
// etcd=URLS, or the
// choices (`local|memory`).
serve_options! {
    /// Address to listen on, or HOST:PORT (repeatable: e.g. 127.0.0.1:2049 and
    /// 127.0.0.2:2049).
    listen: Vec<SocketAddr> = vec![server::DEFAULT_LISTEN] => Spec::value("ADDR:PORT");
    /// Worker threads, one io_uring ring each.
    threads: usize = 0 => Spec::value("N").shown("one per CPU");
    /// Do not pin workers to CPUs.
    pin: bool = true => Spec::no_switch();
    /// Directory for the server's persistent identity, token and saved settings.
    state_dir: PathBuf = PathBuf::from(server::DEFAULT_STATE_DIR) => Spec::value("DIR");
    /// Connections one session may bind ({range}).
    max_connections_per_session: u32 = settings::DEFAULT_MAX_CONNECTIONS_PER_SESSION
        => Spec::value("N").range(settings::MAX_CONNECTIONS_PER_SESSION_RANGE);
    /// Binding a connection to a session unbinds it from its other sessions (pre-RFC 8881).
    exclusive_binding: bool = false => Spec::switch();
    /// A SEQUENCE on a connection its session has no room for (over
    /// --max-connections-per-session): `serve` runs it without binding the connection,
    /// `delay` answers NFS4ERR_DELAY. The bind is refused either way.
    over_limit: OverLimit = OverLimit::default() => Spec::choice();
    /// Lease time in seconds ({range}).
    lease_time: u32 = settings::DEFAULT_LEASE_SECS
        => Spec::value("SECS").range(settings::LEASE_TIME_RANGE);
    /// Fore-channel slots offered per session ({range}).
    max_slots: u32 = server::DEFAULT_MAX_FORE_SLOTS
        => Spec::value("N").range(Range::new(1, 1024));
    /// Directory to export at the pseudo root (local backend only); created with mode
    /// 1777 if missing. Several exports: `[[export]]` tables in --config ("Exports" in
    /// docs/operator-guide.md); the export options below are then their defaults.
    export: ExportArg = ExportArg::Dir(PathBuf::from(server::DEFAULT_EXPORT))
        => Spec::value("DIR");
    /// Where files live: real files under --export, or RAM. The local backend needs root
    /// (it reopens files by handle).
    backend: BackendKind = BackendKind::Local => Spec::choice();
    /// How READ and WRITE data go through the page cache (local backend): `buffered`
    /// keeps it cached, `dontcache` drops it once read or written back (RWF_DONTCACHE,
    /// Linux 6.14+), `direct` bypasses it (O_DIRECT for the aligned part of each READ and
    /// WRITE); buffered where the kernel or filesystem refuses them.
    io_mode: IoMode = IoMode::default() => Spec::choice();
    /// Refuse every change (NFS4ERR_ROFS).
    read_only: bool = ExportOptions::default().read_only => Spec::switch();
    /// Grant delegations on OPEN, recalled (CB_RECALL) when another client conflicts;
    /// live setting `delegations` (`ringnfs ctl settings set --delegations`).
    delegations: bool = false => Spec::switch();
    /// Do not map uid/gid 0 to the anonymous ids.
    root_squash: bool = ExportOptions::default().root_squash => Spec::no_switch();
    /// Anonymous uid (squashed root and AUTH_NONE callers).
    anon_uid: u32 = DEFAULT_ANON_ID => Spec::value("N");
    /// Anonymous gid.
    anon_gid: u32 = DEFAULT_ANON_ID => Spec::value("N");
    /// Grace period after start in which clients reclaim opens and locks, seconds
    /// ({range}).
    grace: u32 = 0 => Spec::value("SECS").range(Range::new(0, 3600).zero_means("none"));
    /// Client network allowed to use the export (repeatable).
    allow: Vec<IpNet> = Vec::new() => Spec::value("CIDR").shown("all");
    /// Control plane (HTTP API, metrics) address, or "off". If the address is taken the
    /// server does not start. Changes need the bearer token; on a non-loopback address
    /// every request does.
    control: ControlAddr = crate::control::DEFAULT_CONTROL_ADDR.parse().expect("an address")
        => Spec::value("ADDR:PORT|off");
    /// Control-plane bearer token file, created with mode 0600 and a random token if
    /// missing.
    control_token_file: PathBuf
        => Spec::value("FILE").shown(&format!("STATE_DIR/{}", crate::control::TOKEN_FILE));
    /// Submission queue entries of each worker's io_uring ({range}; the completion
    /// queue gets 4×). More lets one loop iteration submit more sends and receives at
    /// once.
    ring_entries: u32 = TransportTuning::default().ring_entries
        => Spec::value("N").range(span(transport::RING_ENTRIES_RANGE));
    /// Provided receive buffers per worker ({range}, rounded up to a power of two). A
    /// connection with data waiting holds buffers until its record is reassembled; when
    /// all are held, receives pause (ENOBUFS) and are re-armed.
    recv_buffers: u16 = TransportTuning::default().recv_buf_count
        => Spec::value("N").range(span(transport::RECV_BUFFERS_RANGE));
    /// Size of each provided receive buffer, KiB ({range}; memory per worker: buffers ×
    /// size, at most {max_memory}). Larger buffers mean fewer completions per 1 MiB WRITE.
    recv_buffer_kib: u32 = TransportTuning::default().recv_buf_size / 1024
        => Spec::value("KIB").range(span(transport::RECV_BUFFER_KIB_RANGE))
            .fill("max_memory", transport::size_text(transport::MAX_RECV_BUFFER_BYTES));
    /// SQPOLL: give each worker's ring a kernel thread that polls its submission queue
    /// and sleeps after this many idle milliseconds ({range}). Off by default; the
    /// ring then uses SINGLE_ISSUER|DEFER_TASKRUN, which SQPOLL excludes. Each polling
    /// thread spins a CPU while busy: on a machine with few cores it competes with
    /// the workers.
    sqpoll_idle_ms: u32
        => Spec::value("MS").flag("sqpoll").range(span(transport::SQPOLL_IDLE_MS_RANGE));
    /// PEM certificate chain for RPC-with-TLS (RFC 9289), with --tls-key: a client's
    /// AUTH_TLS probe then starts TLS on its connection (Linux: mount -o xprtsec=tls).
    /// Re-read on SIGHUP and `POST /api/v1/tls/reload`.
    tls_cert: PathBuf => Spec::value("FILE").shown("none: no TLS");
    /// PEM private key of --tls-cert.
    tls_key: PathBuf => Spec::value("FILE").shown("none");
    /// PEM CA certificates that sign client certificates: clients are asked for one,
    /// and one these CAs signed makes the connection mutual TLS (exports'
    /// `xprtsec = ["mtls"]`, Linux: mount -o xprtsec=mtls).
    tls_client_ca: PathBuf => Spec::value("FILE").shown("none: no client certificates asked for");
    /// Kerberos keytab with the server's service principals (nfs/HOST@REALM): RPCSEC_GSS
    /// (exports' `sec = ["krb5", "krb5i", "krb5p"]`) with MIT Kerberos. An export that
    /// lists a krb5 flavor turns Kerberos on with the default keytab (KRB5_KTNAME, else
    /// /etc/krb5.keytab).
    krb5_keytab: PathBuf => Spec::value("FILE").shown("none: Kerberos only if an export asks");
    /// Realm whose principals are local users of the same name (alice@REALM runs as the
    /// passwd user alice; a numeric name as that uid); others run as the anonymous user
    /// (repeatable).
    krb5_realm: Vec<String> = Vec::new() => Spec::value("REALM").shown("default_realm of krb5.conf");
    /// Join a cluster whose state is kept in etcd (`etcd=` and its members' client URLs,
    /// comma-separated, e.g. etcd=http://10.0.0.5:2379,http://10.0.0.6:2379): nodes over one
    /// shared file system share the file-handle key and server scope, and a failed
    /// node's clients reclaim on the node that takes over its address during a
    /// cluster-wide grace period. Needs --node-id.
    cluster: ClusterArg => Spec::value("etcd=URLS").shown("none: one server");
    /// This node's number in the cluster, unique among live nodes.
    node_id: u32 => Spec::value("N").shown("none");
    /// The cluster's name: its keys in etcd are under /ringnfs/NAME/ (several clusters
    /// may share one etcd).
    cluster_name: String = cluster::DEFAULT_CLUSTER_NAME.to_string() => Spec::value("NAME");
    /// Seconds after a node stops renewing its membership (it died, or lost etcd) before
    /// the others see it gone and begin grace for its clients ({range}).
    node_ttl: u32 = cluster::DEFAULT_NODE_TTL_SECS => Spec::value("SECS").range(Range::new(2, 300));
    /// Open connections allowed in total (0 = unlimited); more are closed at accept.
    max_connections: usize = server::DEFAULT_MAX_CONNECTIONS => Spec::value("N");
    /// Open connections allowed per client IP address (0 = unlimited).
    max_connections_per_peer: usize = server::DEFAULT_MAX_CONNECTIONS_PER_PEER
        => Spec::value("N");
    /// Close a connection bound to no session that completed no request for this many
    /// seconds (0 = never).
    idle_timeout: u32 = server::DEFAULT_IDLE_TIMEOUT_SECS => Spec::value("SECS");
    /// The same for a connection that had a session and is bound to none now, e.g. after
    /// its client's lease expired (0 = never).
    session_idle_timeout: u32 = server::DEFAULT_SESSION_IDLE_TIMEOUT_SECS => Spec::value("SECS");
    /// Largest RPC record, bytes ({range}); a larger one closes the connection.
    max_record_size: usize = server::DEFAULT_MAX_RECORD_SIZE
        => Spec::value("BYTES").range(Range::new(server::MIN_RECORD_SIZE as u64, 1 << 30));
    /// Reply bytes queued per connection before the server stops reading it ({range}).
    max_reply_queue: usize = server::DEFAULT_MAX_REPLY_QUEUE
        => Spec::value("BYTES").range(Range::new(1, 1 << 30));
    /// Sessions one client may hold (0 = unlimited); CREATE_SESSION over it gets
    /// NFS4ERR_NOSPC.
    max_sessions_per_client: u32 = crate::state::DEFAULT_MAX_SESSIONS_PER_CLIENT
        => Spec::value("N");
    /// Delegations held by all clients together ({range}); past it OPEN grants none.
    max_delegations: usize = crate::state::files::DEFAULT_MAX_DELEGATIONS
        => Spec::value("N").range(Range::new(0, 1 << 24));
    /// Delegations one client may hold ({range}); past it OPEN grants it none.
    max_delegations_per_client: u32 = crate::state::files::DEFAULT_MAX_DELEGATIONS_PER_CLIENT
        => Spec::value("N").range(Range::new(0, 1 << 24));
}

impl ServeOptions {
    /// Every option's description, in `--help` order.
    pub fn specs() -> Vec<Spec> {
        Self::KEYS.iter().map(|k| spec_of(k)).collect()
    }

    /// The server configuration these options (or their defaults) make; the live
    /// settings' sources are all [`Source::Default`] ([`StartOptions::server_config`]
    /// fills them in).
    pub fn server_config(&self) -> ServerConfig {
        let tuning = TransportTuning {
            ring_entries: self.ring_entries(),
            recv_buf_count: self.recv_buffers(),
            recv_buf_size: self.recv_buffer_kib() * 1024,
            sqpoll_idle_ms: self.sqpoll_idle_ms(),
        };
        ServerConfig {
            listen: self.listen(),
            threads: self.threads(),
            pin_cores: self.pin(),
            state_dir: Some(self.state_dir()),
            lease_secs: self.lease_time(),
            max_connections_per_session: self.max_connections_per_session(),
            exclusive_binding: self.exclusive_binding(),
            delegations: self.delegations(),
            setting_sources: SettingSources::default(),
            over_limit: self.over_limit(),
            max_fore_slots: self.max_slots(),
            backend: self.backend(),
            export_path: match self.export() {
                ExportArg::Dir(d) => d,
                ExportArg::Tables(_) => PathBuf::from(server::DEFAULT_EXPORT),
            },
            exports: match self.export() {
                ExportArg::Dir(_) => Vec::new(),
                ExportArg::Tables(t) => t,
            },
            exports_given: self.export.is_some(),
            export: ExportOptions {
                read_only: self.read_only(),
                root_squash: self.root_squash(),
                anon_uid: self.anon_uid(),
                anon_gid: self.anon_gid(),
                allowed: self.allow(),
                io_mode: self.io_mode().caching(),
                ..ExportOptions::default()
            },
            grace_secs: self.grace(),
            // Either option alone makes options the start refuses with a message.
            cluster: (self.cluster.is_some() || self.node_id.is_some()).then(|| ClusterOptions {
                endpoints: self.cluster().map(|c| c.endpoints).unwrap_or_default(),
                name: self.cluster_name(),
                node_id: self.node_id(),
                node_ttl_secs: self.node_ttl(),
            }),
            tls_cert: self.tls_cert(),
            tls_key: self.tls_key(),
            tls_client_ca: self.tls_client_ca(),
            krb5_keytab: self.krb5_keytab(),
            krb5_realms: self.krb5_realm(),
            control: self.control().0,
            control_token_file: self.control_token_file(),
            limits: Limits {
                max_connections: self.max_connections(),
                max_connections_per_peer: self.max_connections_per_peer(),
                idle_timeout_secs: self.idle_timeout(),
                session_idle_timeout_secs: self.session_idle_timeout(),
                max_record_size: self.max_record_size(),
                max_reply_queue: self.max_reply_queue(),
                max_sessions_per_client: self.max_sessions_per_client(),
                max_delegations: self.max_delegations(),
                max_delegations_per_client: self.max_delegations_per_client(),
            },
            tuning,
        }
    }
}

impl clap::FromArgMatches for ServeOptions {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self::from_matches(m))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_matches(m).or(std::mem::take(self));
        Ok(())
    }
}

impl clap::Args for ServeOptions {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(Self::args())
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The config file: a table of option keys. A value is checked like the same option on
/// the command line; the error names the key (and the range).
impl<'de> de::Deserialize<'de> for ServeOptions {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Table;
        impl<'de> Visitor<'de> for Table {
            type Value = ServeOptions;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of `ringnfs serve` options")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServeOptions, A::Error> {
                let mut o = ServeOptions::default();
                while let Some(key) = map.next_key_seed(Key)? {
                    o.read_value(&key, &mut map)?;
                }
                Ok(o)
            }
        }
        d.deserialize_map(Table)
    }
}

/// The options `serve` starts with: the command line's, over the config file's, over
/// the defaults; and where each came from.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Every option given, from the command line or else the config file.
    pub given: ServeOptions,
    cli: ServeOptions,
    file: Option<(PathBuf, ServeOptions)>,
}

impl StartOptions {
    pub fn new(cli: ServeOptions, file: Option<(PathBuf, ServeOptions)>) -> StartOptions {
        let from_file = file.as_ref().map(|(_, f)| f.clone()).unwrap_or_default();
        StartOptions {
            given: cli.clone().or(from_file),
            cli,
            file,
        }
    }

    /// Where the option that `is_given` tests for came from.
    pub fn source(&self, is_given: impl Fn(&ServeOptions) -> bool) -> Source {
        if is_given(&self.cli) {
            return Source::CommandLine;
        }
        match &self.file {
            Some((path, f)) if is_given(f) => Source::ConfigFile(path.clone()),
            _ => Source::Default,
        }
    }

    /// The server configuration, with the sources of the live settings' start values
    /// (`log_level`: where the log filter came from).
    pub fn server_config(&self, log_level: Source) -> ServerConfig {
        ServerConfig {
            setting_sources: SettingSources {
                max_connections_per_session: self
                    .source(|o| o.max_connections_per_session.is_some()),
                exclusive_binding: self.source(|o| o.exclusive_binding.is_some()),
                lease_time: self.source(|o| o.lease_time.is_some()),
                log_level,
                delegations: self.source(|o| o.delegations.is_some()),
            },
            ..self.given.server_config()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: ServeOptions,
    }

    fn cli(args: &[&str]) -> Result<ServeOptions, clap::Error> {
        let m = Cli::command()
            .try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))?;
        Ok(Cli::from_arg_matches(&m)?.options)
    }

    #[test]
    fn the_table_is_consistent() {
        let specs = ServeOptions::specs();
        assert_eq!(specs.len(), ServeOptions::KEYS.len());
        let mut flags = std::collections::HashSet::new();
        for s in &specs {
            assert!(flags.insert(s.flag.clone()), "flag {} twice", s.flag);
            // The flag is the key with dashes, but for --no-X and --sqpoll.
            let dashed = s.key.replace('_', "-");
            match s.form {
                Form::NoSwitch => assert_eq!(s.flag, format!("no-{dashed}")),
                _ if s.key == "sqpoll_idle_ms" => assert_eq!(s.flag, "sqpoll"),
                _ => assert_eq!(s.flag, dashed),
            }
            // A range is shown where the help says, and only a range; every `{NAME}`
            // is filled.
            assert!(!s.help.contains(['{', '}']), "{}: {}", s.key, s.help);
            if let Some(r) = s.range {
                assert!(s.help.contains(&format!("({r}")), "{}: {}", s.key, s.help);
            }
            assert!(
                !s.help.ends_with('.') && !s.help.is_empty(),
                "{}: {}",
                s.key,
                s.help
            );
            if s.form == Form::Value {
                assert!(
                    s.default.is_some() || s.key == "sqpoll_idle_ms",
                    "{}",
                    s.key
                );
            } else {
                assert!(s.default.is_none() && s.range.is_none(), "{}", s.key);
            }
        }
        // Every live setting but the log level is a serve option.
        for k in settings::SETTING_KEYS {
            assert!(k == "log_level" || ServeOptions::KEYS.contains(&k), "{k}");
        }
        // The live settings' ranges are the state's.
        assert_eq!(
            spec_of("lease_time").range,
            Some(settings::LEASE_TIME_RANGE)
        );
        assert_eq!(
            spec_of("max_connections_per_session").range,
            Some(settings::MAX_CONNECTIONS_PER_SESSION_RANGE)
        );
    }

    /// The transport checks its knobs again for library callers
    /// (`TransportTuning::validate`): with the ranges of the option table and the same
    /// words, so neither can drift from the other.
    #[test]
    fn the_transport_refuses_what_the_options_refuse_in_the_same_words() {
        type Set = fn(&mut TransportTuning, u64);
        let knobs: [(&str, Set); 4] = [
            ("ring_entries", |t, v| t.ring_entries = v as u32),
            ("recv_buffers", |t, v| t.recv_buf_count = v as u16),
            ("recv_buffer_kib", |t, v| t.recv_buf_size = v as u32 * 1024),
            ("sqpoll_idle_ms", |t, v| t.sqpoll_idle_ms = Some(v as u32)),
        ];
        for (key, set) in knobs {
            let spec = spec_of(key);
            let range = spec.range.expect("a transport knob has a range");
            for v in [range.min.checked_sub(1), Some(range.max + 1)]
                .into_iter()
                .flatten()
            {
                let option = match <u64 as Word>::parse(&v.to_string(), &spec) {
                    Err(Invalid::Range(e)) => e.to_string(),
                    other => panic!("{key} = {v}: {other:?}"),
                };
                let mut t = TransportTuning::default();
                set(&mut t, v);
                assert_eq!(t.validate(), Err(option), "{key} = {v}");
            }
            for v in [range.min, range.max] {
                let mut t = TransportTuning::default();
                set(&mut t, v);
                // Within the memory bound at the largest count or size.
                match key {
                    "recv_buffers" => t.recv_buf_size = 4 << 10,
                    "recv_buffer_kib" => t.recv_buf_count = 8,
                    _ => {}
                }
                assert_eq!(t.validate(), Ok(()), "{key} = {v}");
            }
        }
        // The memory bound the help names is the one validate() checks.
        let help = spec_of("recv_buffer_kib").help;
        let max = transport::size_text(transport::MAX_RECV_BUFFER_BYTES);
        assert!(help.contains(&format!("at most {max}")), "{help}");
        let t = TransportTuning {
            recv_buf_count: 32768,
            recv_buf_size: 1 << 20,
            ..TransportTuning::default()
        };
        assert!(
            t.validate()
                .unwrap_err()
                .ends_with(&format!("more than {max}"))
        );
    }

    #[test]
    fn the_command_line_fills_what_it_gives() {
        let o = cli(&[]).unwrap();
        assert_eq!(o, ServeOptions::default());
        let o = cli(&[
            "--lease-time",
            "30",
            "--no-pin",
            "--exclusive-binding",
            "--allow",
            "10.0.0.0/8",
            "--allow",
            "127.0.0.0/8",
            "--sqpoll",
            "5",
            "--backend",
            "memory",
            "--control",
            "off",
        ])
        .unwrap();
        assert_eq!(o.lease_time, Some(30));
        assert_eq!(o.pin, Some(false));
        assert_eq!(o.root_squash, None);
        assert_eq!(o.exclusive_binding, Some(true));
        assert_eq!(o.allow.as_ref().map(Vec::len), Some(2));
        assert_eq!(o.sqpoll_idle_ms, Some(5));
        assert_eq!(o.backend, Some(BackendKind::Memory));
        assert_eq!(o.control, Some(ControlAddr(None)));
        assert_eq!(o.max_slots, None);
        assert_eq!(o.max_slots(), server::DEFAULT_MAX_FORE_SLOTS);
        for (flag, value, want) in [
            ("--lease-time", "0", "must be between 1 and 3600"),
            (
                "--max-connections-per-session",
                "1025",
                "must be between 0 and 1024 (0 = unlimited)",
            ),
            ("--recv-buffers", "70000", "must be between 8 and 32768"),
            ("--threads", "x", "\"x\" is not a whole number"),
            ("--backend", "disk", "\"disk\" is not one of local, memory"),
        ] {
            let e = cli(&[flag, value]).unwrap_err().to_string();
            assert!(e.contains(flag) && e.contains(want), "{e}");
        }
    }

    #[test]
    fn the_config_file_fills_the_same_structure() {
        let o: ServeOptions = toml::from_str(
            "lease_time = 30\npin = false\nallow = [\"10.0.0.0/8\"]\nsqpoll_idle_ms = 5\n\
             backend = \"memory\"\ncontrol = \"off\"\nlisten = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let c = cli(&[
            "--lease-time",
            "30",
            "--no-pin",
            "--allow",
            "10.0.0.0/8",
            "--sqpoll",
            "5",
            "--backend",
            "memory",
            "--control",
            "off",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(o, c);
        for (text, want) in [
            (
                "lease_time = 0",
                "lease_time must be between 1 and 3600, got 0",
            ),
            (
                "max_connections_per_session = -1",
                "max_connections_per_session must be between 0 and 1024 (0 = unlimited), got -1",
            ),
            (
                "recv_buffers = 70000",
                "recv_buffers must be between 8 and 32768, got 70000",
            ),
            (
                "threads = \"2\"",
                "threads: expected a whole number, got string",
            ),
            ("pin = 0", "pin: expected true or false, got integer"),
            (
                "backend = \"disk\"",
                "backend: \"disk\" is not one of local, memory",
            ),
            (
                "max_conections = 5",
                "unknown field `max_conections` (did you mean `max_connections`?)",
            ),
            (
                "no_pin = true",
                "unknown field `no_pin` (--no-pin is `pin = false`)",
            ),
            (
                "sqpoll = 5",
                "unknown field `sqpoll` (--sqpoll is `sqpoll_idle_ms`)",
            ),
            ("foo = 1", "unknown field `foo`; the keys"),
        ] {
            let e = toml::from_str::<ServeOptions>(text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn the_command_line_wins_and_sources_say_where_values_came_from() {
        let file: ServeOptions =
            toml::from_str("lease_time = 45\nexclusive_binding = true\nthreads = 3\n").unwrap();
        let start = StartOptions::new(
            cli(&["--lease-time", "30", "--max-slots", "8"]).unwrap(),
            Some(("r.toml".into(), file)),
        );
        assert_eq!(start.given.lease_time(), 30);
        assert_eq!(start.given.threads(), 3);
        assert_eq!(start.given.max_slots(), 8);
        let cfg = start.server_config(Source::Environment("RUST_LOG".into()));
        assert_eq!(cfg.lease_secs, 30);
        assert!(cfg.exclusive_binding);
        assert_eq!(
            cfg.setting_sources,
            SettingSources {
                max_connections_per_session: Source::Default,
                exclusive_binding: Source::ConfigFile("r.toml".into()),
                lease_time: Source::CommandLine,
                log_level: Source::Environment("RUST_LOG".into()),
                delegations: Source::Default,
            }
        );
    }

    #[test]
    fn the_defaults_are_the_servers() {
        let d = ServeOptions::default().server_config();
        assert_eq!(d.listen, vec![server::DEFAULT_LISTEN]);
        assert_eq!(d.limits, Limits::default());
        assert_eq!(d.tuning, TransportTuning::default());
        assert_eq!(
            d.control.map(|a| a.to_string()).as_deref(),
            Some(crate::control::DEFAULT_CONTROL_ADDR)
        );
        assert_eq!(
            d.state_dir.as_deref(),
            Some(std::path::Path::new(server::DEFAULT_STATE_DIR))
        );
        let lib = ServerConfig::default();
        assert_eq!((lib.control, lib.state_dir), (None, None));
        assert_eq!(lib.max_fore_slots, d.max_fore_slots);
    }
}

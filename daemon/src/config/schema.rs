//! The machinery behind the one definition of every configuration key: the [`section!`] macro
//! that turns a list of fields into a settings struct, and the [`Section`] trait it implements.
//!
//! Each field line gives the key's TOML name, its Rust type, its default, its [`Kind`] (how a
//! value is parsed and checked, with its allowed range, and how it is printed), whether SIGHUP
//! applies it ([`Reload`]) and, as its `///` comment, what it does. From these alone come the
//! checking of the merged layers (`check.rs`), `check-config`'s output, the sample
//! `deploy/chatd.toml` and the table in `docs/operations.md` (`generate.rs`) and the
//! reloader's comparison (`crate::reload`). The key declarations themselves are in
//! `sections.rs` and `log.rs`.

use std::collections::{BTreeMap, BTreeSet};

use config::{Map, Value};

use super::ConfigError;
use super::check::Checker;
use crate::env::Env;

/// The sections in the order `check-config`, the sample and the docs show them.
pub const SECTIONS: &[&str] = &[
    "node",
    "control",
    "chat",
    "log",
    "transport",
    "ring",
    "discovery",
    "web",
    "irc",
    "files",
    "voice",
];

/// Whether SIGHUP applies a key's new value to the running node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// Applied by a reload (the reloader must handle it: a test checks).
    Live,
    /// A changed value is reported as needing a restart.
    Restart,
}

/// One key as `check-config`, the sample, the docs and the reloader see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// `section.name`.
    pub name: &'static str,
    /// Whether SIGHUP applies a new value without a restart.
    pub live: bool,
    /// What it does: the field's doc comment, one line per comment line.
    pub doc: &'static str,
    /// The command-line flag that overrides it, if any.
    pub flag: Option<&'static str>,
    /// A value the sample shows commented out instead of the default (the default depends on
    /// the environment, or is empty and an example helps).
    pub example: Option<&'static str>,
    /// The default in words, when it depends on the environment.
    pub default_is: Option<&'static str>,
    /// The values accepted, in words.
    pub allowed: String,
}

impl Key {
    /// The section part of the name.
    pub fn section(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(s, _)| s)
    }

    /// The name within the section.
    pub fn short_name(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(_, n)| n)
    }

    /// The doc comment's lines, without the comment's leading space.
    pub fn doc_lines(&self) -> impl Iterator<Item = &'static str> {
        self.doc
            .lines()
            .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
    }
}

/// How values of one key are read, checked and printed.
pub trait Kind<T> {
    /// Parses and checks a value; the error names `key`, the problem and the value's origin.
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<T, ConfigError>;
    /// The value as `check-config` prints it.
    fn to_toml(&self, value: &T) -> toml::Value;
    /// The values accepted, in words (for the docs).
    fn allowed(&self) -> String;
}

/// A settings struct made by [`section!`]: its keys, how to fill it from the merged layers and
/// how to print it.
pub trait Section: Sized {
    /// Appends its keys, nested structs' included, in declaration order.
    fn keys(out: &mut Vec<Key>);
    /// Takes every key of the struct from `tree` and checks it, or uses the default (`env`
    /// for the defaults that depend on it: computed only when the key is not given), then
    /// runs the struct's cross-key check.
    fn build(tree: &mut Tree, c: &Checker, env: &Env) -> Result<Self, ConfigError>;
    /// Adds every key's value to `out`.
    fn write(&self, out: &mut Tables);
}

/// The merged layers by section, and the keys that were given.
#[derive(Debug, Default)]
pub struct Tree {
    pub(super) sections: BTreeMap<String, Map<String, Value>>,
    given: BTreeSet<&'static str>,
}

impl Tree {
    /// Removes and returns the value of `key` (`section.name`), if a layer gave one.
    pub fn take(&mut self, key: &'static str) -> Option<Value> {
        let (section, name) = key.split_once('.')?;
        let value = self.sections.get_mut(section)?.remove(name)?;
        self.given.insert(key);
        Some(value)
    }

    /// Whether a layer gave `key` (after it was taken).
    pub fn given(&self, key: &str) -> bool {
        self.given.contains(key)
    }
}

/// Printed values by section.
#[derive(Debug, Default)]
pub struct Tables(pub BTreeMap<&'static str, toml::Table>);

impl Tables {
    /// Sets `key` (`section.name`).
    pub fn put(&mut self, key: &'static str, value: toml::Value) {
        let (section, name) = key.split_once('.').unwrap_or((key, ""));
        self.0
            .entry(section)
            .or_default()
            .insert(name.to_owned(), value);
    }

    /// The value of `key` as TOML text, empty if there is none.
    pub fn get(&self, key: &str) -> String {
        let (section, name) = key.split_once('.').unwrap_or((key, ""));
        self.0
            .get(section)
            .and_then(|t| t.get(name))
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}

/// The keys of `S` (for [`super::Settings`]: every key), in declaration order.
pub fn keys_of<S: Section>() -> Vec<Key> {
    let mut out = Vec::new();
    S::keys(&mut out);
    out
}

/// Declares a settings struct, one line per key:
///
/// ```text
/// section! {
///     /// The struct's doc.
///     pub struct Name(env) {          // `(env)`: defaults may use `env: &Env` and `?`
///         /// What the key does (shown in the sample and the docs).
///         field @ "section.key": Type = default, kind, Restart [, flag "--x"]
///             [, example "value"] [, default_is "words"];
///     }
///     nested { /// doc
///              field: OtherSection; }   // optional: sections inside this struct
///     extra { /// doc
///             field: Type = default; }  // optional: fields that are not keys
///     check = function;                 // optional: fn(&mut Self, &Tree) -> Result<(), ConfigError>
/// }
/// ```
///
/// Without `(env)` the struct also gets `impl Default`.
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[doc = $doc:literal])* $field:ident @ $key:literal : $ty:ty = $default:expr,
               $kind:expr, $reload:ident $(, flag $flag:literal)? $(, example $example:literal)?
               $(, default_is $shown:literal)? ; )*
        }
        $(extra { $( $(#[doc = $xdoc:literal])* $xfield:ident : $xty:ty = $xdefault:expr ; )* })?
        $(check = $check:path ;)?
    ) => {
        $crate::config::schema::section! { @struct [$(#[$meta])*] $name
            { $( [$(#[doc = $doc])*] $field : $ty ; )* }
            { }
            { $($( [$(#[doc = $xdoc])*] $xfield : $xty ; )*)? }
        }
        impl Default for $name {
            fn default() -> Self {
                $name {
                    $( $field: $default, )*
                    $($( $xfield: $xdefault, )*)?
                }
            }
        }
        impl $crate::config::schema::Section for $name {
            $crate::config::schema::section! { @impl $name _env
                { $( $field @ $key : $ty = [$default], $kind, $reload
                     [$($flag)?] [$($example)?] [$($shown)?] [$($doc)*] ; )* }
                { }
                { $($( $xfield = [$xdefault] ; )*)? }
                [$($check)?] }
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident ($env:ident) {
            $( $(#[doc = $doc:literal])* $field:ident @ $key:literal : $ty:ty = $default:expr,
               $kind:expr, $reload:ident $(, flag $flag:literal)? $(, example $example:literal)?
               $(, default_is $shown:literal)? ; )*
        }
        $(nested { $( $(#[doc = $ndoc:literal])* $nfield:ident : $nty:ty ; )* })?
        $(extra { $( $(#[doc = $xdoc:literal])* $xfield:ident : $xty:ty = $xdefault:expr ; )* })?
        $(check = $check:path ;)?
    ) => {
        $crate::config::schema::section! { @struct [$(#[$meta])*] $name
            { $( [$(#[doc = $doc])*] $field : $ty ; )* }
            { $($( [$(#[doc = $ndoc])*] $nfield : $nty ; )*)? }
            { $($( [$(#[doc = $xdoc])*] $xfield : $xty ; )*)? }
        }
        impl $crate::config::schema::Section for $name {
            $crate::config::schema::section! { @impl $name $env
                { $( $field @ $key : $ty = [$default], $kind, $reload
                     [$($flag)?] [$($example)?] [$($shown)?] [$($doc)*] ; )* }
                { $($( $nfield : $nty ; )*)? }
                { $($( $xfield = [$xdefault] ; )*)? }
                [$($check)?] }
        }
    };
    (@struct [$($meta:tt)*] $name:ident
        { $( [$($doc:tt)*] $field:ident : $ty:ty ; )* }
        { $( [$($ndoc:tt)*] $nfield:ident : $nty:ty ; )* }
        { $( [$($xdoc:tt)*] $xfield:ident : $xty:ty ; )* }
    ) => {
        $($meta)*
        pub struct $name {
            $( $($doc)* pub $field: $ty, )*
            $( $($ndoc)* pub $nfield: $nty, )*
            $( $($xdoc)* pub $xfield: $xty, )*
        }
    };
    (@impl $name:ident $env:ident
        { $( $field:ident @ $key:literal : $ty:ty = [$default:expr], $kind:expr, $reload:ident
             [$($flag:literal)?] [$($example:literal)?] [$($shown:literal)?]
             [$($doc:literal)*] ; )* }
        { $( $nfield:ident : $nty:ty ; )* }
        { $( $xfield:ident = [$xdefault:expr] ; )* }
        [$($check:path)?]
    ) => {
        fn keys(out: &mut Vec<$crate::config::schema::Key>) {
            use $crate::config::schema::{Key, Kind, Reload};
            $(
                out.push(Key {
                    name: $key,
                    live: matches!(Reload::$reload, Reload::Live),
                    doc: concat!($($doc, "\n",)*),
                    flag: None $(.or(Some($flag)))?,
                    example: None $(.or(Some($example)))?,
                    default_is: None $(.or(Some($shown)))?,
                    allowed: Kind::<$ty>::allowed(&$kind),
                });
            )*
            $( <$nty as $crate::config::schema::Section>::keys(out); )*
        }
        #[allow(unused_mut)]
        fn build(
            tree: &mut $crate::config::schema::Tree,
            c: &$crate::config::check::Checker,
            $env: &$crate::env::Env,
        ) -> Result<Self, $crate::config::ConfigError> {
            use $crate::config::schema::Kind;
            let mut built = $name {
                $(
                    $field: match tree.take($key) {
                        Some(value) => Kind::<$ty>::parse(&$kind, c, $key, value)?,
                        None => $default,
                    },
                )*
                $( $nfield: <$nty as $crate::config::schema::Section>::build(tree, c, $env)?, )*
                $( $xfield: $xdefault, )*
            };
            $( $check(&mut built, tree)?; )?
            let _ = (c, tree, $env);
            Ok(built)
        }
        fn write(&self, out: &mut $crate::config::schema::Tables) {
            use $crate::config::schema::Kind;
            $( out.put($key, Kind::<$ty>::to_toml(&$kind, &self.$field)); )*
            $( $crate::config::schema::Section::write(&self.$nfield, out); )*
            let _ = out;
        }
    };
}

pub(crate) use section;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::kinds::{Bool, Int};

    section! {
        /// A section only this test has: two keys, two lines.
        #[derive(Debug, PartialEq, Eq)]
        pub struct Demo {
            /// A number.
            /// Second line.
            n @ "demo.n": u64 = 5, Int(1..=9), Live, flag "--n";
            /// A switch.
            on @ "demo.on": bool = false, Bool, Restart, example "true";
        }
    }

    fn build(tree: &mut Tree) -> Result<Demo, ConfigError> {
        Demo::build(tree, &Checker::new(BTreeMap::new(), None), &Env::default())
    }

    #[test]
    fn one_line_per_key_gives_metadata_default_check_and_print() {
        let keys = keys_of::<Demo>();
        assert_eq!(
            keys.iter().map(|k| k.name).collect::<Vec<_>>(),
            ["demo.n", "demo.on"]
        );
        let n = &keys[0];
        assert!(n.live && !keys[1].live);
        assert_eq!(n.flag, Some("--n"));
        assert_eq!(n.allowed, "1–9");
        assert_eq!(
            n.doc_lines().collect::<Vec<_>>(),
            ["A number.", "Second line."]
        );
        assert_eq!((n.section(), n.short_name()), ("demo", "n"));
        assert_eq!(keys[1].example, Some("true"));

        let mut tree = Tree::default();
        let defaults = build(&mut tree).expect("defaults");
        assert_eq!(defaults, Demo::default());
        assert_eq!((defaults.n, defaults.on), (5, false));

        let mut given = Map::new();
        given.insert("n".to_owned(), Value::new(None, 7_i64));
        tree.sections.insert("demo".to_owned(), given.clone());
        let demo = build(&mut tree).expect("valid");
        assert_eq!(demo.n, 7);
        assert!(tree.given("demo.n") && !tree.given("demo.on"));
        assert!(tree.sections["demo"].is_empty(), "the key was taken");
        let mut printed = Tables::default();
        demo.write(&mut printed);
        assert_eq!(
            (printed.get("demo.n"), printed.get("demo.on")),
            ("7".into(), "false".into())
        );

        given.insert("n".to_owned(), Value::new(None, 10_i64));
        tree.sections.insert("demo".to_owned(), given);
        let err = build(&mut tree).expect_err("out of range").to_string();
        assert_eq!(err, "demo.n: integer 10 is out of range (expected 1..=9)");
    }
}

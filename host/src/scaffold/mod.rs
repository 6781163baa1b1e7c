//! `wasmcni new`: a plugin project in Rust, Python or JavaScript that
//! builds to a component and whose generated tests pass, with a README on
//! building, testing and deploying. The SDK it depends on is the one given,
//! the checkout's, or the one this binary carries (`sdk`).

pub mod sdk;

use anyhow::{Context, Result, bail};
use include_dir::{Dir, include_dir};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// An IPAM policy over the SDK's range IPAM (the `ipam` world).
    Ipam,
    /// A chained network plugin (the `cni-plugin` world).
    Cni,
    /// A policy run before a plugin's ADD (the `policy` world).
    Policy,
    /// Network policy rules from NetworkPolicy objects (the `netpol` world).
    Netpol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A crate on wasmcni-sdk, built with cargo for wasm32-wasip2.
    Rust,
    /// A package on wasmcni-sdk (sdk/python), built with componentize-py.
    Python,
    /// A package on @wasmcni/sdk (sdk/js), bundled and built with componentize-js.
    Js,
}

/// The templates of each language: `<file>.in`, and for the files that
/// differ by kind `<kind>.rs.in` or `<file>-<kind>.<ext>.in`.
static RUST: Dir = include_dir!("$CARGO_MANIFEST_DIR/src/scaffold/template/rust");
static PYTHON: Dir = include_dir!("$CARGO_MANIFEST_DIR/src/scaffold/template/python");
static JS: Dir = include_dir!("$CARGO_MANIFEST_DIR/src/scaffold/template/js");

/// Where each template goes in a new project; `{kind}` is the kind's name.
const RUST_FILES: &[(&str, &str)] =
    &[("Cargo.toml.in", "Cargo.toml"), ("{kind}.rs.in", "src/lib.rs"), ("README.md.in", "README.md")];
const PYTHON_FILES: &[(&str, &str)] = &[
    ("pyproject.toml.in", "pyproject.toml"),
    ("build.sh.in", "build.sh"),
    ("README.md.in", "README.md"),
    ("gitignore.in", ".gitignore"),
    ("plugin-{kind}.py.in", "plugin.py"),
    ("app-{kind}.py.in", "app.py"),
    ("test-{kind}.py.in", "tests/test_plugin.py"),
];
const JS_FILES: &[(&str, &str)] = &[
    ("package.json.in", "package.json"),
    ("build.sh.in", "build.sh"),
    ("README.md.in", "README.md"),
    ("gitignore.in", ".gitignore"),
    ("plugin-{kind}.js.in", "plugin.js"),
    ("entry-{kind}.js.in", "component.js"),
    ("test-{kind}.js.in", "test/plugin.test.js"),
];

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.len() <= 40
}

/// The SDK of the checkout this binary was built in (`<repo>/target/<profile>/wasmcni`).
fn default_sdk() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let sdk = exe.parent()?.parent()?.parent()?.join("sdk");
    sdk.join("Cargo.toml").is_file().then_some(sdk)
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ipam => "ipam",
            Kind::Cni => "cni",
            Kind::Policy => "policy",
            Kind::Netpol => "netpol",
        }
    }

    fn world(self) -> &'static str {
        match self {
            Kind::Cni => "cni-plugin",
            other => other.name(),
        }
    }

    /// How a network config names a module of this kind, for the README.
    fn usage(self) -> &'static str {
        match self {
            Kind::Ipam => "goes in a plugin's `ipam` section: `\"ipam\": {\"type\": \"wasm-{{name}}\", ...}`",
            Kind::Cni => "goes after the main plugin in a conflist: `{\"type\": \"wasm-{{name}}\"}`",
            Kind::Policy => {
                "is listed in a plugin's `policies`, which run before its ADD: `\"policies\": [{\"plugin\": \"{{name}}\", \"deny\": [\"sandbox\"]}]`"
            }
            Kind::Netpol => {
                "computes the rules `wasmcni netpol --module {{name}} --manifests DIR` prints for a directory of manifests"
            }
        }
    }
}

/// The SDK crate to build on: the one given, the checkout's, or the one
/// this binary carries.
fn sdk_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    let sdk = match given.or_else(default_sdk) {
        Some(dir) => dir,
        None => {
            let cache = sdk::default_cache().context("no HOME or XDG_CACHE_HOME to unpack the SDK in: pass --sdk")?;
            sdk::unpack(&cache)?
        }
    };
    sdk.canonicalize().with_context(|| format!("reading {}", sdk.display()))
}

pub fn create(name: &str, kind: Kind, lang: Lang, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<PathBuf> {
    if !valid_name(name) {
        bail!("{name:?} is not a valid plugin name: lowercase letters, digits and '-', starting with a letter");
    }
    if kind == Kind::Cni && lang != Lang::Rust {
        bail!(
            "--kind cni is written in Rust: the kernel interfaces of the cni-plugin world have no Python or JavaScript SDK"
        );
    }
    let sdk = sdk_dir(sdk)?;
    let root = dir.unwrap_or_else(|| PathBuf::from(name));
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    // Python and JavaScript projects name the tree that holds sdk/ and wit/.
    let sdk_root = sdk.parent().context("the SDK directory has no parent")?;
    let sdk = if lang == Lang::Rust { sdk.display() } else { sdk_root.display() }.to_string();
    let fill = |t: &str| {
        t.replace("{{usage}}", kind.usage())
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{world}}", kind.world())
            .replace("{{sdk}}", &sdk)
    };
    let (dir, files) = match lang {
        Lang::Rust => (&RUST, RUST_FILES),
        Lang::Python => (&PYTHON, PYTHON_FILES),
        Lang::Js => (&JS, JS_FILES),
    };
    let files: Vec<(String, PathBuf)> =
        templates(dir, files, kind)?.into_iter().map(|(t, to)| (fill(t), root.join(to))).collect();
    for (content, path) in files {
        write(&path, &content)?;
    }
    Ok(root)
}

/// Each template of `kind` with the path it goes to.
fn templates(
    dir: &'static Dir<'static>,
    files: &[(&str, &'static str)],
    kind: Kind,
) -> Result<Vec<(&'static str, &'static str)>> {
    files
        .iter()
        .map(|(from, to)| {
            let from = from.replace("{kind}", kind.name());
            let text =
                dir.get_file(&from).and_then(|f| f.contents_utf8()).with_context(|| format!("no template {from}"))?;
            Ok((text, *to))
        })
        .collect()
}

fn write(path: &Path, content: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "sh") {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

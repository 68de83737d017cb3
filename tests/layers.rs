//! The architecture test: `src/` imports one way. The layers, and the order of the
//! domain's sub-folders, are read from the Layout paragraph of `src/lib.rs` (the one
//! place they are written); every import of every module (tests and comments left
//! out) must point to its own layer or one below, and no two folders may import
//! each other, directly or around a circle (the domain's sub-folders count as
//! folders). Imports are followed through `use` trees, renames, module aliases and
//! `pub use` re-exports, so `use crate::domain;` then `domain::chat::…` is an import
//! of `domain/chat`.
//!
//! Run with `cargo test --test layers`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// A module by its path from the crate root (`["domain", "chat", "messages"]`).
type ModPath = Vec<String>;

// ---------------------------------------------------------------------------
// Reading sources into tokens: comments, literals and lifetimes dropped.

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open(char),
    Close(char),
    Semi,
    Comma,
    Pound,
    Other,
}

fn tokens(src: &str) -> Vec<Tok> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if (c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some() {
            let (hashes, body) = raw_string_start(&chars, i).expect("checked");
            i = body;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (0..hashes).all(|h| chars.get(i + 1 + h) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push(Tok::Other);
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            i += if c == 'b' { 2 } else { 1 };
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Tok::Other);
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            if next == Some('\\') {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            out.push(Tok::Other);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            // A raw identifier: `r#type`.
            if word == "r" && chars.get(i) == Some(&'#') {
                let start = i + 1;
                i = start;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                word = chars[start..i].iter().collect();
            }
            out.push(Tok::Ident(word));
        } else if c.is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Tok::Other);
        } else {
            out.push(match c {
                ':' if next == Some(':') => {
                    i += 1;
                    Tok::PathSep
                }
                '{' | '(' | '[' => Tok::Open(c),
                '}' | ')' | ']' => Tok::Close(c),
                ';' => Tok::Semi,
                ',' => Tok::Comma,
                '#' => Tok::Pound,
                _ => Tok::Other,
            });
            i += 1;
        }
    }
    out
}

/// Where a raw string literal starting at `i` (`r"`, `r#"`, `br#"`) has its body:
/// its number of `#`s and the index after the opening quote.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

// ---------------------------------------------------------------------------
// The items of a module that matter here: its `use` trees, the paths it names, and
// the modules declared inline in it.

/// A `use` of one path: its segments as written, the name it binds, and whether it
/// is re-exported.
#[derive(Clone, Debug)]
struct Use {
    /// The module the `use` is written in (an inline module included).
    within: ModPath,
    path: Vec<String>,
    binds: String,
    public: bool,
}

/// A path named outside `use` (`crate::a::b`, `super::x`, `alias::y`).
#[derive(Clone, Debug)]
struct Named {
    within: ModPath,
    path: Vec<String>,
}

#[derive(Default, Debug)]
struct Items {
    uses: Vec<Use>,
    named: Vec<Named>,
}

/// Skip a balanced group starting at `toks[i]` (an `Open`); the index after it.
fn skip_group(toks: &[Tok], mut i: usize) -> usize {
    let mut depth = 0;
    while i < toks.len() {
        match toks[i] {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// Skip one item starting at `i`: up to its `;`, or its first top-level block.
fn skip_item(toks: &[Tok], mut i: usize) -> usize {
    while i < toks.len() {
        match toks[i] {
            Tok::Semi => return i + 1,
            Tok::Open('{') => return skip_group(toks, i),
            Tok::Open(_) => i = skip_group(toks, i),
            _ => i += 1,
        }
    }
    i
}

/// Whether the attribute at `toks[i]` (`#`) is `#[cfg(test)]`; and the index after it.
fn attribute(toks: &[Tok], i: usize) -> (bool, usize) {
    let end = skip_group(toks, i + 1);
    let test = toks.get(i + 1..end).is_some_and(|attr| {
        attr == [
            Tok::Open('['),
            Tok::Ident("cfg".into()),
            Tok::Open('('),
            Tok::Ident("test".into()),
            Tok::Close(')'),
            Tok::Close(']'),
        ]
    });
    (test, end)
}

/// The paths of a `use` tree (`a::{b, c::d as e, self}`), each with the name it binds.
fn use_tree(toks: &[Tok], prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let mut path = prefix.to_vec();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(word) if word == "as" => {
                if let (Some(Tok::Ident(alias)), Some(last)) = (toks.get(i + 1), out.last_mut()) {
                    last.1.clone_from(alias);
                }
                i += 2;
                continue;
            }
            Tok::Ident(word) => {
                path.push(word.clone());
                let ends = !matches!(toks.get(i + 1), Some(Tok::PathSep));
                if ends {
                    let binds = if word == "self" {
                        path.pop();
                        path.last().cloned().unwrap_or_default()
                    } else {
                        word.clone()
                    };
                    out.push((path.clone(), binds));
                }
            }
            Tok::Open('{') => {
                let end = skip_group(toks, i);
                // Each comma-separated part of the group, at its own depth.
                let inner = &toks[i + 1..end - 1];
                let mut start = 0;
                let mut depth = 0;
                for (k, tok) in inner.iter().enumerate() {
                    match tok {
                        Tok::Open(_) => depth += 1,
                        Tok::Close(_) => depth -= 1,
                        Tok::Comma if depth == 0 => {
                            use_tree(&inner[start..k], &path, out);
                            start = k + 1;
                        }
                        _ => {}
                    }
                }
                use_tree(&inner[start..], &path, out);
                return;
            }
            _ => {}
        }
        i += 1;
    }
}

/// The items of the module `module`, from its source.
fn items(module: &ModPath, src: &str) -> Items {
    let toks = tokens(src);
    let mut items = Items::default();
    // Inline modules open in this file: (their path, the brace depth they opened at).
    let mut inline: Vec<(ModPath, usize)> = Vec::new();
    let mut depth: usize = 0;
    let mut i = 0;
    let within = |inline: &[(ModPath, usize)]| -> ModPath {
        inline
            .last()
            .map_or_else(|| module.clone(), |(path, _)| path.clone())
    };
    while i < toks.len() {
        match &toks[i] {
            Tok::Pound => {
                let (test, end) = attribute(&toks, i);
                i = if test { skip_item(&toks, end) } else { end };
                continue;
            }
            Tok::Open('{') => depth += 1,
            Tok::Close('}') => {
                depth = depth
                    .checked_sub(1)
                    .unwrap_or_else(|| panic!("unbalanced braces read in {}", module.join("::")));
                if inline.last().is_some_and(|(_, at)| *at == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(word) if word == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Open('{'))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    let mut path = within(&inline);
                    path.push(name.clone());
                    inline.push((path, depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            // `use` as an item (not `impl Trait + use<>`).
            Tok::Ident(word) if word == "use" && !matches!(toks.get(i + 1), Some(Tok::Other)) => {
                let public = i > 0 && matches!(&toks[i - 1], Tok::Ident(p) if p == "pub")
                    || i > 3 && matches!(&toks[i - 4], Tok::Ident(p) if p == "pub");
                let mut end = i + 1;
                while end < toks.len() && toks[end] != Tok::Semi {
                    end += 1;
                }
                let mut paths = Vec::new();
                use_tree(&toks[i + 1..end], &[], &mut paths);
                for (path, binds) in paths {
                    items.uses.push(Use {
                        within: within(&inline),
                        path,
                        binds,
                        public,
                    });
                }
                i = end + 1;
                continue;
            }
            Tok::Ident(first) => {
                let after_sep = i > 0 && toks[i - 1] == Tok::PathSep;
                if !after_sep && matches!(toks.get(i + 1), Some(Tok::PathSep)) {
                    let mut path = vec![first.clone()];
                    let mut j = i + 1;
                    while let (Some(Tok::PathSep), Some(Tok::Ident(next))) =
                        (toks.get(j), toks.get(j + 1))
                    {
                        path.push(next.clone());
                        j += 2;
                    }
                    items.named.push(Named {
                        within: within(&inline),
                        path,
                    });
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    items
}

// ---------------------------------------------------------------------------
// Resolving what a module names to the modules it imports.

struct Crate {
    /// Every module (files, and modules declared inline), and its source file.
    modules: BTreeMap<ModPath, String>,
    items: BTreeMap<ModPath, Items>,
}

impl Crate {
    /// The crate in `src` (a map from file path relative to `src/` to its text).
    fn new(files: &BTreeMap<String, String>) -> Crate {
        let mut modules = BTreeMap::new();
        let mut items = BTreeMap::new();
        for (file, src) in files {
            if file == "main.rs" {
                continue;
            }
            let module = module_of(file);
            let found = self::items(&module, src);
            for named in found
                .named
                .iter()
                .map(|n| &n.within)
                .chain(found.uses.iter().map(|u| &u.within))
            {
                modules.entry(named.clone()).or_insert_with(|| file.clone());
            }
            modules.insert(module.clone(), file.clone());
            items.insert(module, found);
        }
        Crate { modules, items }
    }

    /// The absolute path of `path` as written in `within`, if it is in this crate.
    fn absolute(&self, within: &ModPath, path: &[String]) -> Option<Vec<String>> {
        self.absolute_within(within, path, 0)
    }

    fn absolute_within(
        &self,
        within: &ModPath,
        path: &[String],
        hops: usize,
    ) -> Option<Vec<String>> {
        let (head, rest) = path.split_first()?;
        match head.as_str() {
            "crate" => Some(rest.to_vec()),
            "self" => Some(within.iter().chain(rest).cloned().collect()),
            "super" => {
                let mut base = within.clone();
                base.pop()?;
                let mut rest = rest;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                Some(base.into_iter().chain(rest.iter().cloned()).collect())
            }
            _ => {
                // A child module, or a name bound by a `use` of this module.
                let mut child = within.clone();
                child.push(head.clone());
                if self.modules.contains_key(&child) {
                    return Some(child.into_iter().chain(rest.iter().cloned()).collect());
                }
                let bound = self.items.get(within).and_then(|items| {
                    items
                        .uses
                        .iter()
                        .find(|u| &u.within == within && &u.binds == head)
                })?;
                if hops > 8 || bound.path.first() == Some(head) {
                    return None;
                }
                let target = self.absolute_within(within, &bound.path, hops + 1)?;
                Some(target.into_iter().chain(rest.iter().cloned()).collect())
            }
        }
    }

    /// The module an absolute path lands in: its longest prefix that is a module,
    /// following `pub use` re-exports of the name after it.
    fn resolve(&self, path: &[String], hops: usize) -> Option<ModPath> {
        let len = (0..=path.len())
            .rev()
            .find(|&n| self.modules.contains_key(&path[..n]))?;
        let module = path[..len].to_vec();
        if hops < 8
            && let Some(name) = path.get(len)
            && let Some(export) = self.items.get(&module).and_then(|items| {
                items
                    .uses
                    .iter()
                    .find(|u| u.public && &u.binds == name && u.within == module)
            })
            && let Some(target) = self.absolute(&module, &export.path)
        {
            let target: Vec<String> = target
                .into_iter()
                .chain(path[len + 1..].iter().cloned())
                .collect();
            return self.resolve(&target, hops + 1).or(Some(module));
        }
        Some(module)
    }

    /// Every module each module imports (itself left out).
    fn imports(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut imports: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
        for (module, items) in &self.items {
            let paths = items
                .uses
                .iter()
                .map(|u| (&u.within, &u.path))
                .chain(items.named.iter().map(|n| (&n.within, &n.path)));
            for (within, path) in paths {
                let Some(absolute) = self.absolute(within, path) else {
                    continue;
                };
                if let Some(target) = self.resolve(&absolute, 0)
                    && !target.is_empty()
                    && &target != module
                    && !target.starts_with(module)
                {
                    imports.entry(module.clone()).or_default().insert(target);
                }
            }
        }
        imports
    }
}

fn module_of(file: &str) -> ModPath {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

// ---------------------------------------------------------------------------
// Folders, layers, and the checks.

/// The layers of `lib.rs`'s Layout paragraph, from the top: each a list of top-level
/// modules; and the domain's sub-folders, from the top, each rank a list.
struct Layers {
    modules: Vec<Vec<String>>,
    domain: Vec<Vec<String>>,
}

/// Read the list under "Layers, from the top" in the Layout paragraph of `lib.rs`:
/// lines `//! - name: `a`, `b` (sub-folders: `x` > `y`, `z`)`.
fn layers(lib: &str) -> Layers {
    let doc: Vec<&str> = lib
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .map(|line| line.trim_start_matches("//!").trim())
        .collect();
    let start = doc
        .iter()
        .position(|line| line.starts_with("Layers, from the top"))
        .expect("lib.rs's Layout lists its layers");
    let mut entries: Vec<String> = Vec::new();
    let mut seen_list = false;
    for line in &doc[start + 1..] {
        if let Some(item) = line.strip_prefix("- ") {
            entries.push(item.to_owned());
            seen_list = true;
        } else if line.is_empty() {
            if seen_list {
                break;
            }
        } else if seen_list && let Some(last) = entries.last_mut() {
            last.push(' ');
            last.push_str(line);
        }
    }
    let ticked = |text: &str| -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut layers = Layers {
        modules: Vec::new(),
        domain: Vec::new(),
    };
    for entry in entries {
        let (_, list) = entry.split_once(':').expect("a layer is `name: modules`");
        let (modules, sub) = match list.split_once('(') {
            Some((modules, sub)) => (modules, Some(sub)),
            None => (list, None),
        };
        layers.modules.push(ticked(modules));
        if let Some(sub) = sub {
            let sub = sub.split_once(':').map_or(sub, |(_, ranks)| ranks);
            layers.domain = sub.split('>').map(ticked).collect();
        }
    }
    layers
}

/// The folder a module belongs to: its top-level module, or for the domain its
/// sub-folder (`domain/chat`); the domain's root module is `domain`.
fn folder(module: &ModPath, crate_: &Crate) -> String {
    match module.as_slice() {
        [domain, sub, ..] if domain == "domain" => {
            let is_folder = crate_
                .modules
                .get(&vec![domain.clone(), sub.clone()])
                .is_some_and(|file| file.ends_with("mod.rs"));
            if is_folder {
                format!("domain/{sub}")
            } else {
                "domain".to_owned()
            }
        }
        [top, ..] => top.clone(),
        [] => String::new(),
    }
}

/// How far down a folder is: its layer, then (in the domain) its sub-folder's rank.
fn depth(folder: &str, layers: &Layers) -> Option<(usize, usize)> {
    let top = folder.split('/').next()?;
    let layer = layers
        .modules
        .iter()
        .position(|l| l.iter().any(|m| m == top))?;
    let rank = match folder.strip_prefix("domain/") {
        Some(sub) => layers
            .domain
            .iter()
            .position(|r| r.iter().any(|m| m == sub))?,
        // The domain's root declares its sub-folders and re-exports `Core`.
        None if top == "domain" => layers.domain.len(),
        None => 0,
    };
    Some((layer, rank))
}

/// Groups of folders that import each other around a circle (Tarjan's algorithm).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: HashMap<String, usize>,
        low: HashMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        found: Vec<Vec<String>>,
    }
    fn visit(walk: &mut Walk<'_>, node: &str) {
        let n = walk.index.len();
        walk.index.insert(node.to_owned(), n);
        walk.low.insert(node.to_owned(), n);
        walk.stack.push(node.to_owned());
        walk.on_stack.insert(node.to_owned());
        for next in walk.edges.get(node).into_iter().flatten() {
            if !walk.index.contains_key(next) {
                visit(walk, next);
                let low = walk.low[node].min(walk.low[next]);
                walk.low.insert(node.to_owned(), low);
            } else if walk.on_stack.contains(next) {
                let low = walk.low[node].min(walk.index[next]);
                walk.low.insert(node.to_owned(), low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let mut group = Vec::new();
            while let Some(top) = walk.stack.pop() {
                walk.on_stack.remove(&top);
                let done = top == node;
                group.push(top);
                if done {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                walk.found.push(group);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

/// What is wrong with the crate's imports, one sentence each.
fn violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let lib = files.get("lib.rs").expect("a lib.rs");
    let layers = layers(lib);
    let crate_ = Crate::new(files);
    let mut problems = Vec::new();
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in crate_.modules.keys().filter(|m| !m.is_empty()) {
        let from = folder(module, &crate_);
        if depth(&from, &layers).is_none() {
            problems.push(format!(
                "`{from}` is in no layer of lib.rs's Layout: add it where it belongs"
            ));
        }
        folders.entry(from).or_default();
    }
    for (module, targets) in crate_.imports() {
        let from = folder(&module, &crate_);
        for target in targets {
            let to = folder(&target, &crate_);
            if from == to {
                continue;
            }
            folders.entry(from.clone()).or_default().insert(to.clone());
            if let (Some(a), Some(b)) = (depth(&from, &layers), depth(&to, &layers))
                && (b.0 < a.0 || (a.0 == b.0 && from.starts_with("domain") && b.1 < a.1))
            {
                problems.push(format!(
                    "{} imports {} (`{}` above `{}` in the layer order)",
                    crate_.modules[&module],
                    target.join("::"),
                    to,
                    from
                ));
            }
        }
    }
    for circle in circles(&folders) {
        problems.push(format!(
            "folders import each other around a circle: {}",
            circle.join(", ")
        ));
    }
    problems.sort();
    problems.dedup();
    problems
}

fn read_src(dir: &Path, root: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("src/ reads") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            read_src(&path, root, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path
                .strip_prefix(root)
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            files.insert(
                name,
                std::fs::read_to_string(&path).expect("a source file reads"),
            );
        }
    }
}

fn src() -> BTreeMap<String, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_src(&root, &root, &mut files);
    files
}

// ---------------------------------------------------------------------------

#[test]
fn src_imports_run_down_the_layers_of_lib_rs_without_circles() {
    let problems = violations(&src());
    assert!(
        problems.is_empty(),
        "{} import(s) against the layout:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_layout_names_every_layer_and_domain_sub_folder() {
    let files = src();
    let layers = layers(&files["lib.rs"]);
    let names: Vec<&str> = layers
        .modules
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    for expected in [
        "app", "graphql", "domain", "events", "db", "entity", "error",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} is missing from {names:?}"
        );
    }
    let sub: Vec<&str> = layers.domain.iter().flatten().map(String::as_str).collect();
    assert_eq!(sub.first(), Some(&"orchestration"));
    assert_eq!(sub.last(), Some(&"core"));
    // The reading of src/ is not vacuous: the imports everyone knows are found.
    let crate_ = Crate::new(&files);
    let imports = crate_.imports();
    let imports_of = |module: &[&str]| {
        let module: ModPath = module.iter().map(|s| (*s).to_owned()).collect();
        imports.get(&module).cloned().unwrap_or_default()
    };
    assert!(imports_of(&["app"]).contains(&vec!["ws".to_owned()]));
    assert!(
        imports_of(&["domain", "chat", "messages"])
            .iter()
            .any(|m| m.starts_with(&["domain".to_owned(), "core".to_owned()]))
    );
}

/// A crate of a few files, with the layout of `lib.rs` as the real one has it.
fn fake(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    let lib = "//! # Layout\n//!\n//! Layers, from the top. Text.\n//!\n//! - transport: `app`\n//! - graphql: `graphql`\n//! - domain: `domain` (sub-folders, from the top: `orchestration` > `chat` >\n//!   `core`)\n//! - storage: `db`\n//!\n//! After.\n\npub mod app;\n";
    let mut map: BTreeMap<String, String> = files
        .iter()
        .map(|(f, s)| ((*f).to_owned(), (*s).to_owned()))
        .collect();
    map.insert("lib.rs".into(), lib.into());
    for (file, src) in [
        (
            "domain/mod.rs",
            "pub mod chat; pub mod core; pub mod orchestration; pub use self::core::Core;",
        ),
        ("domain/core/mod.rs", "pub struct Core;"),
        ("domain/chat/mod.rs", "pub mod messages;"),
        ("domain/orchestration/mod.rs", "pub mod pipeline;"),
        ("domain/orchestration/pipeline.rs", "pub fn run() {}"),
        ("graphql.rs", "pub struct Schema;"),
        ("db.rs", "pub fn stmt() {}"),
    ] {
        map.entry(file.into()).or_insert_with(|| src.into());
    }
    map
}

#[test]
fn an_import_from_a_higher_layer_is_reported() {
    let files = fake(&[(
        "domain/chat/messages.rs",
        "use crate::graphql::Schema;\nuse crate::db::stmt;",
    )]);
    let problems = violations(&files);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("domain/chat/messages.rs imports graphql"),
        "{problems:?}"
    );
}

#[test]
fn an_upward_import_through_an_alias_or_a_re_export_is_reported() {
    let through_alias = fake(&[(
        "domain/chat/messages.rs",
        "use crate::domain;\nfn f() { domain::orchestration::pipeline::run(); }",
    )]);
    assert!(
        violations(&through_alias)
            .iter()
            .any(|p| p.contains("`domain/orchestration` above `domain/chat`")),
        "{:?}",
        violations(&through_alias)
    );
    // `Core` re-exported by the domain's root is `domain/core`: allowed from chat.
    let through_export = fake(&[(
        "domain/chat/messages.rs",
        "use crate::domain::Core;\nfn f(_: &Core) {}",
    )]);
    assert_eq!(violations(&through_export), Vec::<String>::new());
}

#[test]
fn a_circle_between_folders_of_one_layer_is_reported() {
    let files = fake(&[
        (
            "domain/chat/messages.rs",
            "fn f() { crate::domain::core::g(); }",
        ),
        (
            "domain/core/mod.rs",
            "pub struct Core;\npub fn g() { super::chat::messages::h(); }",
        ),
    ]);
    let problems = violations(&files);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("circle: domain/chat, domain/core")),
        "{problems:?}"
    );
}

#[test]
fn tests_comments_and_strings_are_not_imports() {
    let files = fake(&[(
        "domain/core/mod.rs",
        "pub struct Core;\n// crate::graphql::Schema\nconst S: &str = \"crate::graphql::Schema\";\n#[cfg(test)]\nmod tests {\n    use crate::graphql::Schema;\n}\n",
    )]);
    assert_eq!(violations(&files), Vec::<String>::new());
}

#[test]
fn json_columns_are_decoded_in_the_entities_only() {
    let mut found = Vec::new();
    for (file, text) in src() {
        if file.starts_with("entity/") {
            continue;
        }
        let flat: String = text.split_whitespace().collect();
        let mut rest = flat.as_str();
        while let Some(at) = rest.find("serde_json::from_str") {
            let after = &rest[at..];
            let call_end = after.find(';').unwrap_or(after.len());
            if after[..call_end].contains(".unwrap_or_default()")
                || after[..call_end].contains(".unwrap_or(")
            {
                found.push(format!("{file}: {}", &after[..call_end.min(120)]));
            }
            rest = &after[20..];
        }
    }
    assert!(
        found.is_empty(),
        "JSON decoded with a default instead of its entity's accessor:\n{}",
        found.join("\n")
    );
}

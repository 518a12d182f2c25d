//! Redress: case management for moderation appeals and complaints.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod mail;
pub mod security;
pub mod server;
pub mod services;
pub mod store;
pub mod validate;
pub mod web;

/// The layers, lowest first: each module names only the modules it may use. Web code sits on
/// the services, the services on the domain, the store and mail, and those on the database; no
/// module reaches up, so there is no cycle. Read from the source, so a new `use` that breaks
/// the order fails here rather than in review.
#[cfg(test)]
mod layers {
    const MAY_USE: &[(&str, &[&str])] = &[
        ("ids", &[]),
        ("domain", &["ids"]),
        ("config", &[]),
        ("error", &["domain", "ids"]),
        ("validate", &["error", "ids"]),
        ("security", &["error", "validate", "ids"]),
        ("db", &["error", "ids"]),
        ("store", &["db", "domain", "error", "security", "ids"]),
        ("mail", &["config", "db", "domain", "error", "security", "store", "ids"]),
        ("services", &["db", "domain", "error", "mail", "security", "store", "validate", "ids"]),
        ("auth", &["db", "domain", "error", "security", "services", "store", "validate", "ids"]),
        (
            "cli",
            &[
                "auth", "config", "db", "domain", "error", "jobs", "mail", "security", "server", "services",
                "store", "validate", "web", "ids",
            ],
        ),
        ("server", &["config", "db", "error", "jobs", "mail", "security", "services", "web", "ids"]),
        ("jobs", &["db", "mail", "services", "ids"]),
        (
            "web",
            &[
                "auth", "config", "db", "domain", "error", "mail", "security", "services", "store",
                "validate", "ids",
            ],
        ),
    ];

    fn sources(module: &str) -> Vec<(std::path::PathBuf, String)> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![];
        let file = src.join(format!("{module}.rs"));
        if file.exists() {
            files.push(file);
        }
        let mut dirs = vec![src.join(module)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
    }

    #[test]
    fn no_module_uses_a_layer_above_its_own() {
        let mut wrong = vec![];
        for (module, allowed) in MAY_USE {
            let files = sources(module);
            assert!(!files.is_empty(), "no source for {module}");
            for (path, text) in files {
                for (n, line) in text.lines().enumerate() {
                    let mut rest = line;
                    while let Some(at) = rest.find("crate::") {
                        rest = &rest[at + "crate::".len()..];
                        let used: String =
                            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                        // The crate's macros (`crate::on_backend!`) are not modules.
                        let is_macro = rest[used.len()..].starts_with('!');
                        if used != *module && !is_macro && !allowed.contains(&used.as_str()) {
                            wrong.push(format!("{}:{}: {module} uses {used}", path.display(), n + 1));
                        }
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "uses against the layer order:\n{}", wrong.join("\n"));
    }

    /// Queries live in the store (and the database plumbing in db); everything above asks
    /// them. Unit tests, below a file's `#[cfg(test)]`, may build a database error by hand.
    #[test]
    fn no_sql_outside_store_and_db() {
        const SQL: [&str; 6] =
            ["::table", "sql_query", "insert_into", "diesel::update", "diesel::delete", "diesel::dsl"];
        let mut wrong = vec![];
        for (module, _) in MAY_USE.iter().filter(|(m, _)| !["store", "db"].contains(m)) {
            for (path, text) in sources(module) {
                for (n, line) in text.lines().take_while(|l| !l.contains("#[cfg(test)]")).enumerate() {
                    if SQL.iter().any(|s| line.contains(s)) {
                        wrong.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "queries outside the store:\n{}", wrong.join("\n"));
    }
}

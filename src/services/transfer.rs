//! Moving an organisation's whole history between databases (a SQLite file into PostgreSQL,
//! say): `redress export` writes it as one JSON document, `redress import` writes it into
//! another database in one transaction and checks the counts.

use std::io::Write;

use crate::db::{write_tx, DbConnection};
use crate::error::{AppError, AppResult};
use crate::store::org_by_slug;
use crate::store::transfer::{read_org, write_org, Counts, OrgExport};

pub fn export(conn: &mut DbConnection, slug: &str) -> AppResult<OrgExport> {
    let organisation =
        org_by_slug(conn, slug)?.ok_or_else(|| AppError::NotFound(format!("no organisation {slug:?}")))?;
    Ok(read_org(conn, organisation)?)
}

/// Writes an export into this database, all or nothing, reporting progress on `progress`.
/// Staff who already have an account here (by email) keep it and gain the organisation's
/// roles; the organisation itself must be new here.
pub fn import(conn: &mut DbConnection, data: &OrgExport, progress: &mut dyn Write) -> AppResult<Counts> {
    if data.format != 1 {
        return Err(AppError::field(
            "format",
            format!("export format {} is not one this version reads", data.format),
        ));
    }
    let total = data.counts();
    let all = total.users + total.cases + total.events + total.emails + total.others + 1;
    let mut done = 0usize;
    let mut tick = |n: usize, progress: &mut dyn Write| {
        done += n;
        let width = 40;
        let filled = done * width / all.max(1);
        let _ =
            write!(progress, "\r[{}{}] {done}/{all} rows", "#".repeat(filled), " ".repeat(width - filled));
        let _ = progress.flush();
    };
    write_tx(conn, |conn| {
        if org_by_slug(conn, &data.organisation.slug)?.is_some() {
            return Err(AppError::Conflict(format!(
                "organisation {:?} already exists in this database",
                data.organisation.slug
            )));
        }
        if let Some(other) = crate::store::org_by_prefix(conn, &data.organisation.reference_prefix)? {
            return Err(AppError::Conflict(format!(
                "organisation {:?} here already numbers its cases {}-…, as the imported one does; case references must be unique",
                other.slug, data.organisation.reference_prefix
            )));
        }
        write_org(conn, data, &mut |n| tick(n, progress))?;
        let _ = writeln!(progress);
        // The check: what is now here is what was exported.
        let written = export(conn, &data.organisation.slug)?.counts();
        if written != total {
            return Err(AppError::Internal(format!(
                "imported counts {written:?} differ from the export's {total:?}"
            )));
        }
        Ok(written)
    })
}

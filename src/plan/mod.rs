//! The plan: read every record, map and validate it for the pool, route it, and write the import
//! files — before anything touches the pool.
//!
//! [`execute`] drives one pass over a source. The same pass serves `plan` (files and a summary) and
//! `run` (which also hands every outcome to an [`Observer`], e.g. the checkpoint and the AdminCreateUser
//! writer). It runs on one thread at a few hundred thousand records per second, in constant memory
//! apart from the duplicate check (see [`crate::mapping`]).

pub mod chunks;
pub mod route;

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::mapping::{Mapper, Prepared, Reason, Rejection};
use crate::report::ReportCsv;
use crate::source::{self, RecordError, Source};
use chunks::{ChunkFile, ChunkSet};
use route::{Route, Routed, Router};

/// Where a routed user's row went, for import routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRow {
    pub route: Route,
    /// 1-based file number within the route.
    pub file: u32,
    /// 1-based data row within the file.
    pub row: u64,
}

/// Receives every outcome of the pass, in input order.
pub trait Observer {
    fn routed(&mut self, user: Routed, row: Option<ChunkRow>) -> io::Result<()>;
    fn rejected(&mut self, rejection: &Rejection) -> io::Result<()>;
    /// Whether a record is already settled (a resumed run): it is still read and mapped, so that
    /// duplicate checks see it, but not routed, written or counted again.
    fn skip(&mut self, _record: u64) -> bool {
        false
    }
    /// Called when an import file is complete (closed and synced).
    fn file_done(&mut self, _file: &ChunkFile) -> io::Result<()> {
        Ok(())
    }
}

/// An observer that keeps nothing (for `plan`).
pub struct NoObserver;

impl Observer for NoObserver {
    fn routed(&mut self, _: Routed, _: Option<ChunkRow>) -> io::Result<()> {
        Ok(())
    }
    fn rejected(&mut self, _: &Rejection) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct PlanConfig {
    pub out_dir: PathBuf,
    /// Prefix of every file name (e.g. a run token), default empty.
    pub file_prefix: String,
    pub max_rows: u64,
    pub max_bytes: u64,
}

impl PlanConfig {
    pub fn new(out_dir: &Path) -> PlanConfig {
        PlanConfig {
            out_dir: out_dir.to_path_buf(),
            file_prefix: String::new(),
            max_rows: chunks::MAX_ROWS,
            max_bytes: chunks::MAX_BYTES,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Followups {
    /// Users to disable after creation (disabled or blocked in the legacy system).
    pub disable: u64,
    /// Group memberships to add.
    pub group_memberships: u64,
    /// Distinct groups named.
    pub groups: u64,
}

/// What the pass found, for people (table) and scripts (JSON).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub records: u64,
    pub routed: u64,
    pub rejected: u64,
    /// Users per route (`import:BCRYPT`, `import:none`, `admin-create`, `trigger`).
    pub routes: BTreeMap<String, u64>,
    /// Rejections per reason code.
    pub rejections: BTreeMap<String, u64>,
    /// Legacy hash schemes seen, with the routes they took.
    pub hash_schemes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Why hashes were not imported, with counts.
    pub not_imported: BTreeMap<String, u64>,
    /// Users whose hash could not be used at all (unrecognised, malformed, unusable marker) and
    /// who are migrated without a password, by reason.
    pub unusable_hashes: BTreeMap<String, u64>,
    pub followups: Followups,
    /// Federated identities to link, per pool identity provider.
    pub links: BTreeMap<String, u64>,
    /// Federated identities that will not be linked (provider not in the `[providers]` table or
    /// not in the pool), per provider (`vendor name` or `vendor name → pool name`).
    pub unknown_providers: BTreeMap<String, u64>,
    /// Identities of users left to the migration trigger: not linked by this run (the user does
    /// not exist until it signs in with its password).
    pub links_left_to_trigger: u64,
    pub files: Vec<ChunkFile>,
    pub rejects_file: Option<PathBuf>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the input broke off, so the rest of it was not read")]
    Source(#[source] RecordError),
    #[error("recording an outcome failed")]
    Observer(#[source] io::Error),
}

/// The rejection of a record the source could not read (`plan`, `run` and `directory build`).
pub fn source_rejection(e: &RecordError) -> Rejection {
    let reason = match e.reason {
        source::Reason::MissingField => Reason::MissingRequired,
        _ => Reason::MalformedRecord,
    };
    Rejection::new(
        e.position,
        e.field.as_deref().unwrap_or("record"),
        reason,
        format!("{}: {}", e.reason, e.message),
    )
}

/// Counts a rejection in a summary's total and per-reason counts (`plan`, `run` and
/// `directory build`).
pub fn count_rejection(rejected: &mut u64, by_reason: &mut BTreeMap<String, u64>, r: &Rejection) {
    *rejected += 1;
    *by_reason.entry(r.reason.as_str().to_string()).or_default() += 1;
}

/// Writes `rejects.csv`: every rejected record with its position, field, reason and message,
/// every cell neutralised against spreadsheet formulas ([`crate::report`]). Written under a
/// temporary name ([`chunks::Partial`]) and given its own by [`RejectsFile::finish`]: dropped
/// unfinished (a broken input), nothing is left behind.
pub struct RejectsFile {
    out: Option<ReportCsv<BufWriter<std::fs::File>>>,
    partial: Option<chunks::Partial>,
    pub path: PathBuf,
}

/// The columns of `rejects.csv`.
const REJECTS_HEADER: [&str; 6] = [
    "record",
    "line",
    "byte_offset",
    "field",
    "reason",
    "message",
];

impl RejectsFile {
    pub fn create(path: &Path) -> io::Result<RejectsFile> {
        let (partial, file) = chunks::Partial::create(path)?;
        let out = ReportCsv::new(BufWriter::new(file), &REJECTS_HEADER)?;
        Ok(RejectsFile {
            out: Some(out),
            partial: Some(partial),
            path: path.to_path_buf(),
        })
    }

    pub fn write(&mut self, r: &Rejection) -> io::Result<()> {
        let out = self.out.as_mut().expect("not finished");
        out.row(&[
            r.position.record.to_string().as_str(),
            r.position.line.to_string().as_str(),
            r.position.byte_offset.to_string().as_str(),
            r.field.as_str(),
            r.reason.as_str(),
            r.message.as_str(),
        ])
    }

    /// Flushes and syncs the file and gives it its name.
    pub fn finish(mut self) -> io::Result<()> {
        if let (Some(out), Some(partial)) = (self.out.take(), self.partial.take()) {
            let file = out.into_inner()?.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            partial.commit()?;
        }
        Ok(())
    }
}

/// One pass over `source`: map, validate, route; import rows go to files in `cfg.out_dir`,
/// rejections to `rejects.csv` there; every outcome also goes to `observer`.
///
/// Records are mapped one ahead: record N is [prepared](Mapper::prepare) (mapped and validated on
/// its own, its duplicate-check slots requested from memory) before record N-1 is
/// [admitted](Mapper::admit), routed and written, so the table lookups of the duplicate check
/// find their cache lines loaded instead of waiting for them. Outcomes still reach the files and
/// `observer` in input order, and every duplicate check runs in input order.
pub fn execute(
    source: &mut dyn Source,
    mapper: &mut Mapper,
    router: &Router,
    cfg: &PlanConfig,
    observer: &mut dyn Observer,
) -> Result<Summary, PlanError> {
    std::fs::create_dir_all(&cfg.out_dir).map_err(werr(&cfg.out_dir))?;
    let rejects_path = cfg.out_dir.join(format!("{}rejects.csv", cfg.file_prefix));
    let rejects = RejectsFile::create(&rejects_path).map_err(werr(&rejects_path))?;
    let mut pass = Pass {
        cfg,
        header: mapper.schema().csv_header.clone(),
        rejects,
        sets: Vec::new(),
        summary: Summary::default(),
        groups_seen: Default::default(),
        route_counts: Vec::new(),
        scheme_counts: Vec::new(),
        immutable: mapper
            .schema()
            .attributes
            .iter()
            .filter(|a| !a.mutable && a.name.starts_with("custom:"))
            .map(|a| (a.name.clone(), 0))
            .collect(),
    };
    // The record prepared but not yet admitted.
    let mut pending: Option<Prepared> = None;
    loop {
        let item = source.next_record();
        pass.summary.warnings.extend(source.take_warnings());
        let next = match item {
            None => None,
            Some(Ok(user)) => Some(Ok(mapper.prepare(user))),
            Some(Err(e)) => Some(Err(e)),
        };
        if let Some(p) = pending.take() {
            pass.admit(p, mapper, router, observer)?;
        }
        match next {
            None => break,
            Some(Err(e)) if e.fatal => return Err(PlanError::Source(e)),
            Some(Err(e)) => {
                if !observer.skip(e.position.record) {
                    pass.summary.records += 1;
                    pass.reject(source_rejection(&e), observer)?;
                }
            }
            Some(Ok(Err(rej))) => {
                if !observer.skip(rej.position.record) {
                    pass.summary.records += 1;
                    pass.reject(rej, observer)?;
                }
            }
            Some(Ok(Ok(p))) => pending = Some(p),
        }
    }
    pass.summary.warnings.extend(source.take_warnings());
    pass.finish(observer)
}

fn werr(path: &Path) -> impl Fn(io::Error) -> PlanError {
    let path = path.display().to_string();
    move |source| PlanError::Write {
        path: path.clone(),
        source,
    }
}

/// The state of one [`execute`] pass.
struct Pass<'c> {
    cfg: &'c PlanConfig,
    header: Vec<String>,
    rejects: RejectsFile,
    // A handful of routes at most: linear lists beat hashing (SipHash) three times per user.
    sets: Vec<(Route, ChunkSet)>,
    summary: Summary,
    groups_seen: std::collections::HashSet<String>,
    route_counts: Vec<(Route, u64)>,
    scheme_counts: Vec<((&'static str, Route), u64)>,
    /// The pool's immutable custom attributes, and how many users with links to make have each:
    /// Cognito links no user that has one (see [`Pass::admit`]).
    immutable: Vec<(String, u64)>,
}

impl Pass<'_> {
    fn reject(&mut self, r: Rejection, observer: &mut dyn Observer) -> Result<(), PlanError> {
        count_rejection(&mut self.summary.rejected, &mut self.summary.rejections, &r);
        self.rejects.write(&r).map_err(werr(&self.rejects.path))?;
        observer.rejected(&r).map_err(PlanError::Observer)
    }

    /// Admits a prepared record (duplicate check), routes it and writes its outcome.
    fn admit(
        &mut self,
        p: Prepared,
        mapper: &mut Mapper,
        router: &Router,
        observer: &mut dyn Observer,
    ) -> Result<(), PlanError> {
        if observer.skip(p.position().record) {
            // Already settled (a resumed run): still checked, so that later duplicates of it
            // are found, but not routed, written or counted again.
            let _ = mapper.admit(p);
            return Ok(());
        }
        self.summary.records += 1;
        let routed = match mapper.admit(p).and_then(|m| router.route(m)) {
            Ok(r) => r,
            Err(rej) => return self.reject(rej, observer),
        };
        let summary = &mut self.summary;
        summary.routed += 1;
        // Counted by value here (no String per user), named once at the end.
        count(&mut self.route_counts, routed.route);
        if let Some(s) = routed.scheme {
            count(&mut self.scheme_counts, (s, routed.route));
        }
        for (why, counts) in [
            (&routed.not_imported_because, &mut summary.not_imported),
            (&routed.unusable_hash, &mut summary.unusable_hashes),
        ] {
            if let Some(why) = why {
                match counts.get_mut(why.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(why.clone(), 1);
                    }
                }
            }
        }
        for label in &routed.unknown_providers {
            *summary.unknown_providers.entry(label.clone()).or_default() += 1;
        }
        if routed.route == Route::Trigger {
            summary.links_left_to_trigger += routed.user.links.len() as u64;
        } else {
            // AdminLinkProviderForUser's API reference: "All attributes in the DestinationUser
            // profile must be mutable. If you have assigned the user any immutable custom
            // attributes, the operation won't succeed."
            if !routed.user.links.is_empty() {
                for (name, n) in &mut self.immutable {
                    if routed
                        .user
                        .attributes
                        .get(name)
                        .is_some_and(|v| !v.is_empty())
                    {
                        *n += 1;
                    }
                }
            }
            for l in &routed.user.links {
                if let Some(p) = &l.provider {
                    match summary.links.get_mut(p.as_str()) {
                        Some(n) => *n += 1,
                        None => {
                            summary.links.insert(p.clone(), 1);
                        }
                    }
                }
            }
        }
        if routed.route != Route::Trigger {
            if !routed.user.enabled {
                summary.followups.disable += 1;
            }
            summary.followups.group_memberships += routed.user.groups.len() as u64;
            for g in &routed.user.groups {
                if !self.groups_seen.contains(g) {
                    self.groups_seen.insert(g.clone());
                }
            }
        }
        let row = match routed.route {
            Route::Import(_) => {
                let cfg = self.cfg;
                let i = match self.sets.iter().position(|(r, _)| *r == routed.route) {
                    Some(i) => i,
                    None => {
                        let set = ChunkSet::with_limits(
                            &cfg.out_dir,
                            &cfg.file_prefix,
                            routed.route,
                            &self.header,
                            cfg.max_rows,
                            cfg.max_bytes,
                        )
                        .map_err(werr(&cfg.out_dir))?;
                        self.sets.push((routed.route, set));
                        self.sets.len() - 1
                    }
                };
                let set = &mut self.sets[i].1;
                let (file, row) = set.write(&routed).map_err(werr(&cfg.out_dir))?;
                Some(ChunkRow {
                    route: routed.route,
                    file,
                    row,
                })
            }
            _ => None,
        };
        observer.routed(routed, row).map_err(PlanError::Observer)
    }

    /// Names the counts, closes every file and returns the summary.
    fn finish(mut self, observer: &mut dyn Observer) -> Result<Summary, PlanError> {
        let summary = &mut self.summary;
        for (route, n) in self.route_counts {
            summary.routes.insert(route.as_str().to_string(), n);
        }
        for ((scheme, route), n) in self.scheme_counts {
            summary
                .hash_schemes
                .entry(scheme.to_string())
                .or_default()
                .insert(route.as_str().to_string(), n);
        }
        summary.followups.groups = self.groups_seen.len() as u64;
        for (name, n) in self.immutable.iter().filter(|(_, n)| *n > 0) {
            let (users, have) = if *n == 1 {
                ("user", "has")
            } else {
                ("users", "have")
            };
            summary.warnings.push(format!(
                "{n} {users} with identities to link {have} the immutable custom attribute {name}: \
                 Cognito links no user with an immutable custom attribute \
                 (AdminLinkProviderForUser), so their links will fail; leave {name} out of the \
                 mapping or use a pool where it is mutable"
            ));
        }
        for (why, n) in &summary.unusable_hashes {
            let users = if *n == 1 { "user has" } else { "users have" };
            summary.warnings.push(format!(
                "{n} {users} a password hash that cannot be used ({why}): migrated without a \
                 password, they must reset it (--unknown-hash reject rejects them instead)"
            ));
        }
        self.sets.sort_by_key(|(r, _)| *r);
        // Every file closed first, then named (the rejects first): a failure before the last
        // one is closed leaves no import file behind.
        for (_, set) in &mut self.sets {
            set.close().map_err(werr(&self.cfg.out_dir))?;
        }
        let rejects_path = self.rejects.path.clone();
        self.rejects.finish().map_err(werr(&rejects_path))?;
        summary.rejects_file = Some(rejects_path);
        for (_, set) in self.sets {
            for f in set.finish().map_err(werr(&self.cfg.out_dir))? {
                observer.file_done(&f).map_err(PlanError::Observer)?;
                summary.files.push(f);
            }
        }
        Ok(self.summary)
    }
}

/// Adds one to `key`'s count in a short list of counts.
fn count<K: PartialEq>(counts: &mut Vec<(K, u64)>, key: K) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key, 1)),
    }
}

impl Summary {
    /// The summary as a table for people.
    pub fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "records read      {:>10}", self.records)?;
        writeln!(out, "to migrate        {:>10}", self.routed)?;
        for (route, n) in &self.routes {
            let what = match route.as_str() {
                "import:none" => "import job, no password (RESET_REQUIRED)".to_string(),
                "admin-create" => "AdminCreateUser".to_string(),
                "federated" => {
                    "AdminCreateUser without a password, then linked (federated sign-in only)"
                        .to_string()
                }
                "trigger" => "left to the migration trigger (password kept at sign-in)".to_string(),
                r => format!(
                    "import job with {} hashes (password kept, CONFIRMED)",
                    r.trim_start_matches("import:")
                ),
            };
            writeln!(out, "  {route:<16}{n:>10}  {what}")?;
        }
        writeln!(out, "rejected          {:>10}", self.rejected)?;
        for (reason, n) in &self.rejections {
            writeln!(out, "  {reason:<24}{n:>10}")?;
        }
        if !self.hash_schemes.is_empty() {
            writeln!(out, "password hashes")?;
            for (scheme, routes) in &self.hash_schemes {
                let parts: Vec<String> = routes.iter().map(|(r, n)| format!("{n} {r}")).collect();
                writeln!(out, "  {scheme:<24}{}", parts.join(", "))?;
            }
        }
        for (why, n) in &self.not_imported {
            writeln!(out, "  not imported ({n}): {why}")?;
        }
        for (why, n) in &self.unusable_hashes {
            writeln!(out, "  no password ({n}): {why}")?;
        }
        if !self.links.is_empty() {
            let parts: Vec<String> = self.links.iter().map(|(p, n)| format!("{n} {p}")).collect();
            writeln!(out, "identities to link  {}", parts.join(", "))?;
        }
        for (p, n) in &self.unknown_providers {
            writeln!(
                out,
                "  not linked ({n}): provider {p} is not in [providers] or not in the pool"
            )?;
        }
        if self.links_left_to_trigger > 0 {
            writeln!(
                out,
                "  not linked ({}): identities of users left to the migration trigger",
                self.links_left_to_trigger
            )?;
        }
        let f = &self.followups;
        if f.disable + f.group_memberships > 0 {
            writeln!(
                out,
                "follow-ups        {} to disable, {} group memberships in {} groups",
                f.disable, f.group_memberships, f.groups
            )?;
        }
        for file in &self.files {
            writeln!(
                out,
                "wrote {} ({} users, {} bytes)",
                file.path.display(),
                file.rows,
                file.bytes
            )?;
        }
        if let Some(p) = &self.rejects_file {
            writeln!(out, "wrote {} ({} rejected)", p.display(), self.rejected)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::config::MappingFile;
    use crate::pool::PoolSchema;
    use crate::source::{Format, SourceOptions};
    use route::{Mode, UnimportablePolicy};

    /// Every outcome in the order the observer got it: (record, route or rejection reason).
    #[derive(Default)]
    struct Recorded(Vec<(u64, String)>);

    impl Observer for Recorded {
        fn routed(&mut self, user: Routed, _: Option<ChunkRow>) -> io::Result<()> {
            let route = user.route.as_str().to_string();
            self.0.push((user.user.position.record, route));
            Ok(())
        }
        fn rejected(&mut self, r: &Rejection) -> io::Result<()> {
            self.0
                .push((r.position.record, r.reason.as_str().to_string()));
            Ok(())
        }
        fn skip(&mut self, record: u64) -> bool {
            record == 6
        }
    }

    /// A mapping of `id`, `mail` and `v` (email verified) for a pool with email as an alias, and
    /// an import-job router for it.
    fn id_mail_verified() -> (MappingFile, PoolSchema, Router) {
        let mapping = MappingFile::parse(
            "username = \"id\"\n[attributes]\nemail = { from = \"mail\", transform = \"lowercase_email\" }\nemail_verified = { from = \"v\", transform = \"bool\" }\n",
            "test",
        )
        .unwrap();
        let schema = PoolSchema::assemble(
            "us-east-1_test",
            "test",
            vec![
                "email".into(),
                "email_verified".into(),
                "cognito:username".into(),
            ],
            vec![],
            vec![],
            vec!["email".into()],
            false,
            vec!["email".into()],
        );
        let router = Router::new(
            Mode::ImportJob,
            UnimportablePolicy::Trigger,
            Default::default(),
            &schema,
        );
        (mapping, schema, router)
    }

    #[test]
    fn outcomes_keep_input_order_and_duplicates_are_checked_in_order_one_record_ahead() {
        // Records 1 and 2 share an email (2 is the duplicate, caught while 3 is prepared);
        // 3 is rejected on its own (bad email) right after 2's outcome; 4 repeats 3's username
        // (3 was rejected before its keys were taken, so 4 is fine); 5 is a bad line; 6 is
        // "settled" (skipped) but still takes its email, so 7 is its duplicate; 8 ends the input
        // while pending.
        let lines = [
            r#"{"id":"u1","mail":"a@x.io","v":"true"}"#,
            r#"{"id":"u2","mail":"A@x.io","v":"true"}"#,
            r#"{"id":"u3","mail":"not-an-email","v":"true"}"#,
            r#"{"id":"u3","mail":"c@x.io","v":"true"}"#,
            r#"{"id":"u5","mail":"#,
            r#"{"id":"u6","mail":"f@x.io","v":"true"}"#,
            r#"{"id":"u7","mail":"F@X.IO","v":"true"}"#,
            r#"{"id":"u8","mail":"h@x.io","v":"false"}"#,
        ];
        let text = lines.join("\n");
        let mut source = source::from_reader(
            Format::Ndjson,
            Box::new(io::Cursor::new(text.into_bytes())),
            &SourceOptions::default(),
        )
        .unwrap();
        let (mapping, schema, router) = id_mail_verified();
        let mut mapper = Mapper::new(&mapping, &schema).unwrap();
        let dir = std::env::temp_dir().join(format!("cm-plan-order-{}", std::process::id()));
        let mut observer = Recorded::default();
        let summary = execute(
            source.as_mut(),
            &mut mapper,
            &router,
            &PlanConfig::new(&dir),
            &mut observer,
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let got: Vec<(u64, &str)> = observer.0.iter().map(|(r, o)| (*r, o.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (1, "import:none"),
                (2, "duplicate_email"),
                (3, "invalid_email"),
                (4, "import:none"),
                (5, "malformed_record"),
                (7, "duplicate_email"),
                (8, "not_verifiable"),
            ]
        );
        assert_eq!(
            (summary.records, summary.routed, summary.rejected),
            (7, 2, 5)
        );
    }

    /// Gives `data`, then an I/O error: an input that breaks off.
    struct BreaksOff(io::Cursor<Vec<u8>>);

    impl io::Read for BreaksOff {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::other("the disk went away")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn an_input_that_breaks_off_leaves_no_import_file_and_no_rejects_file() {
        let lines: String = (1..=5)
            .map(|i| format!("{{\"id\":\"u{i}\",\"mail\":\"u{i}@x.io\",\"v\":\"true\"}}\n"))
            .collect();
        let (mapping, schema, router) = id_mail_verified();
        let dir = std::env::temp_dir().join(format!("cm-plan-broken-{}", std::process::id()));
        let mut cfg = PlanConfig::new(&dir);
        // One user a file: four files are complete before the input breaks off.
        cfg.max_rows = 1;
        for broken in [true, false] {
            let _ = std::fs::remove_dir_all(&dir);
            let bytes = lines.clone().into_bytes();
            let reader: Box<dyn io::BufRead + Send> = if broken {
                Box::new(io::BufReader::new(BreaksOff(io::Cursor::new(bytes))))
            } else {
                Box::new(io::Cursor::new(bytes))
            };
            let mut source =
                source::from_reader(Format::Ndjson, reader, &SourceOptions::default()).unwrap();
            let mut mapper = Mapper::new(&mapping, &schema).unwrap();
            let result = execute(source.as_mut(), &mut mapper, &router, &cfg, &mut NoObserver);
            let mut left: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect();
            left.sort();
            if broken {
                match result {
                    Err(PlanError::Source(e)) => assert!(e.fatal, "{e}"),
                    other => panic!("expected a source error, got {other:?}"),
                }
                assert_eq!(left, Vec::<String>::new());
            } else {
                let summary = result.unwrap();
                assert_eq!(summary.files.len(), 5);
                assert_eq!(left.len(), 6, "{left:?}");
                assert!(left.contains(&"rejects.csv".to_string()), "{left:?}");
                assert!(!left.iter().any(|f| f.ends_with(".partial")), "{left:?}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Keycloak group paths with spaces (`/Cluster Admins`) are refused at plan time, with the
    /// record, field and reason; the mapping's `[groups]` rewrite, laid over the built-in
    /// Keycloak mapping, makes them fit.
    #[test]
    fn keycloak_group_paths_are_checked_and_rewritten() {
        let export = r#"{"realm": "acme", "users": [
  {"id": "1", "username": "ann", "email": "ann@x.io", "emailVerified": true,
   "groups": ["/Cluster Admins", "/staff/sales"]},
  {"id": "2", "username": "ben", "email": "ben@x.io", "emailVerified": true,
   "groups": ["/staff"]}
]}"#;
        let schema = PoolSchema::assemble(
            "us-east-1_test",
            "test",
            vec![
                "email".into(),
                "email_verified".into(),
                "cognito:username".into(),
            ],
            vec![crate::pool::Attribute {
                name: "custom:legacy_id".into(),
                data_type: crate::pool::DataType::String,
                required: false,
                mutable: true,
                min_length: None,
                max_length: Some(64),
                min_value: None,
                max_value: None,
            }],
            vec![],
            vec![],
            false,
            vec!["email".into()],
        );
        let builtin = source::builtin_mapping(Format::Keycloak).unwrap();
        let run = |over: &str| {
            let mapping = MappingFile::parse(builtin, "keycloak")
                .unwrap()
                .overlay(MappingFile::parse(over, "user").unwrap());
            let mut mapper = Mapper::new(&mapping, &schema).unwrap();
            let router = Router::new(
                Mode::ImportJob,
                UnimportablePolicy::Trigger,
                Default::default(),
                &schema,
            );
            let mut source = source::from_reader(
                Format::Keycloak,
                Box::new(io::Cursor::new(export.as_bytes().to_vec())),
                &SourceOptions::default(),
            )
            .unwrap();
            let dir = std::env::temp_dir().join(format!(
                "cm-plan-kc-groups-{}-{}",
                std::process::id(),
                over.len()
            ));
            let summary = execute(
                source.as_mut(),
                &mut mapper,
                &router,
                &PlanConfig::new(&dir),
                &mut NoObserver,
            )
            .unwrap();
            let rejects = std::fs::read_to_string(dir.join("rejects.csv")).unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            (summary, rejects)
        };
        let (summary, rejects) = run("");
        assert_eq!((summary.routed, summary.rejected), (1, 1));
        assert_eq!(summary.rejections.get("invalid_group"), Some(&1));
        let line = rejects.lines().nth(1).unwrap_or_default();
        assert!(
            line.starts_with("1,") && line.contains(",groups,invalid_group,"),
            "{line}"
        );
        assert!(
            line.contains("group 1 of 2") && line.contains("Cluster Admins"),
            "{line}"
        );

        let (summary, _) = run("[groups]\nreplace_spaces = \"_\"\n");
        assert_eq!((summary.routed, summary.rejected), (2, 0));
        assert_eq!(summary.followups.group_memberships, 3);
        assert_eq!(summary.followups.groups, 3);
    }

    /// Users whose hash cannot be used are migrated without a password, counted by reason and
    /// warned about; neither the summary nor the import file shows the hash.
    #[test]
    fn unusable_hashes_are_counted_and_warned_not_rejected() {
        let lines = [
            r#"{"id":"u1","mail":"a@x.io","pw":"{SSHA}c2VjcmV0c2FsdHNlY3JldA=="}"#,
            r#"{"id":"u2","mail":"b@x.io","pw":"!Qm4vT8zXk2LpR7sWn1YbC5dHf9JgA3eKu6iOo0"}"#,
            r#"{"id":"u3","mail":"c@x.io","pw":"$2b$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i"}"#,
            r#"{"id":"u4","mail":"d@x.io","pw":"{MD5}X03MO1qnZdYdgyfeuILPmQ=="}"#,
        ];
        let mut source = source::from_reader(
            Format::Ndjson,
            Box::new(io::Cursor::new(lines.join("\n").into_bytes())),
            &SourceOptions::default(),
        )
        .unwrap();
        let mapping = MappingFile::parse(
            "username = \"id\"\npassword = \"pw\"\n[attributes]\nemail = \"mail\"\nemail_verified = { transform = \"const\", value = \"true\" }\n",
            "test",
        )
        .unwrap();
        let schema = PoolSchema::assemble(
            "us-east-1_test",
            "test",
            vec![
                "email".into(),
                "email_verified".into(),
                "cognito:username".into(),
            ],
            vec![],
            vec![],
            vec![],
            false,
            vec!["email".into()],
        );
        let mut mapper = Mapper::new(&mapping, &schema).unwrap();
        let router = Router::new(
            Mode::ImportJob,
            UnimportablePolicy::Trigger,
            Default::default(),
            &schema,
        );
        let dir = std::env::temp_dir().join(format!("cm-plan-unusable-{}", std::process::id()));
        let summary = execute(
            source.as_mut(),
            &mut mapper,
            &router,
            &PlanConfig::new(&dir),
            &mut NoObserver,
        )
        .unwrap();
        let files: String = summary
            .files
            .iter()
            .map(|f| std::fs::read_to_string(&f.path).unwrap())
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((summary.routed, summary.rejected), (4, 0));
        assert_eq!(summary.routes.get("import:none"), Some(&3));
        assert_eq!(summary.routes.get("import:BCRYPT"), Some(&1));
        let unusable: Vec<(&str, u64)> = summary
            .unusable_hashes
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(unusable.len(), 2, "{unusable:?}");
        // In the order of the reasons' text.
        assert!(unusable[0].0.contains("unusable-password marker") && unusable[0].1 == 1);
        assert!(unusable[1].0.contains("unrecognised") && unusable[1].1 == 2);
        assert_eq!(summary.warnings.len(), 2, "{:?}", summary.warnings);
        assert!(summary.warnings[1].starts_with("2 users have a password hash that cannot be used"));
        let mut table = Vec::new();
        summary.write_table(&mut table).unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8(table).unwrap(),
            summary.warnings.join("")
        );
        assert!(
            shown.contains("no password (2): unrecognised password hash format"),
            "{shown}"
        );
        for secret in ["c2VjcmV0", "Qm4vT8zX", "X03MO1qn"] {
            assert!(
                !shown.contains(secret) && !files.contains(secret),
                "{secret} shown"
            );
        }
    }
}

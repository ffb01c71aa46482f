//! The historical CSV layouts of `firebase auth:export --format=csv`.
//!
//! firebase-tools writes the CSV without a header, columns by position, each row ending in a
//! comma. Columns 1–23 (UID, Email, Email Verified, Password Hash, Password Salt, Name, Photo URL,
//! then Google, Facebook, Twitter and GitHub: ID, Email, Display Name, Photo URL each) never
//! moved; what follows changed five times (`src/accountExporter.{js,ts}` in
//! github.com/firebase/firebase-tools, first release containing each change):
//!
//! | layout | columns | from column 24 on |
//! |---|---|---|
//! | `v3.3`  (b85a95e, 2017-02) | 26 | disabled, createdAt, lastLoginAt |
//! | `v3.12` (ef6cb05, 2017-09) | 27 | disabled, createdAt, lastLoginAt, phoneNumber |
//! | `v4.1`  (41ce8d3, 2018-08) | 26 | createdAt, lastLoginAt, phoneNumber |
//! | `v7.12` (a3a68df, 2020-01) | 27 | createdAt, lastLoginAt, phoneNumber, disabled |
//! | `v8.13` (470e475, 2020-10) | 28 | … disabled, customAttributes |
//! | `v15.19` (a94799f, 2026-05) | 52 | … customAttributes, then Apple, Microsoft, Game Center, Play Games, LinkedIn, Yahoo (ID, Email, Display Name, Photo URL each) |
//!
//! Layouts of the same width differ in what their columns hold, so a row is matched against
//! every layout of its width by content (booleans `true`/`false`, epoch milliseconds, phone
//! numbers that are not times or booleans, claims starting with `{`; empty cells fit anything). Layouts that
//! fit but read the row's non-empty cells the same way are equivalent for that row. One export
//! comes from one firebase-tools version, so the layouts possible for a file are those all its
//! rows so far have fitted; a row that fits none of them is rejected. Before firebase-tools
//! v6.11 a display name's comma was not quoted (and before v11.25.2 custom claims were not), so
//! such a row has more columns, shifted: the content check or the file's possible layouts catch
//! it. A row that fits no layout is rejected with the reason; no row is read with shifted
//! columns. `--firebase-layout` skips the detection.

use super::csv_reader::Row;
use super::error::{Reason, RecordError};

/// A layout of firebase-tools' CSV export, named by the first release that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum FirebaseLayout {
    /// firebase-tools 3.3–3.11: 26 columns, disabled/createdAt/lastLoginAt from column 24.
    #[value(name = "v3.3")]
    V3_3,
    /// firebase-tools 3.12–4.1.1: 27 columns, disabled/createdAt/lastLoginAt/phoneNumber.
    #[value(name = "v3.12")]
    V3_12,
    /// firebase-tools 4.1.2–7.11: 26 columns, createdAt/lastLoginAt/phoneNumber.
    #[value(name = "v4.1")]
    V4_1,
    /// firebase-tools 7.12–8.12: 27 columns, createdAt/lastLoginAt/phoneNumber/disabled.
    #[value(name = "v7.12")]
    V7_12,
    /// firebase-tools 8.13–15.18: 28 columns, … disabled, customAttributes.
    #[value(name = "v8.13")]
    V8_13,
    /// firebase-tools 15.19 on: 52 columns, six more providers after customAttributes.
    #[value(name = "v15.19")]
    V15_19,
}

/// What a column may hold, for matching a row to a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Millis,
    Phone,
    Claims,
}

impl Kind {
    fn fits(self, v: &[u8]) -> bool {
        if v.is_empty() {
            return true;
        }
        match self {
            Kind::Text => true,
            Kind::Bool => v == b"true" || v == b"false",
            Kind::Millis => v.iter().all(u8::is_ascii_digit),
            // Firebase keeps E.164 numbers; anything else is for the mapping to judge, except
            // what is plainly another column's value (a time in epoch milliseconds, a boolean).
            Kind::Phone => {
                let looks_like_millis = v.len() >= 12 && v.iter().all(u8::is_ascii_digit);
                !looks_like_millis && !Kind::Bool.fits(v)
            }
            Kind::Claims => v[0] == b'{',
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Bool => "true or false",
            Kind::Millis => "epoch milliseconds",
            Kind::Phone => "a phone number (not a time or a boolean)",
            Kind::Claims => "a JSON object",
        }
    }
}

/// Columns 1–23, the same in every layout.
const COMMON: [(&str, Kind); 23] = [
    ("localId", Kind::Text),
    ("email", Kind::Text),
    ("emailVerified", Kind::Bool),
    ("passwordHash", Kind::Text),
    ("salt", Kind::Text),
    ("displayName", Kind::Text),
    ("photoUrl", Kind::Text),
    ("google.rawId", Kind::Text),
    ("google.email", Kind::Text),
    ("google.displayName", Kind::Text),
    ("google.photoUrl", Kind::Text),
    ("facebook.rawId", Kind::Text),
    ("facebook.email", Kind::Text),
    ("facebook.displayName", Kind::Text),
    ("facebook.photoUrl", Kind::Text),
    ("twitter.rawId", Kind::Text),
    ("twitter.email", Kind::Text),
    ("twitter.displayName", Kind::Text),
    ("twitter.photoUrl", Kind::Text),
    ("github.rawId", Kind::Text),
    ("github.email", Kind::Text),
    ("github.displayName", Kind::Text),
    ("github.photoUrl", Kind::Text),
];

const DISABLED: (&str, Kind) = ("disabled", Kind::Bool);
const CREATED: (&str, Kind) = ("createdAt", Kind::Millis);
const SIGNED_IN: (&str, Kind) = ("lastSignedInAt", Kind::Millis);
const PHONE: (&str, Kind) = ("phoneNumber", Kind::Phone);
const CLAIMS: (&str, Kind) = ("customAttributes", Kind::Claims);

/// The provider fields every layout has: (column index of the ID, provider id).
const EARLY_PROVIDERS: [(usize, &str); 4] = [
    (7, "google.com"),
    (11, "facebook.com"),
    (15, "twitter.com"),
    (19, "github.com"),
];

/// The providers of the v15.19 columns 29–52 (index of the ID column, provider id); field
/// prefixes as the JSON reader makes them.
const LATE_PROVIDERS: [(usize, &str); 6] = [
    (28, "apple.com"),
    (32, "microsoft.com"),
    (36, "gc.apple.com"),
    (40, "playgames.google.com"),
    (44, "linkedin.com"),
    (48, "yahoo.com"),
];

const LATE_FIELDS: [&str; 24] = [
    "apple.rawId",
    "apple.email",
    "apple.displayName",
    "apple.photoUrl",
    "microsoft.rawId",
    "microsoft.email",
    "microsoft.displayName",
    "microsoft.photoUrl",
    "gc_apple.rawId",
    "gc_apple.email",
    "gc_apple.displayName",
    "gc_apple.photoUrl",
    "playgames_google.rawId",
    "playgames_google.email",
    "playgames_google.displayName",
    "playgames_google.photoUrl",
    "linkedin.rawId",
    "linkedin.email",
    "linkedin.displayName",
    "linkedin.photoUrl",
    "yahoo.rawId",
    "yahoo.email",
    "yahoo.displayName",
    "yahoo.photoUrl",
];

impl FirebaseLayout {
    pub const ALL: [FirebaseLayout; 6] = [
        FirebaseLayout::V3_3,
        FirebaseLayout::V3_12,
        FirebaseLayout::V4_1,
        FirebaseLayout::V7_12,
        FirebaseLayout::V8_13,
        FirebaseLayout::V15_19,
    ];

    /// The name used on the command line (`--firebase-layout`).
    pub fn name(self) -> &'static str {
        match self {
            FirebaseLayout::V3_3 => "v3.3",
            FirebaseLayout::V3_12 => "v3.12",
            FirebaseLayout::V4_1 => "v4.1",
            FirebaseLayout::V7_12 => "v7.12",
            FirebaseLayout::V8_13 => "v8.13",
            FirebaseLayout::V15_19 => "v15.19",
        }
    }

    /// The columns after the 23 common ones (the late providers excepted).
    fn tail(self) -> &'static [(&'static str, Kind)] {
        match self {
            FirebaseLayout::V3_3 => &[DISABLED, CREATED, SIGNED_IN],
            FirebaseLayout::V3_12 => &[DISABLED, CREATED, SIGNED_IN, PHONE],
            FirebaseLayout::V4_1 => &[CREATED, SIGNED_IN, PHONE],
            FirebaseLayout::V7_12 => &[CREATED, SIGNED_IN, PHONE, DISABLED],
            FirebaseLayout::V8_13 | FirebaseLayout::V15_19 => {
                &[CREATED, SIGNED_IN, PHONE, DISABLED, CLAIMS]
            }
        }
    }

    fn late_columns(self) -> usize {
        if self == FirebaseLayout::V15_19 {
            LATE_FIELDS.len()
        } else {
            0
        }
    }

    /// Number of columns (without the empty one after the trailing comma).
    pub fn width(self) -> usize {
        COMMON.len() + self.tail().len() + self.late_columns()
    }

    /// The field name and kind of column `i` (0-based), for `i < width()`.
    fn column(self, i: usize) -> (&'static str, Kind) {
        if let Some(&c) = COMMON.get(i) {
            return c;
        }
        let tail = self.tail();
        let j = i - COMMON.len();
        match tail.get(j) {
            Some(&c) => c,
            None => (LATE_FIELDS[j - tail.len()], Kind::Text),
        }
    }

    /// The field name of column `i` (0-based), for `i < width()`.
    pub(crate) fn field(self, i: usize) -> &'static str {
        self.column(i).0
    }

    /// The provider columns of this layout: (index of the ID column, provider id).
    pub(crate) fn providers(self) -> impl Iterator<Item = (usize, &'static str)> {
        let late = if self == FirebaseLayout::V15_19 {
            &LATE_PROVIDERS[..]
        } else {
            &[]
        };
        EARLY_PROVIDERS.into_iter().chain(late.iter().copied())
    }

    /// Whether the row has this layout's width (with or without the trailing comma's empty
    /// field).
    fn width_fits(self, row: &Row<'_>) -> bool {
        let w = self.width();
        row.len() == w || (row.len() == w + 1 && row.get(w).is_empty())
    }

    /// The first column (0-based) whose content does not fit, with what it should hold.
    fn misfit(self, row: &Row<'_>) -> Option<(usize, Kind)> {
        (0..self.width().min(row.len()))
            .map(|i| (i, self.column(i).1))
            .find(|&(i, kind)| !kind.fits(row.get(i)))
    }
}

/// Picks each row's layout: the one chosen by the user, or the one the content fits.
pub(crate) struct LayoutPicker {
    /// `--firebase-layout`.
    chosen: Option<FirebaseLayout>,
    /// The layouts every row of the file so far has fitted, and the record that last narrowed
    /// them.
    possible: Layouts,
    narrowed_at: u64,
    /// Rows read per layout (by [`FirebaseLayout::ALL`] index), for the closing note.
    counts: [u64; 6],
}

impl LayoutPicker {
    pub(crate) fn new(chosen: Option<FirebaseLayout>) -> Self {
        LayoutPicker {
            chosen,
            possible: Layouts::of(|_| true),
            narrowed_at: 0,
            counts: [0; 6],
        }
    }

    /// The layout to read `row` with, or why there is none.
    pub(crate) fn pick(&mut self, row: &Row<'_>) -> Result<FirebaseLayout, RecordError> {
        let pos = row.position;
        let reject = |msg: String| Err(RecordError::new(pos, Reason::MalformedRecord, msg));
        if let Some(layout) = self.chosen {
            if !layout.width_fits(row) {
                return reject(format!(
                    "row has {} fields; the --firebase-layout {} layout has {} columns and a trailing comma",
                    row.len(),
                    layout.name(),
                    layout.width()
                ));
            }
            if let Some((i, kind)) = layout.misfit(row) {
                return Err(misfit_error(pos, layout, i, kind));
            }
            return Ok(self.count(layout));
        }
        let by_width = Layouts::of(|l| l.width_fits(row));
        if by_width.is_empty() {
            return reject(format!(
                "row has {} fields; no firebase-tools CSV layout has that many (26, 27, 28 or 52 columns, and a trailing comma)",
                row.len()
            ));
        }
        let fitting = by_width.filter(|l| l.misfit(row).is_none());
        if fitting.is_empty() {
            let why: Vec<String> = by_width
                .iter()
                .filter_map(|l| {
                    let (i, kind) = l.misfit(row)?;
                    Some(format!(
                        "{}: column {} ({}) is not {}",
                        l.name(),
                        i + 1,
                        l.field(i),
                        kind.expected()
                    ))
                })
                .collect();
            return reject(format!(
                "row fits no firebase-tools CSV layout of {} fields ({}); an unquoted comma in a name shifts the columns",
                row.len(),
                why.join("; ")
            ));
        }
        // One export comes from one firebase-tools version: the layouts still possible for the
        // file are those every row so far has fitted.
        let possible = fitting.filter(|l| self.possible.contains(l));
        if possible.is_empty() {
            return reject(format!(
                "row fits the {} layout, but the rows up to record {} fit only the {} layout (one export comes from one firebase-tools version; an unquoted comma in a name shifts the columns); choose with --firebase-layout",
                fitting.names(),
                self.narrowed_at,
                self.possible.names(),
            ));
        }
        if possible != self.possible {
            self.possible = possible;
            self.narrowed_at = pos.record;
        }
        // Several layouts fit: harmless when they put every non-empty cell in the same field.
        let first = possible.iter().next().expect("not empty");
        let agree = possible.len() == 1
            || (0..row.len()).filter(|&i| !row.get(i).is_empty()).all(|i| {
                possible
                    .iter()
                    .all(|l| i < l.width() && l.field(i) == first.field(i))
            });
        if agree {
            return Ok(self.count(first));
        }
        reject(format!(
            "row fits the {} layouts, which read its columns differently; choose with --firebase-layout",
            possible.names()
        ))
    }

    fn count(&mut self, layout: FirebaseLayout) -> FirebaseLayout {
        self.counts[layout as usize] += 1;
        layout
    }

    /// A note for each older layout the rows were read in (today's layouts go without one).
    pub(crate) fn finish(&self, warnings: &mut Vec<String>) {
        for (layout, n) in FirebaseLayout::ALL.iter().zip(self.counts) {
            if *layout < FirebaseLayout::V8_13 && n > 0 {
                warnings.push(format!(
                    "{n} CSV row(s) read in the column layout of firebase-tools {} (see --firebase-layout)",
                    layout.name()
                ));
            }
        }
    }
}

/// A set of layouts (bit `i` for `FirebaseLayout::ALL[i]`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Layouts(u8);

impl Layouts {
    fn of(mut pred: impl FnMut(FirebaseLayout) -> bool) -> Layouts {
        Layouts::from_iter(FirebaseLayout::ALL.into_iter().filter(|&l| pred(l)))
    }

    fn from_iter(layouts: impl Iterator<Item = FirebaseLayout>) -> Layouts {
        Layouts(layouts.fold(0, |m, l| m | 1 << l as u8))
    }

    fn filter(self, pred: impl FnMut(&FirebaseLayout) -> bool) -> Layouts {
        Layouts::from_iter(self.iter().filter(pred))
    }

    fn iter(self) -> impl Iterator<Item = FirebaseLayout> {
        FirebaseLayout::ALL
            .into_iter()
            .filter(move |&l| self.0 & 1 << l as u8 != 0)
    }

    fn contains(self, l: &FirebaseLayout) -> bool {
        self.0 & 1 << *l as u8 != 0
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn len(self) -> u32 {
        self.0.count_ones()
    }

    fn names(self) -> String {
        let names: Vec<&str> = self.iter().map(|l| l.name()).collect();
        names.join(" and ")
    }
}

fn misfit_error(
    pos: crate::record::Position,
    layout: FirebaseLayout,
    i: usize,
    kind: Kind,
) -> RecordError {
    RecordError::new(
        pos,
        Reason::BadValue,
        format!(
            "column {} is not {} as the {} layout has it",
            i + 1,
            kind.expected(),
            layout.name()
        ),
    )
    .with_field(layout.field(i))
}
